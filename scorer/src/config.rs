use std::time::Duration;

use serde::Deserialize;

use leadflow_core::contract::codec::SchemaRegistryConfig;
use leadflow_core::runtime::config::{ShutdownConfig, TelemetryConfig};
use leadflow_core::runtime::duration::secs_or_humantime;
use leadflow_core::runtime::service::ServiceConfig;
use leadflow_core::stage::config::ExactlyOnceConfig;
use leadflow_core::stage::kafka::KafkaConfig;
use leadflow_core::store::mongo::MongoConfig;

/// This service's defaults, layered over the shared ones.
pub const DEFAULTS: &str = include_str!("../config/defaults.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorerConfig {
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub mongo: MongoConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub consumer: ExactlyOnceConfig,
    pub scoring: ScoringConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    /// How often the decay pass runs; 0 turns it off.
    #[serde(alias = "decay_pass_interval_s", deserialize_with = "secs_or_humantime")]
    pub decay_pass_interval: Duration,
    /// How many of a lead's newest events its state keeps (at least 1): both the bound of the
    /// `lead_scores` document and the window in which a late event still lands in its place.
    /// An older event is recorded with reason `too_late` and scores nothing.
    pub tail_events: usize,
}

impl ServiceConfig for ScorerConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
