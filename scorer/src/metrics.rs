//! The scorer's metrics; every label is a fixed set.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct ScorerMetrics {
    pub events_scored: IntCounter,
    pub events_repeated: IntCounter,
    pub events_duplicate: IntCounter,
    pub events_too_late: IntCounter,
    pub decay_announcements: IntCounter,
    pub rules_updates: IntCounterVec,
    pub merges: IntCounterVec,
    pub events_forwarded: IntCounter,
    pub merge_events_left: IntCounter,
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
                "Events read again from the offset they were applied from (a batch redone after a crash): their stored record is re-emitted.",
            )?,
            events_duplicate: IntCounter::new(
                "scorer_events_duplicate_total",
                "Events whose (leadId, eventId) was already applied from another offset (a client's repeat): nothing is emitted.",
            )?,
            events_too_late: IntCounter::new(
                "scorer_events_too_late_total",
                "Events older than every event in their lead's bounded state (its scoring.tail_events newest): recorded with reason too_late, scoring 0 (counted again when a batch is redone).",
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
            merges: IntCounterVec::new(
                Opts::new(
                    "scorer_merges_total",
                    "Identity merge records, by outcome: merged (the lead's events moved to the lead it merged into), repeat (merged there already), refused (a lead that merged elsewhere, a cycle, or a merge into itself).",
                ),
                &["outcome"],
            )?,
            events_forwarded: IntCounter::new(
                "scorer_events_forwarded_total",
                "Events of a merged lead sent on to the lead it merged into (counted again when a batch is redone).",
            )?,
            merge_events_left: IntCounter::new(
                "scorer_merge_events_left_total",
                "Applied events of merged leads older than the newest a merge moves (MAX_MOVED_EVENTS): they stay counted on the merged lead only (counted again when a batch is redone).",
            )?,
        };
        registry.register(Box::new(metrics.events_scored.clone()))?;
        registry.register(Box::new(metrics.events_repeated.clone()))?;
        registry.register(Box::new(metrics.events_duplicate.clone()))?;
        registry.register(Box::new(metrics.events_too_late.clone()))?;
        registry.register(Box::new(metrics.decay_announcements.clone()))?;
        registry.register(Box::new(metrics.rules_updates.clone()))?;
        registry.register(Box::new(metrics.merges.clone()))?;
        registry.register(Box::new(metrics.events_forwarded.clone()))?;
        registry.register(Box::new(metrics.merge_events_left.clone()))?;
        Ok(metrics)
    }
}
