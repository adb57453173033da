//! The binary against the real stack: ready when Kafka and the registry answer, exit 0 on SIGTERM,
//! and a misspelt config key stops it at start-up with the key's name.

use std::process::Command;

#[tokio::test]
async fn ready_against_the_stack_then_exits_0_on_sigterm() {
    use leadflow_core::contract::topics::NAMES;
    use leadflow_testkit::kafka::new_group_at_end;
    // A group of its own that starts at the end of the topic: this test is about the process,
    // and names left by other tests must not give it work.
    let stack = leadflow_testkit::Stack::get();
    let group = new_group_at_end(&stack, "enricher-lifecycle", NAMES);
    let env = [("LEADFLOW_CONSUMER__GROUP_ID", group)];
    leadflow_testkit::check_service_lifecycle_with(env!("CARGO_BIN_EXE_enricher"), libc::SIGTERM, &env)
        .await
        .unwrap();
}

#[test]
fn an_unknown_config_key_fails_start_up_naming_the_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_enricher"))
        .env("LEADFLOW_KAFKA__BOOTSTRAP_SERVER", "127.0.0.1:9092")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bootstrap_server"), "{stderr}");
}

#[tokio::test]
async fn readyz_names_kafka_when_the_broker_is_unreachable() {
    use leadflow_testkit::{ServiceProcess, Stack, free_port, service_env};
    let stack = Stack::get();
    let ops = format!("127.0.0.1:{}", free_port());
    let mut env = service_env(&stack, &ops);
    env.retain(|(k, _)| *k != "LEADFLOW_KAFKA__BOOTSTRAP_SERVERS");
    env.push(("LEADFLOW_KAFKA__BOOTSTRAP_SERVERS", format!("127.0.0.1:{}", free_port())));
    let mut service = ServiceProcess::spawn(env!("CARGO_BIN_EXE_enricher"), &env).unwrap();
    service.wait_http_ok(&format!("http://{ops}/healthz"), std::time::Duration::from_secs(30)).await.unwrap();
    let response = reqwest::get(format!("http://{ops}/readyz")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(body.contains("kafka:"), "{body}");
    assert!(!body.contains("schema_registry:"), "the registry is up, so only kafka is named: {body}");
}
