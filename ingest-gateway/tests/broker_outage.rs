//! With the broker stopped, the gateway answers 503 (never 202); once the broker is back, posting
//! works again. Alone in its test binary, because it stops the shared broker.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Gateway, end_offsets, read_from, run_id};
use leadflow_testkit::{Stack, repo_root};
use serde_json::json;

fn stack_command(args: &[&str]) {
    let status = Command::new(repo_root().join("deploy/local/stack")).args(args).status().unwrap();
    assert!(status.success(), "deploy/local/stack {args:?} failed");
}

/// Restarts the broker even when an assertion fails, so later tests find it running.
struct BrokerGuard;
impl Drop for BrokerGuard {
    fn drop(&mut self) {
        stack_command(&["up", "kafka"]);
    }
}

#[tokio::test]
async fn posting_gets_503_while_the_broker_is_down_and_works_again_after() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let lead = format!("{}.outage", run_id());
    let event = |n: u32| json!({"eventId": format!("{lead}.e{n}"), "leadId": lead, "eventType": "page_view"});
    assert_eq!(gateway.post("/api/events", &event(0)).await.0, 202);

    let guard = BrokerGuard;
    stack_command(&["down", "kafka"]);
    let (status, body) = gateway.post("/api/events", &event(1)).await;
    assert_eq!(status, 503, "a post while the broker is down must not be accepted: {body}");
    let (status, _) = gateway.post("/api/leads", &json!({"name": "Ada", "leadId": lead})).await;
    assert_eq!(status, 503);
    let ready = reqwest::get(format!("{}/readyz", gateway.ops_url)).await.unwrap();
    assert_eq!(ready.status(), 503, "readiness reports the broker down");

    drop(guard); // brings the broker back
    let from = end_offsets(&stack, "leads.events.v1");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut attempt = 2;
    loop {
        let (status, body) = gateway.post("/api/events", &event(attempt)).await;
        if status == 202 {
            break;
        }
        assert_eq!(status, 503, "only 503 while the broker comes back: {body}");
        assert!(Instant::now() < deadline, "posting did not recover within 90 s");
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let accepted = format!("{lead}.e{attempt}");
    let records = read_from(&stack, "leads.events.v1", &from, |r| {
        r.iter().any(|p| String::from_utf8_lossy(&p.value).contains(&accepted))
    })
    .await;
    assert!(records.iter().any(|p| p.key == lead), "the event accepted after recovery is in Kafka");
}
