//! The stream through `oneshot`, on a router of the stream's route alone: it resumes after
//! `Last-Event-ID`, asks a client from elsewhere to reset, and ends at shutdown.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

fn live_state() -> Arc<LiveState> {
    Arc::new(LiveState { updates: LiveUpdates::new(), shutdown: tokio_util::sync::CancellationToken::new() })
}

/// Reads a streaming body until `enough` holds for the text so far; also says whether the
/// stream ended. Gives up after 5 s.
async fn read_stream_until(
    chunks: &mut axum::body::BodyDataStream,
    enough: impl Fn(&str) -> bool,
) -> (String, bool) {
    use futures::StreamExt;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !enough(&text) {
        match tokio::time::timeout_at(deadline, chunks.next()).await {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk.unwrap())),
            Ok(None) => return (text, true),
            Err(_) => break,
        }
    }
    (text, false)
}

#[tokio::test]
async fn the_stream_resumes_after_the_last_event_id_and_ends_at_shutdown() {
    let state = live_state();
    let live = &state.updates;
    for n in 1..=3 {
        live.publish(json!({ "kind": "scored", "leadId": format!("lead-{n}") }));
    }
    let first = Update { seq: 1, data: Value::Null };
    let request = Request::get("/api/stream")
        .header("last-event-id", live.event_id(&first))
        .body(Body::empty())
        .unwrap();
    let response = routes().with_state(state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body().into_data_stream();
    let live_for_later = live.clone();
    let (text, _) = read_stream_until(&mut body, |text| {
        if text.matches("event: lead").count() == 2 && !text.contains("lead-4") {
            // Live updates follow the missed ones.
            live_for_later.publish(json!({ "kind": "reviewed", "leadId": "lead-4" }));
        }
        text.contains("lead-4")
    })
    .await;
    assert!(!text.contains("lead-1"), "lead-1 was seen before the reconnect: {text}");
    let order: Vec<usize> = ["lead-2", "lead-3", "lead-4"].iter().map(|l| text.find(l).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "missed updates first, in order: {text}");
    assert!(text.contains(&format!("id: {}", live.event_id(&Update { seq: 4, data: Value::Null }))));

    let request =
        Request::get("/api/stream").header("last-event-id", "another-gateway-7").body(Body::empty()).unwrap();
    let response = routes().with_state(state.clone()).oneshot(request).await.unwrap();
    let mut body = response.into_body().into_data_stream();
    let (text, _) = read_stream_until(&mut body, |text| text.contains("\n\n")).await;
    assert!(text.starts_with("event: reset"), "an id from elsewhere asks the client to re-read: {text}");
    state.shutdown.cancel();
    let (rest, ended) = read_stream_until(&mut body, |_| false).await;
    assert!(ended, "the stream ends at shutdown; it sent {rest:?}");
}
