//! The write API: lead names, behavioural events and reviews of leads, posted by producers and
//! people, and the scoring rules (the rules in force, and publishing a new rule set). Each
//! request is checked by [`validation`] and its records published to Kafka, stamped with the caller's project and keyed by its lead key, by
//! a [`publisher::Publisher`]; the answer is 202 only once Kafka has acknowledged every record.

pub mod handlers;
pub mod json_body;
pub mod publisher;
pub mod validation;

use std::time::Duration;

use tokio::sync::watch;

use leadflow_core::stage::rules_feed::RuleBook;

use crate::metrics::GatewayMetrics;

/// What the write handlers use. `P` is the way to Kafka; handler tests pass one that records.
pub struct WriteState<P> {
    pub publisher: P,
    /// All the gateway's metrics: the write API counts what it publishes and rejects, and the
    /// router's middleware records every request here.
    pub metrics: GatewayMetrics,
    /// Sent as `Retry-After` with a 503.
    pub retry_after: Duration,
    /// Every project's scoring rules in force, as `leadflow_core::stage::rules_feed::follow`
    /// reads them from `scoring.rules.v1` (the scorer reads them the same way).
    pub rules: watch::Receiver<RuleBook>,
}
