//! ingest-gateway: the HTTP API that producers post lead names and behavioural events to, and
//! where people post their reviews of leads (Verified or Rejected). It validates them and
//! publishes them to Kafka keyed by lead id, answering 202 only once Kafka has acknowledged each
//! record. It also serves the scoring rules: the rules in force, read from
//! `scoring.rules.v1` as the scorer reads them, and publishing a new rule set there. And it
//! serves the read API (leads, a lead's history and intelligence, the leaderboard) from the
//! MongoDB read model that the crm-sink and the scorer write, and the dashboard at `/` over it.
//!
//! By layer: [`write`], [`read`] and [`live`] (the stream of lead updates) each own their
//! handlers and the state they take; [`state`] composes that state and [`routes`] the router.

pub mod auth;
pub mod automations;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod ids;
pub mod live;
pub mod metrics;
pub mod read;
pub mod routes;
pub mod segment;
pub mod state;
pub mod users;
pub mod webhooks;
pub mod write;

#[cfg(test)]
mod testing;

use std::sync::Arc;
use std::time::Duration;

use leadflow_core::contract::codec::SchemaCodec;
use leadflow_core::runtime::ops_server::ReadinessChecks;
use leadflow_core::runtime::service::{self, ServiceContext};
use leadflow_core::stage::automation_feed::{self, AutomationBook};
use leadflow_core::stage::kafka::producer_config;
use leadflow_core::stage::rules_feed::{self, RuleBook};
use leadflow_core::stage::startup::{self, StartupError};
use rdkafka::producer::FutureProducer;
use tokio::sync::{oneshot, watch};

pub use config::{DEFAULTS, GatewayConfig as Config};

