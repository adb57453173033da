use std::time::Duration;

use serde::Deserialize;

use leadflow_core::contract::codec::SchemaRegistryConfig;
use leadflow_core::runtime::config::{ShutdownConfig, TelemetryConfig};
use leadflow_core::runtime::duration::secs_or_humantime;
use leadflow_core::runtime::service::ServiceConfig;
use leadflow_core::stage::config::ExactlyOnceConfig;
use leadflow_core::stage::kafka::KafkaConfig;
use leadflow_core::store::mongo::MongoConfig;

use crate::http_destination::HttpDestinationConfig;

/// This service's defaults, layered over the shared ones.
pub const DEFAULTS: &str = include_str!("../config/defaults.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmSinkConfig {
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub mongo: MongoConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub consumer: ExactlyOnceConfig,
    pub crm: CrmConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmConfig {
    pub destination: DestinationKind,
    /// How often the service asks for re-delivery of leads the CRM lacks; 0 turns it off.
    #[serde(alias = "reconcile_interval_s", deserialize_with = "secs_or_humantime")]
    pub reconcile_interval: Duration,
    /// How often the out-of-sync gauge is counted.
    #[serde(alias = "out_of_sync_refresh_s", deserialize_with = "secs_or_humantime")]
    pub out_of_sync_refresh: Duration,
    pub http: HttpDestinationConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// HubSpot-shaped batch upserts to `crm.http.base_url`.
    Http,
    /// The original system's log line, and nothing else.
    Log,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Http => "http",
            DestinationKind::Log => "log",
        }
    }
}

impl ServiceConfig for CrmSinkConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
