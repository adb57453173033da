//! The binary against the real stack: ready when Kafka and the registry answer, exit 0 on SIGTERM.

#[tokio::test]
async fn ready_against_the_stack_then_exits_0_on_sigterm() {
    let env = leadflow_testkit::auth::gateway_auth_env();
    leadflow_testkit::check_service_lifecycle_with(env!("CARGO_BIN_EXE_ingest-gateway"), libc::SIGTERM, &env)
        .await
        .unwrap();
}

/// Without an admin token, or with a JWT secret too short, the gateway refuses to start: exit 2,
/// naming the variable to set, and never printing the value it was given.
#[tokio::test]
async fn without_its_secrets_it_exits_2_naming_the_variable() {
    use leadflow_testkit::auth::TEST_JWT_SECRET;
    let short = "short-secret-value".to_owned();
    let cases = [
        // Empty is missing (and overrides one the test's own environment may hold).
        (
            vec![
                ("LEADFLOW_AUTH__ADMIN_TOKEN", String::new()),
                ("LEADFLOW_AUTH__JWT_SECRET", TEST_JWT_SECRET.to_owned()),
            ],
            "LEADFLOW_AUTH__ADMIN_TOKEN",
        ),
        (
            vec![
                ("LEADFLOW_AUTH__ADMIN_TOKEN", leadflow_testkit::auth::TEST_ADMIN_TOKEN.to_owned()),
                ("LEADFLOW_AUTH__JWT_SECRET", short.clone()),
            ],
            "LEADFLOW_AUTH__JWT_SECRET",
        ),
    ];
    for (env, named) in cases {
        let mut process =
            leadflow_testkit::ServiceProcess::spawn(env!("CARGO_BIN_EXE_ingest-gateway"), &env).unwrap();
        let status = process.wait_exit(std::time::Duration::from_secs(20)).await.unwrap();
        let logs = process.logs();
        assert_eq!(status.code(), Some(2), "{logs}");
        assert!(logs.contains(named), "{logs}");
        assert!(!logs.contains(&short), "the value is printed: {logs}");
    }
}