use crate::auth::AuthState;
use crate::auth::store::MongoAuthStore;
use crate::automations::AutomationsState;
use crate::automations::executions::MongoExecutionStore;
use crate::live::LiveState;
use crate::live::tail::{self, LiveUpdates};
use crate::metrics::GatewayMetrics;
use crate::read::ReadState;
use crate::read::read_store::ReadStore;
use crate::state::AppState;
use crate::users::UsersState;
use crate::users::store::MongoUserStore;
use crate::webhooks::WebhooksState;
use crate::webhooks::store::MongoWebhookStore;
use crate::write::WriteState;
use crate::write::publisher::KafkaPublisher;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("cannot create the Kafka producer: {0}")]
    Producer(#[from] rdkafka::error::KafkaError),
    #[error("cannot set up the MongoDB client: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("cannot set up dashboard sessions: {0}")]
    Sessions(#[from] crate::users::session::SessionError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

pub async fn run(config: Config, context: ServiceContext) -> Result<(), GatewayError> {
    let codec = Arc::new(SchemaCodec::new(&config.schema_registry).map_err(StartupError::from)?);
    let mut producer_cfg = producer_config(&config.kafka);
    producer_cfg.set("message.timeout.ms", config.http.delivery_timeout.as_millis().to_string());
    let producer: FutureProducer = producer_cfg.create()?;

    // Kafka, the registry and the API's own listener decide readiness (see `with_api_listener`).
    // MongoDB is deliberately left out, although every request needs it (keys, the shared rate
    // limit, the read model): every replica shares the one MongoDB, so an outage would take them
    // all out of the Service at once, and clients would meet refused connections instead of a 503
    // with Retry-After. Building the client connects to nothing, so a MongoDB outage does not hold
    // up start-up either.
    let mongo = leadflow_core::store::mongo::client(&config.mongo, "ingest-gateway").await?;
    let reads = ReadStore::new(mongo.clone(), &config.mongo.database);
    let executions = Arc::new(MongoExecutionStore::new(mongo.clone(), &config.mongo.database));
    let subscriptions = Arc::new(MongoWebhookStore::new(mongo.clone(), &config.mongo.database));
    // Keys, projects and rate limits live in MongoDB too: with auth, the write API needs it to
    // check a key (each replica caches a lookup for `auth.cache_ttl`) and to count the shared
    // rate limit; while MongoDB is away, requests answer 503 with Retry-After.
    //
    // Dashboard users live there as well, and their sessions are the third kind of credential.
    let users = Arc::new(UsersState::new(
        &config.auth,
        Arc::new(MongoUserStore::new(mongo.clone(), &config.mongo.database)),
        config.http.retry_after,
    )?);
    let auth = Arc::new(AuthState::new(
        &config.auth,
        Arc::new(MongoAuthStore::new(mongo, &config.mongo.database)),
        users.sessions.clone(),
        config.http.retry_after,
    ));
    let default_project = tokio::spawn(ensure_default_project(auth.clone(), context.shutdown.clone()));
    let (api_listening, api_listening_rx) = watch::channel(false);
    let readiness = with_api_listener(
        startup::kafka_and_registry_readiness(&config.kafka, codec.clone()),
        api_listening_rx,
    );
    let ops = service::serve_ops(&context, &config.telemetry, readiness)
        .await
        .map_err(|source| StartupError::OpsListener { addr: config.telemetry.ops_listen, source })?;
    startup::register_schemas(&codec, &context.shutdown).await?;

    // The same reader of `scoring.rules.v1` as the scorer's, so both agree on the rules in force.
    let (rules_tx, rules) = watch::channel(RuleBook::default());
    let (caught_up_tx, caught_up) = oneshot::channel();
    let feed =
        tokio::spawn(follow_rules(config.kafka.clone(), codec.clone(), rules_tx, caught_up_tx, &context));
    // The automation rules, read as every automator reads them.
    let (automation_book, _) = watch::channel(AutomationBook::default());
    let (automations_caught_up_tx, automations_caught_up) = oneshot::channel();
    let automation_feed = tokio::spawn(follow_automation_rules(
        config.kafka.clone(),
        codec.clone(),
        automation_book.clone(),
        automations_caught_up_tx,
        &context,
    ));
    // Until the topics are read to their end, the rules read so far may be older than those in
    // force, and GET would report them and PUT check versions against them. Each `caught_up`
    // also resolves when its reader stops (its sender is dropped).
    tokio::select! {
        _ = async { let _ = tokio::join!(caught_up, automations_caught_up); } => {}
        _ = tokio::time::sleep(RULES_CATCH_UP_WAIT) => {
            tracing::warn!("the scoring rules topic was not read to its end in time; serving the rules read so far");
        }
        _ = context.shutdown.cancelled() => {}
    }
    // The default project's version, under the name this line has always had.
    let default_rules = rules.borrow().for_project(leadflow_core::contract::project::DEFAULT_PROJECT);
    tracing::info!(version = %default_rules.rules.version, "scoring rules loaded");

    let updates = LiveUpdates::new();
    let live_feed = tokio::spawn(tail::follow(
        config.kafka.clone(),
        codec.clone(),
        updates.clone(),
        context.shutdown.clone(),
    ));
    let retry_after = config.http.retry_after;
    let write = Arc::new(WriteState {
        publisher: KafkaPublisher::new(producer, codec),
        metrics: GatewayMetrics::register(&context.metrics)?,
        retry_after,
        rules: rules.clone(),
    });
    let state = AppState {
        write: write.clone(),
        read: Arc::new(ReadState { reads, rules, retry_after }),
        live: Arc::new(LiveState { updates, shutdown: context.shutdown.clone() }),
        auth,
        users,
        automations: Arc::new(AutomationsState {
            book: automation_book,
            executions,
            subscriptions: subscriptions.clone(),
            retry_after,
        }),
        webhooks: Arc::new(WebhooksState {
            store: subscriptions,
            policy: config.webhooks.url_policy(),
            test_timeout: config.webhooks.test_timeout,
            retry_after,
        }),
        request_timeout: config.http.request_timeout,
    };
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| GatewayError::Listen { addr: config.http.listen, source })?;
    tracing::info!(addr = %listener.local_addr().map_err(GatewayError::Serve)?, "API listening");
    // Only now: a client that waits for `/readyz` and then posts must find the port listening.
    api_listening.send_replace(true);

    // Graceful: stop accepting, let in-flight requests finish (each waits for its records'
    // acknowledgements, bounded by the request timeout), then flush what is left.
    let served = axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(context.shutdown.clone().cancelled_owned())
        .await;
    let grace = config.shutdown.grace_period;
    if let Err(e) = write.publisher.flush(grace) {
        tracing::error!(error = %e, "records left unacknowledged at shutdown");
    }
    context.shutdown.cancel();
    if tokio::time::timeout(grace, feed).await.is_err() {
        tracing::warn!("the scoring rules reader did not stop within the grace period");
    }
    if tokio::time::timeout(grace, automation_feed).await.is_err() {
        tracing::warn!("the automation rules reader did not stop within the grace period");
    }
    if tokio::time::timeout(grace, live_feed).await.is_err() {
        tracing::warn!("the live updates reader did not stop within the grace period");
    }
    default_project.abort();
    let _ = ops.await;
    served.map_err(GatewayError::Serve)
}

/// Adds `/readyz`'s `api_listener` check: failing until `listening` turns true, once the API
/// port is bound. Kafka and the registry answering is not enough: start-up reads the rules
/// topic before it binds the API, and a POST in between would be refused.
fn with_api_listener(checks: ReadinessChecks, listening: watch::Receiver<bool>) -> ReadinessChecks {
    checks.add("api_listener", move || {
        let answer =
            if *listening.borrow() { Ok(()) } else { Err("the API port is not listening yet".to_owned()) };
        std::future::ready(answer)
    })
}

/// Creates the `default` project if it is missing, retrying while MongoDB is away (start-up
/// does not wait for MongoDB: the ops endpoints and readiness come up without it).
async fn ensure_default_project(auth: Arc<AuthState>, shutdown: tokio_util::sync::CancellationToken) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match auth.ensure_default_project().await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot create the default project yet")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// How long start-up waits for the rules topic to be read to its end before serving anyway.
const RULES_CATCH_UP_WAIT: Duration = Duration::from_secs(15);

/// Follows `scoring.rules.v1` until shutdown. A reader that fails is logged, not fatal: the
/// gateway keeps serving events and leads, and the rules routes answer with the rules read so far.
fn follow_rules(
    kafka: leadflow_core::stage::kafka::KafkaConfig,
    codec: Arc<SchemaCodec>,
    rules: watch::Sender<RuleBook>,
    caught_up: oneshot::Sender<()>,
    context: &ServiceContext,
) -> impl Future<Output = ()> + Send + 'static {
    let shutdown = context.shutdown.clone();
    async move {
        if let Err(e) = rules_feed::follow(kafka, codec, rules, caught_up, |_| {}, shutdown).await {
            tracing::error!(error = %e, "cannot follow the scoring rules topic; serving the rules read so far");
        }
    }
}

