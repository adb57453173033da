//! ingest-gateway: the HTTP API that producers post lead names and behavioural events to. It
//! validates them and publishes them to Kafka keyed by lead id, answering 202 only once Kafka
//! has acknowledged each record.

pub mod api;
pub mod config;
pub mod error;
pub mod json_body;
pub mod metrics;
pub mod publisher;
pub mod validation;

use std::sync::Arc;
use std::time::Duration;

use leadflow_core::codec::SchemaCodec;
use leadflow_core::kafka::producer_config;
use leadflow_core::service::{self, ServiceContext};
use rdkafka::producer::FutureProducer;

pub use config::{DEFAULTS, GatewayConfig as Config};

use crate::api::AppState;
use crate::metrics::GatewayMetrics;
use crate::publisher::KafkaPublisher;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Startup(#[from] service::StartupError),
    #[error("cannot create the Kafka producer: {0}")]
    Producer(#[from] rdkafka::error::KafkaError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

pub async fn run(config: Config, context: ServiceContext) -> Result<(), GatewayError> {
    let codec = Arc::new(SchemaCodec::new(&config.schema_registry).map_err(service::StartupError::from)?);
    let mut producer_cfg = producer_config(&config.kafka);
    producer_cfg.set("message.timeout.ms", config.http.delivery_timeout_ms.to_string());
    let producer: FutureProducer = producer_cfg.create()?;

    let readiness = service::kafka_and_registry_readiness(&config.kafka, codec.clone());
    let ops = service::serve_ops(&context, &config.telemetry, readiness)
        .await
        .map_err(|source| service::StartupError::OpsListener { addr: config.telemetry.ops_listen, source })?;
    service::register_schemas(&codec, &context.shutdown).await?;

    let state = Arc::new(AppState {
        publisher: KafkaPublisher::new(producer, codec),
        metrics: GatewayMetrics::register(&context.metrics)?,
        request_timeout: Duration::from_millis(config.http.request_timeout_ms),
        retry_after: Duration::from_secs(config.http.retry_after_s),
    });
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| GatewayError::Listen { addr: config.http.listen, source })?;
    tracing::info!(addr = %listener.local_addr().map_err(GatewayError::Serve)?, "API listening");

    // Graceful: stop accepting, let in-flight requests finish (each waits for its records'
    // acknowledgements, bounded by the request timeout), then flush what is left.
    let served = axum::serve(listener, api::router(state.clone()))
        .with_graceful_shutdown(context.shutdown.clone().cancelled_owned())
        .await;
    let grace = Duration::from_millis(config.shutdown.grace_period_ms);
    if let Err(e) = state.publisher.flush(grace) {
        tracing::error!(error = %e, "records left unacknowledged at shutdown");
    }
    let _ = ops.await;
    served.map_err(GatewayError::Serve)
}
