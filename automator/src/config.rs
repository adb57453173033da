use std::time::Duration;

use serde::Deserialize;

use leadflow_core::contract::codec::SchemaRegistryConfig;
use leadflow_core::model::webhook::{RetrySchedule, UrlPolicy};
use leadflow_core::runtime::config::{ShutdownConfig, TelemetryConfig};
use leadflow_core::runtime::duration::millis_or_humantime;
use leadflow_core::runtime::secret::Secret;
use leadflow_core::runtime::service::ServiceConfig;
use leadflow_core::stage::config::ExactlyOnceConfig;
use leadflow_core::stage::kafka::KafkaConfig;
use leadflow_core::store::mongo::MongoConfig;

/// This service's defaults, layered over the shared ones.
pub const DEFAULTS: &str = include_str!("../config/defaults.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomatorConfig {
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub mongo: MongoConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub consumer: ExactlyOnceConfig,
    pub webhooks: WebhooksConfig,
    pub notify_sales: NotifySalesConfig,
    pub email: EmailConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    pub allow_loopback_http: bool,
    pub allow_private: bool,
    #[serde(deserialize_with = "millis_or_humantime")]
    pub request_timeout: Duration,
    pub retry_scale: f64,
    #[serde(deserialize_with = "millis_or_humantime")]
    pub disable_after: Duration,
    #[serde(deserialize_with = "millis_or_humantime")]
    pub poll_interval: Duration,
    pub per_endpoint_concurrency: usize,
    pub max_due_per_poll: usize,
}

impl WebhooksConfig {
    pub fn url_policy(&self) -> UrlPolicy {
        UrlPolicy { allow_loopback: self.allow_loopback_http, allow_private: self.allow_private }
    }

    pub fn schedule(&self) -> RetrySchedule {
        RetrySchedule::standard().scaled(self.retry_scale)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySalesConfig {
    /// The incoming webhook's URL holds its credential (Slack's do), so it is a secret.
    pub url: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host:port` (`?tls=required` for STARTTLS), `smtps://host:465`, with
    /// `user:password@` for AUTH: a secret, since it may hold the password.
    pub smtp_url: Secret,
    /// The sender of every email, `Name <address>` or a bare address.
    pub from: String,
}

impl ServiceConfig for AutomatorConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
