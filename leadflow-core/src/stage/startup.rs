//! What a Kafka service does first: its config's shared sections, a schema codec, the ops
//! endpoints with Kafka and registry readiness, and every record schema registered.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::contract::codec::{CodecError, SchemaCodec, SchemaRegistryConfig};
use crate::runtime::config::{ShutdownConfig, TelemetryConfig};
use crate::runtime::ops_server::ReadinessChecks;
use crate::runtime::service::{ServiceConfig, ServiceContext, serve_ops};
use crate::stage::exactly_once::GroupMembership;
use crate::stage::kafka::{self, KafkaConfig};

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

/// The sections every service has. Services with more to configure declare their own struct
/// with these sections plus theirs.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseConfig {
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
}

impl ServiceConfig for BaseConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("cannot serve the ops endpoints on {addr}: {source}")]
    OpsListener { addr: std::net::SocketAddr, source: std::io::Error },
}

/// What a Kafka service does first: a schema codec, the ops endpoints with Kafka and registry
/// readiness, and every record schema registered. Returns the codec and the ops server's task.
pub async fn start_kafka_service(
    context: &ServiceContext,
    kafka: &KafkaConfig,
    registry: &SchemaRegistryConfig,
    telemetry: &TelemetryConfig,
) -> Result<KafkaService, StartupError> {
    start_kafka_service_with(context, kafka, registry, telemetry, |checks| checks).await
}

/// [`start_kafka_service`], with the service's own readiness checks added by `more_checks` (the
/// crm-sink's: whether its CRM accepts its configuration).
pub async fn start_kafka_service_with(
    context: &ServiceContext,
    kafka: &KafkaConfig,
    registry: &SchemaRegistryConfig,
    telemetry: &TelemetryConfig,
    more_checks: impl FnOnce(ReadinessChecks) -> ReadinessChecks,
) -> Result<KafkaService, StartupError> {
    let codec = Arc::new(SchemaCodec::new(registry)?);
    let membership = GroupMembership::default();
    let joined = membership.clone();
    // A consumer that has not joined its group yet does no work, whatever its dependencies say.
    let readiness = kafka_and_registry_readiness(kafka, codec.clone()).add("consumer_group", move || {
        let joined = joined.has_joined();
        async move { if joined { Ok(()) } else { Err("not yet a member of its consumer group".to_owned()) } }
    });
    let readiness = more_checks(readiness);
    let ops = serve_ops(context, telemetry, readiness)
        .await
        .map_err(|source| StartupError::OpsListener { addr: telemetry.ops_listen, source })?;
    register_schemas(&codec, &context.shutdown).await?;
    Ok(KafkaService { codec, ops, membership })
}

/// What [`start_kafka_service`] started.
pub struct KafkaService {
    pub codec: Arc<SchemaCodec>,
    /// The ops server's task.
    pub ops: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Hand it to the stage: `/readyz` is 200 only once the stage has joined its group.
    pub membership: GroupMembership,
}

/// Registers every record schema, waiting out a registry that is not up yet (retried until
/// shutdown); a registry that refuses a schema is a start-up error.
pub async fn register_schemas(codec: &SchemaCodec, shutdown: &CancellationToken) -> Result<(), StartupError> {
    let mut delay = Duration::from_millis(250);
    loop {
        match register_all(codec).await {
            Ok(()) => {
                tracing::info!("record schemas registered");
                return Ok(());
            }
            Err(CodecError::RegistryUnavailable(e)) => {
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

/// Registers the schema of every record type.
pub async fn register_all(codec: &SchemaCodec) -> Result<(), CodecError> {
    use crate::contract::records::*;
    codec.register::<NameSubmitted>().await?;
    codec.register::<LeadEvent>().await?;
    codec.register::<LeadEnriched>().await?;
    codec.register::<LeadScored>().await?;
    codec.register::<LeadReviewed>().await?;
    codec.register::<CrmResyncRequested>().await?;
    codec.register::<CrmDelivery>().await?;
    codec.register::<DeadLetter>().await?;
    codec.register::<crate::model::scoring::ScoringRules>().await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;
    use crate::runtime::config::{SHARED_DEFAULTS, load};

    #[test]
    fn shared_defaults_parse() {
        figment::Jail::expect_with(|_| {
            let overlay = "[telemetry]\nops_listen = \"127.0.0.1:9101\"\n";
            let cfg: BaseConfig = load(&[SHARED_DEFAULTS, overlay], None).unwrap();
            assert_eq!(cfg.kafka.bootstrap_servers, "127.0.0.1:9092");
            Ok(())
        });
    }
}
