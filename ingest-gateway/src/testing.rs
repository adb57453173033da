//! What the router and write-handler tests share: the whole app, as `routes::router` serves it,
//! with a publisher that records instead of talking to Kafka, a read model that never answers,
//! and the rules in force set by hand, so every status, body, metric and "nothing published"
//! claim is checked offline through `oneshot`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use prometheus::Registry;
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

use leadflow_core::contract::records::TopicRecord;
use leadflow_core::model::scoring::ScoringRules;
use leadflow_core::stage::rules_feed::RulesInForce;

use crate::live::LiveState;
use crate::live::tail::LiveUpdates;
use crate::metrics::GatewayMetrics;
use crate::read::ReadState;
use crate::read::read_store::ReadStore;
use crate::routes::router;
use crate::state::AppState;
use crate::write::WriteState;
use crate::write::publisher::{PublishError, Publisher};

#[derive(Default)]
pub struct RecordingPublisher {
    /// What was published, as (topic, key, record as JSON), in order.
    pub published: Mutex<Vec<(String, String, Value)>>,
    /// When set, every record fails with it.
    pub failure: Mutex<Option<PublishError>>,
    /// Never answers: the request outlives its timeout.
    pub stall: bool,
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
                published.push((R::TOPIC.to_owned(), r.key().to_owned(), serde_json::to_value(r).unwrap()));
                Ok(())
            })
            .collect()
    }

    fn queue_depth(&self) -> u64 {
        0
    }
}

pub struct Harness {
    pub state: AppState<RecordingPublisher>,
    registry: Registry,
    /// Stands in for the rules topic's reader: what is sent here is the rules in force.
    rules: watch::Sender<RulesInForce>,
}

impl Harness {
    pub fn with(publisher: RecordingPublisher) -> Self {
        let registry = Registry::new();
        let (rules, rules_rx) = watch::channel(RulesInForce::seeds());
        let retry_after = Duration::from_secs(2);
        let state = AppState {
            write: Arc::new(WriteState {
                publisher,
                metrics: GatewayMetrics::register(&registry).unwrap(),
                retry_after,
                rules: rules_rx.clone(),
            }),
            read: Arc::new(ReadState { reads: ReadStore::unreachable(), rules: rules_rx, retry_after }),
            live: Arc::new(LiveState {
                updates: LiveUpdates::new(),
                shutdown: tokio_util::sync::CancellationToken::new(),
            }),
            request_timeout: Duration::from_millis(200),
        };
        Harness { state, registry, rules }
    }

    pub fn new() -> Self {
        Self::with(RecordingPublisher::default())
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
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

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, HeaderMap, Value) {
        self.send(post_request(path, "application/json", body.to_string())).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.send(Request::get(path).body(Body::empty()).unwrap()).await;
        (status, body)
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, HeaderMap, Value) {
        let request = Request::put(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    /// Makes `rules` the rules in force, as if read from the topic at `offset`.
    pub fn in_force(&self, rules: ScoringRules, offset: i64) {
        self.rules.send_replace(RulesInForce { rules: Arc::new(rules), offset: Some(offset) });
    }

    pub fn published(&self) -> Vec<(String, String, Value)> {
        self.state.write.publisher.published.lock().unwrap().clone()
    }

    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
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

pub fn post_request(path: &str, content_type: &str, body: String) -> Request<Body> {
    Request::post(path).header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap()
}
