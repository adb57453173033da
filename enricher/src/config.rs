use std::time::Duration;

use serde::Deserialize;

use leadflow_core::contract::codec::SchemaRegistryConfig;
use leadflow_core::runtime::config::{ShutdownConfig, TelemetryConfig};
use leadflow_core::runtime::duration::{millis_or_humantime, secs_or_humantime};
use leadflow_core::runtime::secret::Secret;
use leadflow_core::runtime::service::ServiceConfig;
use leadflow_core::stage::config::ExactlyOnceConfig;
use leadflow_core::stage::kafka::KafkaConfig;
use leadflow_core::store::mongo::MongoConfig;

/// This service's defaults, layered over the shared ones.
pub const DEFAULTS: &str = include_str!("../config/defaults.toml");

/// The most names nationalize.io takes in one request.
pub const MAX_NAMES_PER_REQUEST: usize = 10;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnricherConfig {
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub mongo: MongoConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub consumer: ExactlyOnceConfig,
    pub enrichment: EnrichmentConfig,
    pub nationalize: NationalizeConfig,
    pub cache: CacheConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichmentConfig {
    pub verified_threshold: f64,
    /// Written to each LeadEnriched as `provider`.
    pub provider: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationalizeConfig {
    pub base_url: String,
    /// Sent as the `apikey` query parameter; empty sends none. Never in a log line or an error.
    pub api_key: Secret,
    pub names_per_request: usize,
    pub max_concurrent_requests: usize,
    /// Spacing of this process's requests; each replica has its own.
    pub requests_per_second: f64,
    /// Requests per UTC day for the whole deployment, counted in MongoDB across replicas
    /// (`crate::quota`); 0 means no quota of ours.
    pub daily_quota: u64,
    /// The name the daily quota is counted under: replicas that share it share the quota. Give
    /// each API account its own.
    pub quota_name: String,
    #[serde(alias = "request_timeout_ms", deserialize_with = "millis_or_humantime")]
    pub request_timeout: Duration,
    pub max_attempts: u32,
    #[serde(alias = "backoff_initial_ms", deserialize_with = "millis_or_humantime")]
    pub backoff_initial: Duration,
    #[serde(alias = "backoff_max_ms", deserialize_with = "millis_or_humantime")]
    pub backoff_max: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub collection: String,
    /// How long a stored prediction is used (the TTL index, and a check on read).
    #[serde(alias = "ttl_s", deserialize_with = "secs_or_humantime")]
    pub ttl: Duration,
    pub memory_entries: usize,
}

impl ServiceConfig for EnricherConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

impl EnricherConfig {
    /// The checks serde cannot make; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let threshold = self.enrichment.verified_threshold;
        if !(0.0..=1.0).contains(&threshold) {
            return Err(format!("enrichment.verified_threshold must be within [0, 1], not {threshold}"));
        }
        let api = &self.nationalize;
        if let Err(e) = reqwest::Url::parse(&api.base_url) {
            return Err(format!("nationalize.base_url {:?} is not a URL: {e}", api.base_url));
        }
        if !(1..=MAX_NAMES_PER_REQUEST).contains(&api.names_per_request) {
            return Err(format!(
                "nationalize.names_per_request must be 1 to {MAX_NAMES_PER_REQUEST}, not {}",
                api.names_per_request
            ));
        }
        if api.max_concurrent_requests == 0 {
            return Err("nationalize.max_concurrent_requests must be at least 1".into());
        }
        if !(api.requests_per_second > 0.0 && api.requests_per_second.is_finite()) {
            return Err(format!(
                "nationalize.requests_per_second must be positive, not {}",
                api.requests_per_second
            ));
        }
        if api.daily_quota > 0 && api.quota_name.trim().is_empty() {
            return Err("nationalize.quota_name must not be empty while daily_quota is set".into());
        }
        if api.max_attempts == 0 {
            return Err("nationalize.max_attempts must be at least 1".into());
        }
        if self.cache.memory_entries == 0 {
            return Err("cache.memory_entries must be at least 1".into());
        }
        if self.consumer.max_batch_records == 0 {
            return Err("consumer.max_batch_records must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> EnricherConfig {
        leadflow_core::runtime::config::load(
            &[leadflow_core::runtime::config::SHARED_DEFAULTS, DEFAULTS],
            None,
        )
        .unwrap()
    }

    #[test]
    fn the_embedded_defaults_load_and_pass_validation() {
        let config = defaults();
        config.validate().unwrap();
        assert_eq!(config.enrichment.verified_threshold, 0.6);
        assert_eq!(config.nationalize.names_per_request, MAX_NAMES_PER_REQUEST);
        assert_eq!(config.nationalize.request_timeout, Duration::from_secs(5));
        assert_eq!(config.cache.ttl, Duration::from_secs(30 * 86_400));
        assert!(config.nationalize.api_key.is_empty());
        assert_eq!(
            (config.nationalize.daily_quota, config.nationalize.quota_name.as_str()),
            (100, "nationalize")
        );
    }

    #[test]
    fn the_old_duration_keys_still_work_and_the_key_never_prints() {
        let overlay = "[nationalize]\nbackoff_initial_ms = 20\nrequest_timeout = \"1500ms\"\n\
                       api_key = \"k3y-0123456789\"\n[cache]\nttl_s = 60\n";
        let config: EnricherConfig = leadflow_core::runtime::config::load(
            &[leadflow_core::runtime::config::SHARED_DEFAULTS, DEFAULTS, overlay],
            None,
        )
        .unwrap();
        assert_eq!(config.nationalize.backoff_initial, Duration::from_millis(20));
        assert_eq!(config.nationalize.request_timeout, Duration::from_millis(1500));
        assert_eq!(config.cache.ttl, Duration::from_secs(60));
        assert_eq!(config.nationalize.api_key.expose(), "k3y-0123456789");
        assert!(!format!("{config:?}").contains("k3y-0123456789"));
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_key() {
        let mut config = defaults();
        config.nationalize.names_per_request = 11;
        assert!(config.validate().unwrap_err().contains("nationalize.names_per_request"));
        let mut config = defaults();
        config.enrichment.verified_threshold = 1.5;
        assert!(config.validate().unwrap_err().contains("enrichment.verified_threshold"));
        let mut config = defaults();
        config.nationalize.requests_per_second = 0.0;
        assert!(config.validate().unwrap_err().contains("nationalize.requests_per_second"));
        let mut config = defaults();
        config.nationalize.quota_name = " ".into();
        assert!(config.validate().unwrap_err().contains("nationalize.quota_name"));
        config.nationalize.daily_quota = 0;
        config.validate().expect("no quota needs no name");
    }
}
