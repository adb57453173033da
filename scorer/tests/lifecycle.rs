//! The binary against the real stack: ready when Kafka and the registry answer, exit 0 on SIGTERM.

#[tokio::test]
async fn ready_against_the_stack_then_exits_0_on_sigterm() {
    use leadflow_core::topics::EVENTS;
    use leadflow_testkit::kafka::{commit_group_offsets, end_offsets};
    // A group and a database of its own, starting at the end of the topic: this test is about
    // the process, and events left by other tests must not give it work.
    let stack = leadflow_testkit::Stack::get();
    let group = leadflow_testkit::unique("scorer-lifecycle");
    commit_group_offsets(&stack, &group, EVENTS, &end_offsets(&stack, EVENTS));
    let env = [
        ("LEADFLOW_CONSUMER__GROUP_ID", group),
        ("LEADFLOW_MONGO__DATABASE", leadflow_testkit::unique("scorer_lifecycle").replace('-', "_")),
    ];
    leadflow_testkit::check_service_lifecycle_with(env!("CARGO_BIN_EXE_scorer"), libc::SIGTERM, &env)
        .await
        .unwrap();
}
