//! The Segment API through the whole router (see [`crate::testing`]): each way of giving the
//! write key, each body form, what a call publishes and where, the limits, the statuses the
//! SDKs act on, CORS, the settings document and the tracker's files.

use std::io::Write;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::auth::scope::Scope;
use crate::routes::router;
use crate::testing::{Harness, RecordingPublisher, TEST_ADMIN_TOKEN, store_project};
use crate::write::publisher::PublishError;

const SHOP: &str = "https://shop.example";

fn basic(key: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")))
}

fn call(path: &str, auth: Option<&str>, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post(path);
    if let Some(auth) = auth {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(body.into()).unwrap()
}

fn track(message_id: &str, user: &str) -> Value {
    json!({"type": "track", "messageId": message_id, "userId": user, "event": "Order Completed"})
}

fn on_topic(h: &Harness, topic: &str) -> Vec<(String, Value)> {
    h.published().into_iter().filter(|(t, _, _)| t == topic).map(|(_, key, value)| (key, value)).collect()
}

fn original_of(letter: &Value) -> Value {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(letter["originalValue"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A project with `origins` and a write key of it (ingest only).
fn project_with_key(h: &Harness, id: &str, origins: &[&str], limit: Option<u32>) -> String {
    store_project(&h.store, id, origins, None);
    h.key_of(id, &[Scope::Ingest], limit)
}

#[tokio::test]
async fn a_track_with_basic_auth_is_one_event_whose_id_is_the_message_id() {
    let h = Harness::new();
    let request = call(
        "/v1/track",
        Some(&basic(&h.key)),
        Some("application/json"),
        track("m-1", "user 42").to_string(),
    );
    let (status, _, body) = h.send(request).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let events = on_topic(&h, "leads.events.v1");
    assert_eq!(events.len(), 1);
    let (key, event) = &events[0];
    assert_eq!(event["eventId"], "m-1");
    assert_eq!(event["eventType"], "order_completed");
    assert_eq!(key, event["leadId"].as_str().unwrap(), "keyed by its lead in the default project");
    assert_eq!(h.metric("gateway_segment_messages_total", &[("outcome", "accepted")]), 1.0);
    assert_eq!(h.metric("gateway_http_requests_total", &[("route", "/v1/track"), ("status", "200")]), 1.0);
}

#[tokio::test]
async fn a_write_key_in_a_text_plain_body_is_the_credential_and_never_published() {
    let h = Harness::new();
    let acme = project_with_key(&h, "acme", &[], None);
    let mut message = track("m-2", "u2");
    message["writeKey"] = json!(acme);
    let (status, _, body) = h.send_as_is(call("/v1/t", None, Some("text/plain"), message.to_string())).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let events = on_topic(&h, "leads.events.v1");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "acme/u2", "in the key's project");
    assert_eq!(events[0].1["projectId"], "acme");
    assert!(
        !h.published().iter().any(|(_, _, v)| v.to_string().contains(&acme)),
        "the key is never published"
    );
    // No Content-Type at all is taken too.
    let (status, _, _) = h.send_as_is(call("/v1/t", None, None, message.to_string())).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn no_wrong_or_revoked_key_is_401_and_publishes_nothing() {
    let h = Harness::new();
    let unknown = format!("lf_0123456789ab_{}", "A".repeat(43));
    let mut with_body_key = track("m", "u");
    with_body_key["writeKey"] = json!(unknown);
    for request in [
        call("/v1/track", None, Some("application/json"), track("m", "u").to_string()),
        call("/v1/track", Some(&basic(&unknown)), Some("application/json"), track("m", "u").to_string()),
        call("/v1/track", None, Some("text/plain"), with_body_key.to_string()),
        call("/v1/batch", Some(&format!("Bearer {unknown}")), None, json!({"batch": []}).to_string()),
        call("/v1/batch", Some("Basic %%%"), None, json!({"batch": []}).to_string()),
    ] {
        let (status, _, body) = h.send_as_is(request).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
        assert!(!body.to_string().contains(&unknown), "the answer quotes the key: {body}");
    }
    assert!(h.published().is_empty());
    let reader = h.key_of("default", &[Scope::Read], None);
    let request = call("/v1/track", Some(&basic(&reader)), None, track("m", "u").to_string());
    assert_eq!(h.send_as_is(request).await.0, StatusCode::FORBIDDEN, "a key without ingest");
}

#[tokio::test]
async fn any_content_type_is_read_as_json_as_the_sdks_label_it_variously() {
    // RudderStack's node SDK labels its gzip batches application/x-www-form-urlencoded.
    let h = Harness::new();
    for (n, media_type) in ["application/x-www-form-urlencoded", "text/html"].into_iter().enumerate() {
        let message = track(&format!("m-{n}"), "u").to_string();
        let (status, _, body) =
            h.send(call("/v1/track", Some(&basic(&h.key)), Some(media_type), message)).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"success": true})), "{media_type}");
    }
    assert_eq!(on_topic(&h, "leads.events.v1").len(), 2);
    let (status, _, _) = h.send(call("/v1/track", Some(&basic(&h.key)), Some("text/html"), "<p>")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "what is not JSON is a 400 whatever its label");
}

