//! The binary against the real stack: ready when Kafka and the registry answer, exit 0 on SIGTERM.

#[tokio::test]
async fn ready_against_the_stack_then_exits_0_on_sigterm() {
    use leadflow_core::contract::topics::{ENRICHED, REVIEWS, SCORES};
    use leadflow_testkit::kafka::new_group_at_end_of;
    // A group and a database of its own, starting at the end of the topics: this test is about
    // the process, and records left by other tests must not give it work.
    let stack = leadflow_testkit::Stack::get();
    let group = new_group_at_end_of(&stack, "automator-lifecycle", &[SCORES, ENRICHED, REVIEWS]);
    let env = [
        ("LEADFLOW_CONSUMER__GROUP_ID", group),
        ("LEADFLOW_MONGO__DATABASE", leadflow_testkit::unique("automator_lifecycle").replace('-', "_")),
    ];
    leadflow_testkit::check_service_lifecycle_with(env!("CARGO_BIN_EXE_automator"), libc::SIGTERM, &env)
        .await
        .unwrap();
}
