use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::auth::config::AuthConfig;
use leadflow_core::contract::codec::SchemaRegistryConfig;
use leadflow_core::model::webhook::UrlPolicy;
use leadflow_core::runtime::config::{ShutdownConfig, TelemetryConfig};
use leadflow_core::runtime::duration::{millis_or_humantime, secs_or_humantime};
use leadflow_core::runtime::service::ServiceConfig;
use leadflow_core::stage::kafka::KafkaConfig;
use leadflow_core::store::mongo::MongoConfig;

/// This service's defaults, layered over the shared ones.
pub const DEFAULTS: &str = include_str!("../config/defaults.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    pub http: HttpConfig,
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    /// The read model the read API serves (the crm-sink's `leads`, the scorer's `lead_scores`).
    pub mongo: MongoConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    /// Keys, projects, rate limits and sessions; its secrets have no default.
    pub auth: AuthConfig,
    /// Where webhook subscriptions may point, and the test delivery's bound.
    pub webhooks: WebhooksConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// `http` to loopback and loopback addresses: for tests and local demos, never production.
    pub allow_loopback_http: bool,
    /// Private and carrier-grade NAT addresses, for a receiver inside one's own network.
    pub allow_private: bool,
    /// The bound on `POST /api/webhooks/{id}/test`'s delivery.
    #[serde(deserialize_with = "millis_or_humantime")]
    pub test_timeout: Duration,
}

impl WebhooksConfig {
    pub fn url_policy(&self) -> UrlPolicy {
        UrlPolicy { allow_loopback: self.allow_loopback_http, allow_private: self.allow_private }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// The server-side bound on one request, publishing included.
    #[serde(alias = "request_timeout_ms", deserialize_with = "millis_or_humantime")]
    pub request_timeout: Duration,
    /// How long the producer may try to deliver a record before giving up on it
    /// (librdkafka `message.timeout.ms`). Kept below the request timeout, so that a request
    /// learns the real outcome of its records before it times out.
    #[serde(alias = "delivery_timeout_ms", deserialize_with = "millis_or_humantime")]
    pub delivery_timeout: Duration,
    /// The `Retry-After` sent with a 503, in whole seconds (at least 1).
    #[serde(alias = "retry_after_s", deserialize_with = "secs_or_humantime")]
    pub retry_after: Duration,
}

impl ServiceConfig for GatewayConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
