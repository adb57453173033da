//! The real server SDKs from npm, `@segment/analytics-node` and `@rudderstack/rudder-sdk-node`
//! (pinned in `tests/browser/package-lock.json`; `scripts/install-browser-test` installs them),
//! pointed at the gateway's `/v1/batch` with a project's write key, on the real stack: the
//! gateway, the scorer, Kafka, the registry and MongoDB. `tests/browser/sdk_node.mjs` sends the
//! calls with explicit messageIds and prints them.
//!
//! - Each SDK's track, identify and page calls are scored on the lead of their userId (a user
//!   id with a space, so a "b64." lead id), each under eventId = its messageId, once.
//! - A batch the gateway took but whose answer the SDK saw as a 503 (a proxy in the driver) is
//!   resent whole by the SDK: both copies reach Kafka, and nothing is scored twice.
//!
//! Uses the scorer binary from `target/debug` (`cargo build -p scorer`).

// No screenshots here: the driver runs node only.
#[allow(dead_code)]
#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/sdk.rs"]
mod sdk;

use std::time::Duration;

use leadflow_testkit::{repo_root, unique};
use sdk::{SdkStack, driver_result, final_score, lead_id_of, times_scored};
use serde_json::Value;

/// The project's points: every call the driver makes scores, each type differently.
const POINTS: [(&str, f64); 4] =
    [("signed_up", 20.0), ("page_view", 5.0), ("identify", 1.0), ("demo_requested", 50.0)];

fn points(event_type: &str) -> f64 {
    POINTS.iter().find(|(t, _)| *t == event_type).map_or(0.0, |(_, p)| *p)
}

/// Runs `sdk_node.mjs` in `mode` against `stack`: what it printed as its result.
async fn run_sdks(stack: &SdkStack, mode: &str, run: &str) -> Value {
    let printed = browser::run_driver(
        "sdk_node.mjs",
        &repo_root().join("target/sdk-screenshots/node"),
        &[
            ("GATEWAY_URL", stack.gateway.base_url.clone()),
            ("WRITE_KEY", stack.write_key.clone()),
            ("RUN", run.to_owned()),
            ("MODE", mode.to_owned()),
        ],
        Duration::from_secs(180),
        || format!("gateway log:\n{}", stack.gateway.process.logs()),
    )
    .await;
    driver_result(&printed)
}

fn id<'a>(sdk: &'a Value, call: &str) -> &'a str {
    sdk["messageIds"][call].as_str().unwrap()
}

#[tokio::test]
async fn the_segment_and_rudderstack_node_sdks_are_scored_under_their_message_ids() {
    browser::browser_tools();
    let stack = SdkStack::start("sdk-node", &[], &POINTS).await;
    let run = unique("send");
    let result = run_sdks(&stack, "send", &run).await;

    for name in ["segment", "rudder"] {
        let sent = &result["sdks"][name];
        let lead = lead_id_of(sent["userId"].as_str().unwrap());
        assert!(lead.starts_with("b64."), "{lead}");
        let calls = [("track", "signed_up"), ("identify", "identify"), ("page", "page_view")];
        let ids: Vec<&str> = calls.iter().map(|(call, _)| id(sent, call)).collect();
        let scored = stack.scored(&lead, &ids, Duration::from_secs(60)).await;
        for (call, event_type) in calls {
            let event_id = id(sent, call);
            assert_eq!(times_scored(&scored, event_id), 1, "{name} {call} {event_id}: {scored:?}");
            let record = scored.iter().find(|s| s.event_id == event_id).unwrap();
            assert_eq!(
                (record.event_type.as_str(), record.delta),
                (event_type, points(event_type)),
                "{name} {call}"
            );
        }
        assert_eq!(final_score(&scored), 26.0, "{name}: {scored:?}");
        let published = stack.published(&lead).await;
        let mut published_ids: Vec<&str> = published.iter().map(|e| e.event_id.as_str()).collect();
        published_ids.sort_unstable();
        let mut sent_ids = ids.clone();
        sent_ids.sort_unstable();
        assert_eq!(published_ids, sent_ids, "{name}: the gateway published one event per call");
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_batch_resent_after_a_503_is_scored_once() {
    browser::browser_tools();
    let stack = SdkStack::start("sdk-retry", &[], &POINTS).await;
    let run = unique("retry");
    let result = run_sdks(&stack, "retry", &run).await;

    for name in ["segment", "rudder"] {
        let sent = &result["sdks"][name];
        let lead = lead_id_of(sent["userId"].as_str().unwrap());
        let retried: Vec<&str> =
            sent["retried"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(!retried.is_empty(), "{name}: {sent}");
        // The marker was sent after the retry was answered, on the same lead, so the same
        // partition: once it is scored, the scorer has seen both copies of the batch.
        let ids = ["track", "identify", "page", "marker"].map(|call| id(sent, call));
        let scored = stack.scored(&lead, &ids, Duration::from_secs(60)).await;
        let published = stack.published(&lead).await;
        for event_id in &retried {
            let copies = published.iter().filter(|e| e.event_id == *event_id).count();
            assert!(
                copies >= 2,
                "{name}: {event_id} reached Kafka {copies} times, so the retry was not tested"
            );
        }
        for event_id in ids {
            assert_eq!(times_scored(&scored, event_id), 1, "{name}: {event_id} in {scored:?}");
        }
        assert_eq!(final_score(&scored), 76.0, "{name}: 20 + 1 + 5 + 50, each once: {scored:?}");
    }
    stack.stop().await;
}
