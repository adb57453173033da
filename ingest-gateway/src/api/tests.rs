//! Handler tests through `oneshot`: the router with a publisher that records instead of
//! talking to Kafka, so every status, body and "nothing published" claim is checked offline.

use std::sync::Mutex;

use axum::body::Body;
use axum::http::{Request, header};
use prometheus::Registry;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

#[derive(Default)]
struct RecordingPublisher {
    published: Mutex<Vec<(String, String, Value)>>,
    failure: Mutex<Option<PublishError>>,
    stall: bool,
}

impl Publisher for RecordingPublisher {
    async fn publish_all<R: TopicRecord>(&self, records: &[R]) -> Vec<Result<(), PublishError>> {
        if self.stall {
            std::future::pending::<()>().await;
        }
        if let Some(failure) = self.failure.lock().unwrap().clone() {
            return records.iter().map(|_| Err(failure.clone())).collect();
        }
        let mut published = self.published.lock().unwrap();
        records
            .iter()
            .map(|r| {
                published.push((
                    R::TOPIC.to_owned(),
                    r.lead_id().to_owned(),
                    serde_json::to_value(r).unwrap(),
                ));
                Ok(())
            })
            .collect()
    }

    fn queue_depth(&self) -> u64 {
        0
    }
}

struct Harness {
    state: Arc<AppState<RecordingPublisher>>,
    registry: Registry,
}

impl Harness {
    fn with(publisher: RecordingPublisher) -> Self {
        let registry = Registry::new();
        let state = Arc::new(AppState {
            publisher,
            metrics: GatewayMetrics::register(&registry).unwrap(),
            request_timeout: Duration::from_millis(200),
            retry_after: Duration::from_secs(2),
        });
        Harness { state, registry }
    }

    fn new() -> Self {
        Self::with(RecordingPublisher::default())
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("every answer is JSON")
        };
        (status, headers, body)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, axum::http::HeaderMap, Value) {
        self.send(post_request(path, "application/json", body.to_string())).await
    }

    fn published(&self) -> Vec<(String, String, Value)> {
        self.state.publisher.published.lock().unwrap().clone()
    }

    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.registry
            .gather()
            .iter()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.get_metric().to_vec())
            .filter(|m| {
                labels.iter().all(|(k, v)| m.get_label().iter().any(|l| l.name() == *k && l.value() == *v))
            })
            .map(|m| m.get_counter().get_value())
            .sum()
    }
}

