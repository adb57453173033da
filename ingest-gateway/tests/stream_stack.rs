//! `GET /api/stream` against the real stack: records on the lead topics reach a connected
//! client as Server-Sent Events, a client that reconnects with `Last-Event-ID` gets what it
//! missed and nothing twice, and an open stream does not hold up a graceful stop.

mod common;

use std::time::Duration;

use common::{Gateway, read_events, run_id};
use leadflow_core::contract::records::{LeadScored, Stage};
use leadflow_testkit::Stack;
use leadflow_testkit::kafka::produce_records;
use serde_json::json;
use time::OffsetDateTime;

fn has_lead(events: &[common::SseEvent], lead: &str, kind: &str) -> bool {
    events.iter().any(|e| e.data["leadId"] == lead && e.data["kind"] == kind)
}

async fn open(gateway: &Gateway, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request =
        reqwest::Client::new().get(format!("{}/api/stream", gateway.base_url)).bearer_auth(&gateway.key);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
}

#[tokio::test]
async fn lead_updates_stream_live_and_a_reconnect_resumes_without_gaps_or_repeats() {
    let stack = Stack::get();
    let mut gateway = Gateway::start(&stack).await;
    gateway
        .process
        .wait_for_log("tailing lead topics for live updates", Duration::from_secs(30))
        .await
        .unwrap();
    let id = run_id();
    let (scored, reviewed, missed) = (format!("{id}-s"), format!("{id}-r"), format!("{id}-m"));

    let mut stream = open(&gateway, None).await;
    let mut pending = String::new();
    let now = OffsetDateTime::now_utc();
    produce_records(
        &stack,
        &[LeadScored {
            project_id: "default".into(),
            lead_id: scored.clone(),
            event_id: "e1".into(),
            event_type: "signup".into(),
            delta: 20.0,
            score: 20.0,
            stage: Stage::Warm,
            previous_stage: Some(Stage::Cold),
            event_timestamp: now,
            rules_version: "v1".into(),
            processed_at: now,
            late: false,
            reason: None,
            lead_version: Some(1),
            merged_into: None,
        }],
    )
    .await;
    let (status, _) =
        gateway.post(&format!("/api/leads/{reviewed}/review"), &json!({"decision": "Verified"})).await;
    assert_eq!(status, 202);
    let events = read_events(&mut stream, &mut pending, |events| {
        has_lead(events, &scored, "scored") && has_lead(events, &reviewed, "reviewed")
    })
    .await;
    let score = events.iter().find(|e| e.data["leadId"] == scored.as_str()).unwrap();
    assert_eq!(
        (score.event.as_str(), &score.data["score"], &score.data["stage"]),
        ("lead", &json!(20.0), &json!("warm"))
    );
    let last_seen = events.last().unwrap().id.clone().expect("every lead event has an id");
    drop(stream);

    // While the client is away: one more update, which the reconnect must bring.
    let (status, _) =
        gateway.post(&format!("/api/leads/{missed}/review"), &json!({"decision": "Rejected"})).await;
    assert_eq!(status, 202);
    let mut stream = open(&gateway, Some(&last_seen)).await;
    let mut pending = String::new();
    let events = read_events(&mut stream, &mut pending, |events| has_lead(events, &missed, "reviewed")).await;
    assert!(events.iter().all(|e| e.event == "lead"), "no reset for a known id: {events:?}");
    for earlier in [&scored, &reviewed] {
        assert!(
            !events.iter().any(|e| e.data["leadId"] == earlier.as_str()),
            "{earlier} came twice: {events:?}"
        );
    }
    let rejected = events.iter().find(|e| e.data["leadId"] == missed.as_str()).unwrap();
    assert_eq!(rejected.data["decision"], "Rejected");

    // An open stream does not hold up a graceful stop.
    gateway.process.signal(libc::SIGTERM).unwrap();
    let status = gateway.process.wait_exit(Duration::from_secs(15)).await.unwrap();
    assert_eq!(status.code(), Some(0), "{}", gateway.process.logs());
}
