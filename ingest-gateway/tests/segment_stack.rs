//! The Segment-compatible API of the gateway binary against the real stack: each way an SDK
//! gives its write key, each body form, `messageId` as the `eventId` on `leads.events.v1`, the
//! spec's limits (a message over 32 KB is a dead letter on `leads.dlq.v1` while its batch-mates
//! are published; a batch over 500 KB is a 400), an identify's merge record, CORS for a
//! project's origin, and the settings document analytics.js loads. Each test has a project of its
//! own, so its records are the ones keyed `<project>/…`.

mod common;

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use common::{Gateway, end_offsets};
use leadflow_core::contract::records::{DeadLetter, LeadEvent};
use leadflow_testkit::auth::{TEST_ADMIN_TOKEN, TEST_EVENTS_PER_MINUTE, create_key};
use leadflow_testkit::kafka::{decode_all, read_at_least};
use leadflow_testkit::{Stack, unique};
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};

const SHOP: &str = "https://shop.example";
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// A project of the test's own (allowing `origins`) and a write key of it.
async fn project_and_write_key(gateway: &Gateway, origins: &[&str]) -> (String, String) {
    let project = unique("seg");
    let answer = reqwest::Client::new()
        .post(format!("{}/api/projects", gateway.base_url))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .json(&json!({"id": project, "allowedOrigins": origins}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201, "{}", answer.text().await.unwrap());
    let key = create_key(&gateway.base_url, &project, &["ingest"], TEST_EVENTS_PER_MINUTE).await.unwrap();
    (project, key["key"].as_str().unwrap().to_owned())
}

/// POSTs `body` to `path` with `headers`: (status, headers, body as JSON when it is).
async fn post(gateway: &Gateway, path: &str, headers: HeaderMap, body: Vec<u8>) -> (u16, HeaderMap, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", gateway.base_url))
        .headers(headers)
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    pairs.iter().map(|(name, value)| (name.clone(), value.parse().unwrap())).collect()
}

fn basic(key: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn track(message_id: &str, user: &str) -> Value {
    json!({"type": "track", "messageId": message_id, "userId": user, "event": "Order Completed",
           "properties": {"total": 30}})
}

fn json_bytes(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

#[tokio::test]
async fn basic_auth_and_a_body_write_key_are_taken_as_json_text_and_gzip_with_message_ids_as_event_ids() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let (project, key) = project_and_write_key(&gateway, &[]).await;
    let from = end_offsets(&stack, "leads.events.v1");

    let as_json =
        headers(&[(header::AUTHORIZATION, &basic(&key)), (header::CONTENT_TYPE, "application/json")]);
    let (status, _, body) =
        post(&gateway, "/v1/track", as_json, json_bytes(&track("m-basic", "user 42"))).await;
    assert_eq!((status, body), (200, json!({"success": true})));

    let mut in_body = track("m-text", "u-text");
    in_body["writeKey"] = json!(key);
    let as_text = headers(&[(header::CONTENT_TYPE, "text/plain")]);
    let (status, _, body) = post(&gateway, "/v1/t", as_text, json_bytes(&in_body)).await;
    assert_eq!((status, body), (200, json!({"success": true})));

    let batch = json!({"batch": [track("m-gzip-1", "u-gzip"), track("m-gzip-2", "u-gzip")], "writeKey": key});
    let zipped = headers(&[(header::CONTENT_TYPE, "application/json"), (header::CONTENT_ENCODING, "gzip")]);
    let (status, _, body) = post(&gateway, "/v1/batch", zipped, gzip(&json_bytes(&batch))).await;
    assert_eq!((status, body), (200, json!({"success": true})));

    let unknown = format!("lf_0123456789ab_{}", "A".repeat(43));
    let wrong = headers(&[(header::AUTHORIZATION, &basic(&unknown))]);
    let (status, _, body) =
        post(&gateway, "/v1/track", wrong, json_bytes(&track("m-wrong", "u-wrong"))).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));
    let mut wrong_in_body = track("m-wrong", "u-wrong");
    wrong_in_body["writeKey"] = json!(unknown);
    let (status, _, _) = post(&gateway, "/v1/t", HeaderMap::new(), json_bytes(&wrong_in_body)).await;
    assert_eq!(status, 401);

    let prefix = format!("{project}/");
    let records = read_at_least(&stack, "leads.events.v1", &from, &prefix, 4, READ_DEADLINE).await;
    let ours: Vec<_> = records.iter().filter(|r| r.key.starts_with(&prefix)).collect();
    let events: Vec<LeadEvent> = decode_all(&stack, ours.iter().copied()).await;
    let mut ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["m-basic", "m-gzip-1", "m-gzip-2", "m-text"],
        "each message once, its messageId the eventId"
    );
    for (record, event) in ours.iter().zip(&events) {
        assert_eq!(event.project_id, project);
        assert_eq!(record.key, format!("{project}/{}", event.lead_id));
        assert_eq!(event.event_type, "order_completed");
    }
    assert!(
        !ours.iter().any(|r| String::from_utf8_lossy(&r.value).contains(&key)),
        "the key is never published"
    );
}

