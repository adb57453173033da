//! What the router and write-handler tests share: the whole app, as `routes::router` serves it,
//! with a publisher that records instead of talking to Kafka, a read model that never answers,
//! the auth store in memory, and the rules in force set by hand, so every status, body, metric
//! and "nothing published" claim is checked offline through `oneshot`. Requests go with a key of
//! the default project holding every scope, unless they carry a credential of their own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use prometheus::Registry;
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

use leadflow_core::contract::records::TopicRecord;
use leadflow_core::model::scoring::ScoringRules;
use leadflow_core::model::webhook::UrlPolicy;
use leadflow_core::stage::automation_feed::AutomationBook;
use leadflow_core::stage::rules_feed::{RuleBook, RulesInForce};
use time::OffsetDateTime;

use crate::auth::AuthState;
use crate::auth::config::AuthConfig;
use crate::auth::documents::{ApiKeyDoc, ProjectDoc};
use crate::auth::keys;
use crate::auth::scope::Scope;
use crate::auth::session::{NoSessions, SessionCheck};
use crate::auth::store::{AuthStore, MemoryAuthStore};
use crate::automations::AutomationsState;
use crate::automations::executions::MemoryExecutionStore;

use crate::live::LiveState;
use crate::live::tail::LiveUpdates;
use crate::metrics::GatewayMetrics;
use crate::read::ReadState;
use crate::read::read_store::ReadStore;
use crate::routes::router;
use crate::state::AppState;
use crate::users::UsersState;
use crate::users::store::MemoryUserStore;
use crate::webhooks::WebhooksState;
use crate::webhooks::store::MemoryWebhookStore;
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
                published.push((R::TOPIC.to_owned(), r.key().into_owned(), serde_json::to_value(r).unwrap()));
                Ok(())
            })
            .collect()
    }

    /// Recorded as a null value under the key.
    async fn publish_tombstone(&self, topic: &'static str, key: &str) -> Result<(), PublishError> {
        if self.stall {
            std::future::pending::<()>().await;
        }
        if let Some(failure) = self.failure.lock().unwrap().clone() {
            return Err(failure);
        }
        self.published.lock().unwrap().push((topic.to_owned(), key.to_owned(), Value::Null));
        Ok(())
    }

    fn queue_depth(&self) -> u64 {
        0
    }
}

pub struct Harness {
    pub state: AppState<RecordingPublisher>,
    registry: Registry,
    /// Stands in for the rules topic's reader: what is sent here is the rules in force.
    rules: watch::Sender<RuleBook>,
    pub store: Arc<MemoryAuthStore>,
    /// The subscriptions and deliveries, in memory.
    pub webhooks: Arc<MemoryWebhookStore>,
    /// The executions log, in memory.
    pub executions: Arc<MemoryExecutionStore>,
    /// A key of the default project with every scope and no practical limit: what requests
    /// without a credential of their own are sent with.
    pub key: String,
}

pub const TEST_ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

pub fn auth_config() -> AuthConfig {
    serde_json::from_value(serde_json::json!({
        "admin_token": TEST_ADMIN_TOKEN, "jwt_secret": "j".repeat(32), "session_ttl": "1h",
        "cache_ttl": "2s", "default_events_per_minute": 100, "cookie_secure": false,
    }))
    .unwrap()
}

/// Stores a key of `project` with `scopes` and returns its text.
pub fn store_key(
    store: &MemoryAuthStore,
    project: &str,
    scopes: &[Scope],
    events_per_minute: Option<u32>,
) -> String {
    let made = keys::generate().unwrap();
    let doc = ApiKeyDoc {
        id: made.id,
        project_id: project.to_owned(),
        name: "test".to_owned(),
        scopes: scopes.to_vec(),
        events_per_minute,
        hash: made.hash,
        created_at: OffsetDateTime::now_utc(),
        revoked_at: None,
    };
    futures::executor::block_on(store.insert_key(doc)).unwrap();
    made.text.expose().to_owned()
}

