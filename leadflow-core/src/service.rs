//! What every service binary does around its own work: load config, start logging, turn
//! SIGTERM/SIGINT into a cancellation token, serve the ops endpoints, and map the outcome to an
//! exit code (0 after a clean drain, 1 on failure, 2 on bad config).

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::codec::SchemaCodec;
use crate::config::{KafkaConfig, TelemetryConfig, load_from_env};
use crate::ops_server::{self, ReadinessChecks};
use crate::{kafka, shutdown, telemetry};

/// A service's config: whatever it holds, it has a telemetry section.
pub trait ServiceConfig: DeserializeOwned {
    fn telemetry(&self) -> &TelemetryConfig;
}

/// What a running service gets from its runtime.
pub struct ServiceContext {
    pub name: &'static str,
    pub shutdown: CancellationToken,
    pub metrics: Registry,
}

/// The whole `main` of a service: `run` does the service's work until the token is cancelled.
pub fn run_main<C, F, Fut, E>(name: &'static str, service_defaults: &str, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, ServiceContext) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let config: C = match load_from_env(&[crate::config::SHARED_DEFAULTS, service_defaults]) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(config.telemetry());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "could not start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = match shutdown::on_termination_signal() {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(error = %e, "could not install signal handlers");
                return ExitCode::FAILURE;
            }
        };
        let context = ServiceContext { name, shutdown, metrics: telemetry::metrics_registry(name) };
        tracing::info!(service = name, version = env!("CARGO_PKG_VERSION"), "starting");
        match run(config, context).await {
            Ok(()) => {
                tracing::info!(service = name, "stopped cleanly");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(service = name, error = %e, "stopped on error");
                ExitCode::FAILURE
            }
        }
    })
}

/// The readiness every Kafka service shares: a broker answers and the registry answers.
pub fn kafka_and_registry_readiness(kafka: &KafkaConfig, codec: Arc<SchemaCodec>) -> ReadinessChecks {
    let kafka = kafka.clone();
    ReadinessChecks::default()
        .add("kafka", move || {
            let kafka = kafka.clone();
            async move {
                kafka::check_reachable(&kafka, Duration::from_secs(2))
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .add("schema_registry", move || {
            let codec = codec.clone();
            async move { codec.check_reachable().await.map_err(|e| e.to_string()) }
        })
}

/// Serves the ops endpoints on `telemetry.ops_listen` until the context's token fires.
pub async fn serve_ops(
    context: &ServiceContext,
    telemetry: &TelemetryConfig,
    readiness: ReadinessChecks,
) -> std::io::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    ops_server::serve(telemetry.ops_listen, context.metrics.clone(), readiness, context.shutdown.clone())
        .await
}

/// The sections every service has. Services with more to configure declare their own struct
/// with these sections plus theirs.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseConfig {
    pub kafka: KafkaConfig,
    pub schema_registry: crate::config::SchemaRegistryConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: crate::config::ShutdownConfig,
}

impl ServiceConfig for BaseConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
    #[error("cannot serve the ops endpoints on {addr}: {source}")]
    OpsListener { addr: std::net::SocketAddr, source: std::io::Error },
}

/// What a Kafka service does first: a schema codec, the ops endpoints with Kafka and registry
/// readiness, and every record schema registered. Returns the codec and the ops server's task.
pub async fn start_kafka_service(
    context: &ServiceContext,
    kafka: &KafkaConfig,
    registry: &crate::config::SchemaRegistryConfig,
    telemetry: &TelemetryConfig,
) -> Result<(Arc<SchemaCodec>, tokio::task::JoinHandle<std::io::Result<()>>), StartupError> {
    let codec = Arc::new(SchemaCodec::new(registry)?);
    let readiness = kafka_and_registry_readiness(kafka, codec.clone());
    let ops = serve_ops(context, telemetry, readiness)
        .await
        .map_err(|source| StartupError::OpsListener { addr: telemetry.ops_listen, source })?;
    register_schemas(&codec, &context.shutdown).await?;
    Ok((codec, ops))
}

/// Registers every record schema, waiting out a registry that is not up yet (retried until
/// shutdown); a registry that refuses a schema is a start-up error.
pub async fn register_schemas(codec: &SchemaCodec, shutdown: &CancellationToken) -> Result<(), StartupError> {
    let mut delay = Duration::from_millis(250);
    loop {
        match crate::codec::register_all(codec).await {
            Ok(()) => {
                tracing::info!("record schemas registered");
                return Ok(());
            }
            Err(crate::codec::CodecError::RegistryUnavailable(e)) => {
                tracing::warn!(error = %e, retry_in = ?delay, "schema registry unavailable; retrying");
            }
            Err(e) => return Err(e.into()),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