#[tokio::test]
async fn a_33_kb_message_is_a_dead_letter_its_batch_mates_are_published_and_a_600_kb_batch_is_400() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let (project, key) = project_and_write_key(&gateway, &[]).await;
    let events_from = end_offsets(&stack, "leads.events.v1");
    let dlq_from = end_offsets(&stack, "leads.dlq.v1");

    let mut big = track("m-big", "u-big");
    big["properties"] = json!({"blob": "x".repeat(33 * 1024)});
    big["writeKey"] = json!(key);
    let batch = json!({"batch": [track("m-mate-1", "u-a"), big, track("m-mate-2", "u-b")], "writeKey": key});
    let (status, _, body) = post(&gateway, "/v1/batch", HeaderMap::new(), json_bytes(&batch)).await;
    assert_eq!((status, body), (200, json!({"success": true})));

    let prefix = format!("{project}/");
    let letters = read_at_least(&stack, "leads.dlq.v1", &dlq_from, &prefix, 1, READ_DEADLINE).await;
    let ours: Vec<_> = letters.iter().filter(|r| r.key.starts_with(&prefix)).collect();
    let letters: Vec<DeadLetter> = decode_all(&stack, ours.iter().copied()).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(
        (letter.error_kind.as_str(), letter.project_id.as_str()),
        ("message_too_large", project.as_str())
    );
    assert_eq!(letter.lead_id, format!("{project}/u-big"));
    let original =
        base64::engine::general_purpose::STANDARD.decode(letter.original_value.as_ref().unwrap()).unwrap();
    let original: Value = serde_json::from_slice(&original).unwrap();
    assert_eq!(original["messageId"], "m-big");
    assert!(original.get("writeKey").is_none(), "the write key is removed from the original");
    assert!(!String::from_utf8_lossy(&ours[0].value).contains(&key));

    let records = read_at_least(&stack, "leads.events.v1", &events_from, &prefix, 2, READ_DEADLINE).await;
    let events: Vec<LeadEvent> =
        decode_all(&stack, records.iter().filter(|r| r.key.starts_with(&prefix))).await;
    let mut ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["m-mate-1", "m-mate-2"]);

    let filler = "x".repeat(1000);
    let messages: Vec<Value> = (0..600)
        .map(|i| json!({"type": "track", "userId": "u", "event": "e", "messageId": format!("m-{i}"), "p": filler}))
        .collect();
    let oversized = json_bytes(&json!({"batch": messages}));
    assert!(oversized.len() > 600 * 1000);
    let (status, _, body) =
        post(&gateway, "/v1/batch", headers(&[(header::AUTHORIZATION, &basic(&key))]), oversized).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("payload_too_large")));
}