fn post_request(path: &str, content_type: &str, body: String) -> Request<Body> {
    Request::post(path).header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn an_event_is_published_keyed_by_lead_and_answered_202() {
    let h = Harness::new();
    let (status, _, body) =
        h.post("/api/events", json!({"eventId": "evt1", "leadId": "lead-1", "eventType": "page_view", "timestamp": "2026-01-16T10:00:00Z"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"eventId": "evt1", "leadId": "lead-1"}));
    let published = h.published();
    assert_eq!(published.len(), 1);
    assert_eq!((published[0].0.as_str(), published[0].1.as_str()), ("leads.events.v1", "lead-1"));
    assert_eq!(published[0].2["eventType"], "page_view");
    assert_eq!(h.metric("gateway_http_requests_total", &[("route", "/api/events"), ("status", "202")]), 1.0);
    assert_eq!(h.metric("gateway_records_published_total", &[("topic", "leads.events.v1")]), 1.0);
}

#[tokio::test]
async fn a_missing_event_id_is_generated_and_returned() {
    let h = Harness::new();
    let (status, _, body) = h.post("/api/events", json!({"leadId": "lead-1", "eventType": "signup"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = body["eventId"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(h.published()[0].2["eventId"], id);
}

#[tokio::test]
async fn an_invalid_field_is_named_and_nothing_is_published() {
    let h = Harness::new();
    let (status, _, body) =
        h.post("/api/events", json!({"leadId": "lead 1", "eventType": "page_view"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_field");
    assert_eq!(body["field"], "leadId");
    assert!(body["message"].as_str().unwrap().contains("leadId"), "{body}");
    assert!(h.published().is_empty());
    assert_eq!(h.metric("gateway_records_rejected_total", &[("reason", "invalid_format")]), 1.0);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let h = Harness::new();
    let (status, _, body) =
        h.send(post_request("/api/events", "application/json", "{\"leadId\":".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_json");
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let h = Harness::new();
    let (status, _, body) = h.send(post_request("/api/events", "text/plain", "{}".into())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"], "unsupported_media_type");
    let no_type = Request::post("/api/events").body(Body::from("{}")).unwrap();
    assert_eq!(h.send(no_type).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let h = Harness::new();
    let padding = "x".repeat(EVENT_BODY_LIMIT);
    let (status, _, body) =
        h.post("/api/events", json!({"leadId": "l", "eventType": "t", "properties": {"p": padding}})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "payload_too_large");
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_404_and_405() {
    let h = Harness::new();
    let (status, _, body) = h.send(Request::get("/api/nope").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, _, body) = h.send(Request::get("/api/events").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn kafka_unavailable_is_503_with_retry_after_never_202() {
    let h = Harness::with(RecordingPublisher {
        failure: Mutex::new(Some(PublishError::Unavailable("the producer queue is full".into()))),
        ..Default::default()
    });
    let (status, headers, body) =
        h.post("/api/events", json!({"leadId": "lead-1", "eventType": "page_view"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "2");
    assert_eq!(body["error"], "unavailable");
    let (status, headers, _) = h.post("/api/leads", json!({"name": "Ada"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn a_request_that_outlives_the_timeout_is_503() {
    let h = Harness::with(RecordingPublisher { stall: true, ..Default::default() });
    let (status, headers, body) =
        h.post("/api/events", json!({"leadId": "lead-1", "eventType": "page_view"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "timeout");
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn a_mixed_batch_publishes_exactly_the_valid_items_in_order() {
    let h = Harness::new();
    let batch = json!({"events": [
        {"eventId": "a", "leadId": "lead-1", "eventType": "page_view"},
        {"eventId": "b", "leadId": "", "eventType": "page_view"},
        {"eventId": "c", "leadId": "lead-2", "eventType": "signup"},
        {"eventId": "d", "leadId": "lead-1", "eventType": "BAD", "timestamp": "soon"},
    ]});
    let (status, _, body) = h.post("/api/events/batch", batch).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!((body["accepted"].as_u64(), body["rejected"].as_u64()), (Some(2), Some(2)));
    let statuses: Vec<&str> =
        body["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["accepted", "rejected", "accepted", "rejected"]);
    assert_eq!(
        body["results"][2],
        json!({"status": "accepted", "index": 2, "eventId": "c", "leadId": "lead-2"})
    );

    assert_eq!(body["results"][1]["errors"][0]["field"], "events[1].leadId");
    let fields: Vec<&str> = body["results"][3]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["events[3].eventType", "events[3].timestamp"]);
    let published: Vec<Value> = h.published().into_iter().map(|(_, _, v)| v["eventId"].clone()).collect();
    assert_eq!(published, [json!("a"), json!("c")]);
}

#[tokio::test]
async fn batch_limits_and_an_all_invalid_batch() {
    let h = Harness::new();
    let too_many =
        json!({"events": vec![json!({"leadId": "l", "eventType": "t"}); MAX_EVENTS_PER_BATCH + 1]});
    let (status, _, body) = h.post("/api/events/batch", too_many).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("events")));
    let (status, _, body) = h.post("/api/events/batch", json!({"events": [{"leadId": ""}]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["rejected"], 1);
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn a_batch_whose_publish_fails_says_which_items_to_retry() {
    let h = Harness::with(RecordingPublisher {
        failure: Mutex::new(Some(PublishError::Unavailable("Kafka: broker down".into()))),
        ..Default::default()
    });
    let (status, headers, body) = h
        .post("/api/events/batch", json!({"events": [{"leadId": "l", "eventType": "t"}, {"leadId": ""}]}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(body["results"][0]["status"], "unavailable");
    assert_eq!(body["results"][1]["status"], "rejected");
    assert_eq!(body["accepted"], 0);
}

#[tokio::test]
async fn a_lead_is_trimmed_published_and_given_an_id() {
    let h = Harness::new();
    let (status, _, body) =
        h.post("/api/leads", json!({"name": "  Zoë Ångström ", "company": "Nordlys"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body[0]["name"], "Zoë Ångström");
    let lead_id = body[0]["leadId"].as_str().unwrap().to_owned();
    let published = h.published();
    assert_eq!((published[0].0.as_str(), published[0].1.as_str()), ("leads.names.v1", lead_id.as_str()));
    assert_eq!(published[0].2["company"], "Nordlys");
}

#[tokio::test]
async fn a_names_batch_takes_strings_and_objects_in_order() {
    let h = Harness::new();
    let (status, _, body) =
        h.post("/api/leads", json!({"names": ["Ada", {"name": "Kenji", "leadId": "lead-kenji"}]})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(body[1], json!({"leadId": "lead-kenji", "name": "Kenji"}));
    assert_eq!(h.published().len(), 2);
}

#[tokio::test]
async fn a_names_batch_with_a_bad_item_publishes_nothing_and_names_it() {
    let h = Harness::new();
    let (status, _, body) = h.post("/api/leads", json!({"names": ["Ada", "   ", "Kenji"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "names[1].name");
    assert!(h.published().is_empty());
    let too_many = json!({"names": vec!["x"; MAX_NAMES_PER_BATCH + 1]});
    assert_eq!(h.post("/api/leads", too_many).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_listed_route_is_served() {
    let h = Harness::new();
    for (method, path) in ROUTES {
        let request = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(*path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (status, _, _) = h.send(request).await;
        assert!(
            ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&status),
            "{method} {path}: {status}"
        );
    }
}
