//! The stream through `oneshot`, on the whole app: it resumes after `Last-Event-ID`, asks a
//! client from elsewhere to reset, ends at shutdown, carries only its caller's project's updates,
//! and ends once its key is revoked.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::auth::scope::Scope;
use crate::routes::router;
use crate::testing::{Harness, store_project};

/// Opens the stream with `key` (and `Last-Event-ID` when given).
async fn open(h: &Harness, key: &str, last_event_id: Option<&str>) -> axum::response::Response {
    let mut request = Request::get("/api/stream").header(header::AUTHORIZATION, format!("Bearer {key}"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    router(h.state.clone()).oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
}

fn seen(seq: u64) -> Update {
    Update { seq, project: "default".into(), data: Value::Null }
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
    let h = Harness::new();
    let state = h.state.live.clone();
    let live = &state.updates;
    for n in 1..=3 {
        live.publish("default", json!({ "kind": "scored", "leadId": format!("lead-{n}") }));
    }
    let response = open(&h, &h.key, Some(&live.event_id(&seen(1)))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body().into_data_stream();
    let live_for_later = live.clone();
    let (text, _) = read_stream_until(&mut body, |text| {
        if text.matches("event: lead").count() == 2 && !text.contains("lead-4") {
            // Live updates follow the missed ones.
            live_for_later.publish("default", json!({ "kind": "reviewed", "leadId": "lead-4" }));
        }
        text.contains("lead-4")
    })
    .await;
    assert!(!text.contains("lead-1"), "lead-1 was seen before the reconnect: {text}");
    let order: Vec<usize> = ["lead-2", "lead-3", "lead-4"].iter().map(|l| text.find(l).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "missed updates first, in order: {text}");
    assert!(text.contains(&format!("id: {}", live.event_id(&seen(4)))));

    let response = open(&h, &h.key, Some("another-gateway-7")).await;
    let mut body = response.into_body().into_data_stream();
    let (text, _) = read_stream_until(&mut body, |text| text.contains("\n\n")).await;
    assert!(text.starts_with("event: reset"), "an id from elsewhere asks the client to re-read: {text}");
    state.shutdown.cancel();
    let (rest, ended) = read_stream_until(&mut body, |_| false).await;
    assert!(ended, "the stream ends at shutdown; it sent {rest:?}");
}

#[tokio::test]
async fn a_stream_carries_only_its_projects_updates_even_when_resuming() {
    let h = Harness::new();
    store_project(&h.store, "acme", &[], None);
    let acme = h.key_of("acme", &[Scope::Read], None);
    let live = h.state.live.updates.clone();
    live.publish("default", json!({ "kind": "scored", "leadId": "same-id", "from": "default-0" }));
    live.publish("acme", json!({ "kind": "scored", "leadId": "same-id", "from": "acme-1" }));
    let response = open(&h, &acme, Some(&live.event_id(&seen(0)))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let later = live.clone();
    let (text, _) = read_stream_until(&mut body, |text| {
        if text.contains("acme-1") && !text.contains("acme-4") {
            later.publish("default", json!({ "kind": "scored", "leadId": "same-id", "from": "default-3" }));
            later.publish("acme", json!({ "kind": "scored", "leadId": "same-id", "from": "acme-4" }));
        }
        text.contains("acme-4")
    })
    .await;
    assert!(text.contains("acme-1") && text.contains("acme-4"), "{text}");
    assert!(!text.contains("default-"), "another project's updates reached the stream: {text}");
}

#[tokio::test]
async fn a_stream_needs_the_read_scope_and_ends_once_its_key_is_revoked() {
    let h = Harness::new();
    let ingest_only = h.key_of("default", &[Scope::Ingest], None);
    let (status, _, body) = h
        .send(Request::get("/api/stream").header("x-api-key", &ingest_only).body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::FORBIDDEN, Some("this key lacks the read scope"))
    );
    let (status, headers, _) = h.send_as_is(Request::get("/api/stream").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, headers[header::WWW_AUTHENTICATE].to_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "Bearer")
    );

    let reader = h.key_of("default", &[Scope::Read], None);
    let response = open(&h, &reader, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let key_id = crate::auth::keys::key_id_of(&reader).unwrap().to_owned();
    use crate::auth::store::AuthStore;
    h.store.revoke_key("default", &key_id, time::OffsetDateTime::now_utc()).await.unwrap();
    let revoked_at = std::time::Instant::now();
    let (rest, ended) = read_stream_until(&mut body, |_| false).await;
    assert!(ended, "the stream outlived its revoked key; it sent {rest:?}");
    let ttl = h.state.auth.cache_ttl;
    assert!(
        revoked_at.elapsed() <= ttl + Duration::from_millis(500),
        "ended after {:?}",
        revoked_at.elapsed()
    );
}

/// A session check whose one user belongs to `default` until `valid` is turned off (the JWT
/// expired, or the user left the project).
struct SwitchableSession {
    valid: std::sync::atomic::AtomicBool,
}

impl crate::auth::session::SessionCheck for SwitchableSession {
    fn check(
        &self,
        headers: &HeaderMap,
        _: &Method,
    ) -> futures::future::BoxFuture<'_, Result<Option<crate::auth::session::SessionUser>, AppError>> {
        let signed_in =
            headers.contains_key(header::COOKIE) && self.valid.load(std::sync::atomic::Ordering::SeqCst);
        let user = signed_in.then(|| crate::auth::session::SessionUser {
            email: "ada@example.com".into(),
            projects: vec!["default".into()],
        });
        Box::pin(std::future::ready(Ok(user)))
    }
}

#[tokio::test]
async fn a_session_stream_ends_once_its_session_no_longer_holds() {
    let sessions = Arc::new(SwitchableSession { valid: true.into() });
    let h = Harness::with_sessions(Default::default(), sessions.clone());
    let request =
        Request::get("/api/stream").header(header::COOKIE, "leadflow_session=x").body(Body::empty()).unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let ttl = h.state.auth.cache_ttl;
    let (_, ended) = read_stream_until(&mut body, |_| false).await;
    assert!(!ended, "a stream whose session holds stays open past {ttl:?}");

    sessions.valid.store(false, std::sync::atomic::Ordering::SeqCst);
    let expired_at = std::time::Instant::now();
    let (rest, ended) = read_stream_until(&mut body, |_| false).await;
    assert!(ended, "the stream outlived its session; it sent {rest:?}");
    assert!(
        expired_at.elapsed() <= ttl + Duration::from_millis(500),
        "ended after {:?}",
        expired_at.elapsed()
    );
}
