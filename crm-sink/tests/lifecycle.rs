//! The binary against the real stack: ready when Kafka and the registry answer, exit 0 on SIGINT.

#[tokio::test]
async fn ready_against_the_stack_then_exits_0_on_sigint() {
    leadflow_testkit::check_service_lifecycle(env!("CARGO_BIN_EXE_crm-sink"), libc::SIGINT).await.unwrap();
}
