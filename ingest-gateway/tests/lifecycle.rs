//! The binary against the real stack: ready when Kafka and the registry answer, exit 0 on SIGTERM.

#[tokio::test]
async fn ready_against_the_stack_then_exits_0_on_sigterm() {
    let env = leadflow_testkit::auth::gateway_auth_env();
    leadflow_testkit::check_service_lifecycle_with(env!("CARGO_BIN_EXE_ingest-gateway"), libc::SIGTERM, &env)
        .await
        .unwrap();
}