#[tokio::test]
async fn a_gzip_batch_is_decoded_and_each_message_published() {
    let h = Harness::new();
    let batch = json!({"batch": [track("g-1", "u1"), track("g-2", "u2")], "sentAt": "2026-01-16T10:00:00Z"});
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(batch.to_string().as_bytes()).unwrap();
    let request = Request::post("/v1/batch")
        .header(header::CONTENT_ENCODING, "gzip")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(encoder.finish().unwrap()))
        .unwrap();
    let (status, _, _) = h.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<Value> =
        on_topic(&h, "leads.events.v1").into_iter().map(|(_, e)| e["eventId"].clone()).collect();
    assert_eq!(ids, [json!("g-1"), json!("g-2")]);
}

#[tokio::test]
async fn a_message_over_32_kb_is_a_dead_letter_without_the_write_key_and_its_batch_mates_publish() {
    let h = Harness::new();
    let mut big = track("big", "u-big");
    big["properties"] = json!({"blob": "x".repeat(33 * 1024)});
    big["writeKey"] = json!(h.key);
    let batch = json!({"batch": [track("a", "u1"), big, {"type": "track", "messageId": "anon", "event": "Seen"}], "writeKey": h.key});
    let (status, _, body) =
        h.send_as_is(call("/v1/import", None, Some("text/plain"), batch.to_string())).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let events = on_topic(&h, "leads.events.v1");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["eventId"], "a");
    let letters = on_topic(&h, "leads.dlq.v1");
    let kinds: Vec<&str> = letters.iter().map(|(_, l)| l["errorKind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["message_too_large", "missing_identity"]);
    let (key, letter) = &letters[0];
    assert_eq!(letter["stage"], "gateway");
    assert_eq!(key, "u-big", "keyed by the lead the message names");
    let original = original_of(letter);
    assert_eq!(original["messageId"], "big");
    assert!(original.get("writeKey").is_none(), "{letter}");
    assert!(!letter.to_string().contains(&h.key));
    assert_eq!(letters[1].0, "", "a message without identity has no lead to be keyed by");
    assert_eq!(h.metric("gateway_segment_messages_total", &[("outcome", "dead_lettered")]), 2.0);
    assert_eq!(h.metric("gateway_records_rejected_total", &[("reason", "message_too_large")]), 1.0);
}

#[tokio::test]
async fn an_oversized_or_overfull_or_malformed_body_is_400_and_publishes_nothing() {
    let h = Harness::new();
    let filler = "x".repeat(1000);
    let messages: Vec<Value> = (0..600)
        .map(|i| json!({"type": "track", "userId": "u", "event": "e", "messageId": i, "p": filler}))
        .collect();
    let big_batch = json!({"batch": messages}).to_string();
    assert!(big_batch.len() > 600 * 1000);
    let (status, _, body) = h.send(call("/v1/batch", None, None, big_batch)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("payload_too_large")));
    let many: Vec<Value> = (0..=MAX_BATCH_MESSAGES).map(|_| json!({})).collect();
    let (status, _, body) = h.send(call("/v1/b", None, None, json!({"batch": many}).to_string())).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("batch")));
    let mut single = track("s", "u");
    single["properties"] = json!({"blob": "x".repeat(SINGLE_BODY_LIMIT)});
    let (status, _, _) = h.send(call("/v1/track", None, None, single.to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for bad in ["{\"type\":", "[1]", "\"text\""] {
        let (status, _, _) = h.send(call("/v1/page", None, None, bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _, _) = h.send(call("/v1/batch", None, None, json!({"batch": {}}).to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn kafka_not_acknowledging_is_503_with_retry_after() {
    let h = Harness::with(RecordingPublisher {
        failure: Mutex::new(Some(PublishError::Unavailable("the producer queue is full".into()))),
        ..Default::default()
    });
    let (status, headers, body) = h.send(call("/v1/track", None, None, track("m", "u").to_string())).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")));
    assert_eq!(headers[header::RETRY_AFTER], "2");
    assert_eq!(h.metric("gateway_segment_messages_total", &[]), 0.0);
}

#[tokio::test]
async fn the_rate_limit_counts_messages_and_answers_429_with_x_ratelimit_reset() {
    let h = Harness::new();
    let key = h.key_of("default", &[Scope::Ingest], Some(3));
    let batch =
        |ids: &[&str]| json!({"batch": ids.iter().map(|id| track(id, "u")).collect::<Vec<_>>()}).to_string();
    let (status, headers, _) = h.send(call("/v1/batch", Some(&basic(&key)), None, batch(&["a", "b"]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["ratelimit-remaining"], "1", "two messages counted");
    let (status, headers, body) =
        h.send(call("/v1/batch", Some(&basic(&key)), None, batch(&["c", "d"]))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
    assert_eq!(headers[header::RETRY_AFTER], "20");
    assert_eq!(headers[RATE_LIMIT_RESET_HEADER], "20");
    assert_eq!(on_topic(&h, "leads.events.v1").len(), 2, "nothing over the limit is published");
}

#[tokio::test]
async fn an_identify_of_an_anonymous_visitor_publishes_the_merge_keyed_by_the_anonymous_lead() {
    let h = Harness::new();
    let identify = json!({"messageId": "id-1", "anonymousId": "anon-7", "userId": "ada@example.com",
                          "traits": {"name": "Ada Lovelace"}});
    let (status, _, _) = h.send(call("/v1/identify", None, None, identify.to_string())).await;
    assert_eq!(status, StatusCode::OK);
    let events = on_topic(&h, "leads.events.v1");
    let merge = events.iter().find(|(_, e)| e["mergeInto"].is_string()).expect("a merge record");
    assert_eq!(merge.0, "anon-7");
    assert_eq!(merge.1["mergeInto"], "ada@example.com");
    assert!(events.iter().any(|(key, e)| key == "ada@example.com" && e["eventType"] == "identify"));
    assert_eq!(h.published().iter().filter(|(t, _, _)| t != "leads.events.v1").count(), 1, "the name");
}

#[tokio::test]
async fn the_projects_event_types_map_names_before_the_default_normalisation() {
    let h = Harness::new();
    let body = json!({"id": "acme", "eventTypes": {"Demo Requested": "demo_request"}});
    let request = Request::post("/api/projects")
        .header(header::AUTHORIZATION, format!("Bearer {TEST_ADMIN_TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, project) = h.send(request).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    assert_eq!(project["eventTypes"], json!({"Demo Requested": "demo_request"}));
    let key = h.key_of("acme", &[Scope::Ingest], None);
    let batch = json!({"batch": [
        {"type": "track", "userId": "u", "event": "Demo Requested"},
        {"type": "track", "userId": "u", "event": "Demo Watched"},
    ]});
    let (status, _, _) = h.send(call("/v1/batch", Some(&basic(&key)), None, batch.to_string())).await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<Value> =
        on_topic(&h, "leads.events.v1").into_iter().map(|(_, e)| e["eventType"].clone()).collect();
    assert_eq!(types, [json!("demo_request"), json!("demo_watched")]);
}

fn preflight(path: &str, origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri(path)
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cors_allows_a_preflight_from_any_projects_origin_and_an_answer_only_to_the_keys_project() {
    let h = Harness::new();
    let acme = project_with_key(&h, "acme", &[SHOP], None);
    let other = project_with_key(&h, "beta", &["https://beta.example"], None);
    for path in ["/v1/t", "/beacon/v1/batch", "/v1/projects/x/settings"] {
        let answer = router(h.state.clone()).oneshot(preflight(path, SHOP)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(answer.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], SHOP, "{path}");
        assert!(answer.headers()[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap().contains("POST"));
    }
    let refused = router(h.state.clone()).oneshot(preflight("/v1/t", "https://evil.example")).await.unwrap();
    assert!(!refused.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));

    let from_shop = |key: &str| {
        let mut message = track("c", "u");
        message["writeKey"] = json!(key);
        let mut request = call("/v1/t", None, Some("text/plain"), message.to_string());
        request.headers_mut().insert(header::ORIGIN, SHOP.parse().unwrap());
        request
    };
    let (status, headers, _) = h.send_as_is(from_shop(&acme)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], SHOP);
    assert!(
        headers[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains(RATE_LIMIT_RESET_HEADER)
    );
    let (status, headers, _) = h.send_as_is(from_shop(&other)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN), "another project's origin");
    // A preflight-less OPTIONS is still a method the route does not take.
    let bare = Request::builder().method(Method::OPTIONS).uri("/v1/t").body(Body::empty()).unwrap();
    assert_eq!(h.send(bare).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_settings_document_points_analytics_js_at_this_host_for_a_valid_key_only() {
    let h = Harness::new();
    let acme = project_with_key(&h, "acme", &[SHOP], None);
    let request = Request::get(format!("/v1/projects/{acme}/settings"))
        .header(header::HOST, "gw.example:8080")
        .header(header::ORIGIN, SHOP)
        .body(Body::empty())
        .unwrap();
    let (status, headers, document) = h.send_as_is(request).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert_eq!(document["integrations"]["Segment.io"]["apiHost"], "gw.example:8080/v1");
    assert_eq!(document["integrations"]["Segment.io"]["apiKey"], acme.as_str());
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], SHOP);
    assert_eq!(headers[header::CACHE_CONTROL], settings::CACHE_CONTROL);
    let unknown = format!("lf_0123456789ab_{}", "A".repeat(43));
    let (status, _, body) = h
        .send_as_is(Request::get(format!("/v1/projects/{unknown}/settings")).body(Body::empty()).unwrap())
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
}

#[tokio::test]
async fn the_tracker_and_its_test_page_are_served_with_their_types_cached_five_minutes() {
    let h = Harness::new();
    for (path, content_type, content) in [
        ("/sdk/ls.js", "application/javascript; charset=utf-8", sdk_assets::TRACKER),
        ("/sdk/test.html", "text/html; charset=utf-8", sdk_assets::TEST_PAGE),
    ] {
        let answer =
            router(h.state.clone()).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        assert_eq!(answer.headers()[header::CONTENT_TYPE], content_type);
        assert_eq!(answer.headers()[header::CACHE_CONTROL], "public, max-age=300");
        let body = axum::body::to_bytes(answer.into_body(), 1 << 20).await.unwrap();
        assert_eq!(body, content.as_bytes());
    }
}
