//! `/readyz` means ready: it answers 200 only once the API port listens, so a client that waits
//! for ready and then posts at once is accepted, never refused. Start-up reads the scoring rules
//! topic to its end before it binds the API; a readiness that looked only at Kafka and the
//! registry answered 200 during that wait.

mod common;

use std::time::{Duration, Instant};

use leadflow_testkit::{ServiceProcess, Stack};
use serde_json::json;

#[tokio::test]
async fn the_first_post_after_readyz_answers_200_is_accepted() {
    let stack = Stack::get();
    let mut env = vec![("LEADFLOW_HTTP__LISTEN", "127.0.0.1:0".to_owned())];
    env.extend(leadflow_testkit::auth::gateway_auth_env());
    let (mut gateway, ops) =
        ServiceProcess::spawn_against(&stack, env!("CARGO_BIN_EXE_ingest-gateway"), &env).await.unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    // Polled often: the sooner the first 200 is seen, the less time the API has had to bind.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = gateway.try_exit_status() {
            panic!("the gateway exited with {status} before it was ready; its logs:\n{}", gateway.logs());
        }
        let last = match client.get(format!("http://{ops}/readyz")).send().await {
            Ok(response) if response.status() == 200 => break,
            Ok(response) => format!("{}: {}", response.status(), response.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        assert!(Instant::now() < deadline, "/readyz: no 200 within 60 s; last: {last}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Looked up once, not waited for: the gateway logs the API's address as soon as it binds,
    // so by the time /readyz says ready the line is there.
    let api = gateway
        .wait_for_log_field("API listening", "addr", Duration::ZERO)
        .await
        .unwrap_or_else(|e| panic!("/readyz answered 200 before the API was listening: {e:#}"));
    // The first request is the management call that makes a key: it must be answered, not
    // refused.
    let key = leadflow_testkit::auth::create_project_and_key(
        &format!("http://{api}"),
        "default",
        &["ingest"],
        1_000_000,
    )
    .await
    .unwrap_or_else(|e| panic!("the first POST after /readyz answered 200 got no answer: {e:#}"));
    let lead = common::run_id();
    let response = client
        .post(format!("http://{api}/api/events"))
        .bearer_auth(&key)
        .json(&json!({"leadId": lead, "eventType": "page_view"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("the first POST after /readyz answered 200 got no answer: {e}"));
    let status = response.status();
    assert_eq!(status, 202, "{}", response.text().await.unwrap_or_default());
}