pub fn store_project(
    store: &MemoryAuthStore,
    id: &str,
    allowed_origins: &[&str],
    events_per_minute: Option<u32>,
) {
    let project = ProjectDoc {
        id: id.to_owned(),
        name: id.to_owned(),
        allowed_origins: allowed_origins.iter().map(|o| o.to_string()).collect(),
        events_per_minute,
        event_types: Default::default(),
        created_at: OffsetDateTime::now_utc(),
    };
    futures::executor::block_on(store.insert_project(project)).unwrap();
}

impl Harness {
    pub fn with(publisher: RecordingPublisher) -> Self {
        Self::with_sessions(publisher, Arc::new(NoSessions))
    }

    pub fn with_sessions(publisher: RecordingPublisher, sessions: Arc<dyn SessionCheck>) -> Self {
        let registry = Registry::new();
        let (rules, rules_rx) = watch::channel(RuleBook::default());
        let retry_after = Duration::from_secs(2);
        let store = Arc::new(MemoryAuthStore::default());
        store_project(&store, "default", &[], None);
        let key = store_key(&store, "default", &Scope::ALL, Some(1_000_000));
        let auth = Arc::new(AuthState::new(&auth_config(), store.clone(), sessions, retry_after));
        let webhooks = Arc::new(MemoryWebhookStore::default());
        let executions = Arc::new(MemoryExecutionStore::default());
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
            auth,
            users: Arc::new(
                UsersState::new(&auth_config(), Arc::new(MemoryUserStore::default()), retry_after).unwrap(),
            ),
            automations: Arc::new(AutomationsState {
                book: watch::channel(AutomationBook::default()).0,
                executions: executions.clone(),
                subscriptions: webhooks.clone(),
                retry_after,
            }),
            // http to loopback allowed, as in the local stack: what the refusal tests check
            // beside the production rules.
            webhooks: Arc::new(WebhooksState {
                store: webhooks.clone(),
                policy: UrlPolicy::LOCAL_TESTS,
                test_timeout: Duration::from_secs(5),
                retry_after,
            }),
            request_timeout: Duration::from_millis(200),
        };
        Harness { state, registry, rules, store, webhooks, executions, key }
    }

    /// A new key of `project` (which must exist: see [`store_project`]).
    pub fn key_of(&self, project: &str, scopes: &[Scope], events_per_minute: Option<u32>) -> String {
        store_key(&self.store, project, scopes, events_per_minute)
    }

    pub fn new() -> Self {
        Self::with(RecordingPublisher::default())
    }

    /// Sends `request` with the harness's key unless it carries a credential of its own.
    pub async fn send(&self, mut request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let headers = request.headers();
        let has_credential = [header::AUTHORIZATION.as_str(), "x-api-key", header::COOKIE.as_str()]
            .iter()
            .any(|h| headers.contains_key(*h));
        if !has_credential {
            let bearer = format!("Bearer {}", self.key);
            request.headers_mut().insert(header::AUTHORIZATION, bearer.parse().unwrap());
        }
        self.send_as_is(request).await
    }

    /// Sends `request` exactly as it is, with no credential added.
    pub async fn send_as_is(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
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

    /// Makes `rules` the rules in force for their project, as if read from the topic at `offset`.
    pub fn in_force(&self, rules: ScoringRules, offset: i64) {
        self.rules
            .send_modify(|book| book.set(RulesInForce { rules: Arc::new(rules), offset: Some(offset) }));
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.send(Request::delete(path).body(Body::empty()).unwrap()).await;
        (status, body)
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

/// A request with `key` as its bearer credential and `body` (JSON) if any.
pub fn with_key(method: Method, path: &str, key: &str, body: Option<Value>) -> Request<Body> {
    let builder =
        Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {key}"));
    match body {
        Some(body) => {
            builder.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string()))
        }
        None => builder.body(Body::empty()),
    }
    .unwrap()
}