/// Follows `automations.rules.v1` until shutdown; as [`follow_rules`], a reader that fails is
/// logged, and the automations routes answer with the rules read so far.
fn follow_automation_rules(
    kafka: leadflow_core::stage::kafka::KafkaConfig,
    codec: Arc<SchemaCodec>,
    book: watch::Sender<AutomationBook>,
    caught_up: oneshot::Sender<()>,
    context: &ServiceContext,
) -> impl Future<Output = ()> + Send + 'static {
    let shutdown = context.shutdown.clone();
    async move {
        if let Err(e) = automation_feed::follow(kafka, codec, book, caught_up, |_| {}, shutdown).await {
            tracing::error!(error = %e, "cannot follow the automation rules topic; serving the rules read so far");
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use leadflow_core::runtime::ops_server;
    use prometheus::Registry;
    use tower::ServiceExt;

    use super::*;

    async fn readyz(checks: &ReadinessChecks) -> (StatusCode, String) {
        let ops = ops_server::router(Registry::new(), checks.clone());
        let response = ops.oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readyz_fails_naming_the_api_listener_until_the_api_port_listens() {
        let (listening, listening_rx) = watch::channel(false);
        let checks =
            with_api_listener(ReadinessChecks::default().add("kafka", || async { Ok(()) }), listening_rx);
        let (status, body) = readyz(&checks).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("api_listener: the API port is not listening yet"), "{body}");
        listening.send_replace(true);
        assert_eq!(readyz(&checks).await, (StatusCode::OK, "ready\n".to_owned()));
    }
}
