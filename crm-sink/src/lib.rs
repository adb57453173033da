//! crm-sink. Its pipeline work arrives with issue #6; until then it serves its ops
//! endpoints (metrics, health, readiness against Kafka and the registry) and stops cleanly on
//! SIGTERM or SIGINT.

pub mod read_model;

pub use leadflow_core::service::BaseConfig as Config;

/// This service's defaults, layered over the shared ones.
pub const DEFAULTS: &str = include_str!("../config/defaults.toml");

pub async fn run(
    config: Config,
    context: leadflow_core::service::ServiceContext,
) -> Result<(), leadflow_core::service::StartupError> {
    leadflow_core::service::serve_ops_until_shutdown(config, context).await
}