#[tokio::test]
async fn an_identify_of_an_anonymous_visitor_publishes_the_merge_keyed_by_the_anonymous_lead() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let (project, key) = project_and_write_key(&gateway, &[]).await;
    let from = end_offsets(&stack, "leads.events.v1");
    let identify = json!({"messageId": "m-identify", "anonymousId": "anon-1", "userId": "ada@example.com",
                          "traits": {"name": "Ada Lovelace"}});
    let (status, _, _) = post(
        &gateway,
        "/v1/identify",
        headers(&[(header::AUTHORIZATION, &basic(&key))]),
        json_bytes(&identify),
    )
    .await;
    assert_eq!(status, 200);
    let anonymous = format!("{project}/anon-1");
    let records = read_at_least(&stack, "leads.events.v1", &from, &anonymous, 1, READ_DEADLINE).await;
    let merges: Vec<LeadEvent> = decode_all(&stack, records.iter().filter(|r| r.key == anonymous)).await;
    assert_eq!(merges.len(), 1, "{merges:?}");
    assert_eq!(merges[0].merge_into.as_deref(), Some("ada@example.com"));
    assert_eq!(merges[0].lead_id, "anon-1");
}

#[tokio::test]
async fn a_projects_event_types_set_by_patch_name_its_tracks_event_types() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let (project, key) = project_and_write_key(&gateway, &[]).await;
    let patched = reqwest::Client::new()
        .patch(format!("{}/api/projects/{project}", gateway.base_url))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .json(&json!({"eventTypes": {"Order Completed": "purchase", "a.b $c": "dotted"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status().as_u16(), 200);
    let answer: Value = patched.json().await.unwrap();
    assert_eq!(answer["eventTypes"], json!({"Order Completed": "purchase", "a.b $c": "dotted"}));
    let from = end_offsets(&stack, "leads.events.v1");
    let batch =
        json!({"batch": [track("m-mapped", "u-1"), {"type": "track", "userId": "u-1", "event": "a.b $c"}]});
    let (status, _, _) =
        post(&gateway, "/v1/batch", headers(&[(header::AUTHORIZATION, &basic(&key))]), json_bytes(&batch))
            .await;
    assert_eq!(status, 200);
    let prefix = format!("{project}/");
    let records = read_at_least(&stack, "leads.events.v1", &from, &prefix, 2, READ_DEADLINE).await;
    let events: Vec<LeadEvent> =
        decode_all(&stack, records.iter().filter(|r| r.key.starts_with(&prefix))).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["purchase", "dotted"], "one lead's events, in order");
}

#[tokio::test]
async fn a_projects_origin_passes_cors_with_text_plain_and_the_settings_document_points_at_the_gateway() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let (_project, key) = project_and_write_key(&gateway, &[SHOP]).await;
    let client = reqwest::Client::new();

    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/t", gateway.base_url))
        .header(header::ORIGIN, SHOP)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], SHOP);

    let mut message = track("m-cors", "u-cors");
    message["writeKey"] = json!(key);
    let (status, answer_headers, body) = post(
        &gateway,
        "/v1/t",
        headers(&[(header::ORIGIN, SHOP), (header::CONTENT_TYPE, "text/plain;charset=UTF-8")]),
        json_bytes(&message),
    )
    .await;
    assert_eq!((status, body), (200, json!({"success": true})));
    assert_eq!(answer_headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], SHOP);

    let settings = client
        .get(format!("{}/v1/projects/{key}/settings", gateway.base_url))
        .header(header::ORIGIN, SHOP)
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status().as_u16(), 200);
    assert_eq!(settings.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], SHOP);
    let document: Value = settings.json().await.unwrap();
    let host = gateway.base_url.trim_start_matches("http://");
    assert_eq!(document["integrations"]["Segment.io"]["apiHost"], format!("{host}/v1"));
    assert_eq!(document["integrations"]["Segment.io"]["apiKey"], key.as_str());
    let unknown = client
        .get(format!("{}/v1/projects/lf_0123456789ab_{}/settings", gateway.base_url, "A".repeat(43)))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 401);
}
