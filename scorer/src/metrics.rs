//! The scorer's metrics; every label is a fixed set.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct ScorerMetrics {
    pub events_scored: IntCounter,
    pub events_repeated: IntCounter,
    pub dlq_records: IntCounterVec,
    pub decay_announcements: IntCounter,
    pub rules_updates: IntCounterVec,
}

impl ScorerMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = ScorerMetrics {
            events_scored: IntCounter::new(
                "scorer_events_scored_total",
                "Events applied to a lead's score for the first time (counted again when a batch is redone).",
            )?,
            events_repeated: IntCounter::new(
                "scorer_events_repeated_total",
                "Events found already applied (a redelivery or a repeated eventId): their stored record is re-emitted.",
            )?,
            dlq_records: IntCounterVec::new(
                Opts::new("scorer_dlq_records_total", "Dead letters written, by error kind."),
                &["error_kind"],
            )?,
            decay_announcements: IntCounter::new(
                "scorer_decay_announcements_total",
                "LeadScored records the decay pass wrote for leads that decay moved down a stage.",
            )?,
            rules_updates: IntCounterVec::new(
                Opts::new(
                    "scorer_rules_updates_total",
                    "Rule sets read from scoring.rules.v1, by outcome (applied, refused).",
                ),
                &["outcome"],
            )?,
        };
        registry.register(Box::new(metrics.events_scored.clone()))?;
        registry.register(Box::new(metrics.events_repeated.clone()))?;
        registry.register(Box::new(metrics.dlq_records.clone()))?;
        registry.register(Box::new(metrics.decay_announcements.clone()))?;
        registry.register(Box::new(metrics.rules_updates.clone()))?;
        Ok(metrics)
    }
}
