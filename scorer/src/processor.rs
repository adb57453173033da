//! One batch of events in, one LeadScored per event out. Each lead's state is read once per
//! batch, its events are applied in partition order, and the batch's changes are saved in one
//! MongoDB transaction before the records go to Kafka.
//!
//! An `eventId` is applied to its lead at most once, and gets exactly one LeadScored on the
//! output topic:
//! - read again from the offset it was applied from (a batch redone after a crash, whose
//!   records never committed), its stored record is emitted again, byte for byte;
//! - read from any other offset (the same event posted twice, as a client's retry does), it is
//!   a duplicate: nothing is emitted, and `scorer_events_duplicate_total` counts it.

use std::collections::{HashMap, HashSet};

use leadflow_core::contract::records::{LeadEvent, LeadScored, PipelineStage, RecordPosition, TopicRecord};
use leadflow_core::model::scoring::{self, ScoringEvent, ScoringRules};
use leadflow_core::stage::exactly_once::ProcessError;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::rules_feed::RuleBook;
use leadflow_core::stage::typed::{Decoded, Emit, Transform};
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use crate::metrics::ScorerMetrics;
use crate::store::{AppliedEvent, HistoryDoc, LeadDoc, LeadStore, StoreError};

pub struct ScoreProcessor {
    pub store: LeadStore,
    /// Each project's rules in force.
    pub rules: watch::Receiver<RuleBook>,
    pub metrics: ScorerMetrics,
}

/// What becomes of one input event, in input order.
enum Slot {
    Scored(LeadScored),
    /// Already applied: what to do depends on where it was applied from.
    Applied {
        lead_key: String,
        event_id: String,
    },
}

impl Transform for ScoreProcessor {
    type Input = LeadEvent;
    const STAGE: PipelineStage = PipelineStage::Scorer;

    async fn apply(
        &self,
        batch: Vec<Decoded<LeadEvent>>,
        _pause: &PauseSignal,
    ) -> Result<Vec<Emit>, ProcessError> {
        // One view of the rules for the whole batch, so that a change lands between batches.
        let book = self.rules.borrow().clone();
        let mut rules_of: HashMap<String, std::sync::Arc<ScoringRules>> = HashMap::new();
        // Leads are known by their key (project and id): two projects' `lead-1` never meet.
        let mut lead_keys: Vec<String> = batch.iter().map(|e| e.record.key().into_owned()).collect();
        lead_keys.sort();
        lead_keys.dedup();
        let mut leads = self.store.load(&lead_keys).await.map_err(transient)?;
        let read_versions: HashMap<String, u64> =
            leads.iter().map(|(key, d)| (key.clone(), d.version)).collect();
        let mut history = Vec::new();
        let mut slots = Vec::with_capacity(batch.len());
        for Decoded { position, record: event, .. } in batch {
            let key = event.key().into_owned();
            let rules = rules_of
                .entry(event.project_id.clone())
                .or_insert_with(|| book.for_project(&event.project_id).rules);
            let lead = leads.entry(key.clone()).or_insert_with(|| LeadDoc::new(&key, position.partition));
            let slot = match apply(rules, lead, &event) {
                Some(record) => {
                    history.push(HistoryDoc {
                        lead_key: key,
                        event_id: record.event_id.clone(),
                        seq: lead.version,
                        record: record.clone(),
                        source: Some(position.clone()),
                    });
                    Slot::Scored(record)
                }
                None => Slot::Applied { lead_key: key, event_id: event.event_id },
            };
            slots.push((position, slot));
        }

        // Where each already-applied event was applied from: this batch, or the stored history.
        // Only repeats need it, so a batch without any copies nothing.
        let repeats: HashSet<(String, String)> = slots
            .iter()
            .filter_map(|(_, slot)| match slot {
                Slot::Applied { lead_key, event_id } => Some((lead_key.clone(), event_id.clone())),
                Slot::Scored(_) => None,
            })
            .collect();
        let mut applied: HashMap<(String, String), (LeadScored, Option<RecordPosition>)> = HashMap::new();
        if !repeats.is_empty() {
            for h in &history {
                let key = (h.lead_key.clone(), h.event_id.clone());
                if repeats.contains(&key) {
                    applied.insert(key, (h.record.clone(), h.source.clone()));
                }
            }
            let missing: Vec<(String, String)> =
                repeats.into_iter().filter(|key| !applied.contains_key(key)).collect();
            if !missing.is_empty() {
                let stored = self.store.stored_records(&missing).await.map_err(transient)?;
                applied.extend(stored.into_iter().map(|(key, h)| (key, (h.record, h.source))));
            }
        }

        let changed: Vec<(LeadDoc, u64)> = leads
            .into_values()
            .filter_map(|lead| {
                let read = read_versions.get(&lead.key).copied().unwrap_or(0);
                (lead.version != read).then_some((lead, read))
            })
            .collect();
        let scored = history.len();
        self.store.save(history, changed).await.map_err(|e| match e {
            StoreError::Conflict(m) => ProcessError::Transient(m),
            StoreError::Mongo(e) => transient(e),
        })?;

        let mut outputs = Vec::with_capacity(slots.len());
        let (mut repeated, mut duplicate) = (0, 0);
        for (position, slot) in slots {
            match slot {
                Slot::Scored(record) => outputs.push(Emit::record(&position, &record)),
                Slot::Applied { lead_key, event_id } => {
                    match applied.get(&(lead_key.clone(), event_id.clone())) {
                        // Entries written before the source was kept count as redeliveries, as all
                        // repeats did then.
                        Some((record, source)) if source.as_ref().is_none_or(|s| *s == position) => {
                            repeated += 1;
                            outputs.push(Emit::record(&position, record));
                        }
                        Some(_) => duplicate += 1,
                        None => {
                            tracing::warn!(
                                lead_key,
                                event_id,
                                "an applied event has no stored record; not emitted"
                            );
                        }
                    }
                }
            }
        }
        self.metrics.events_scored.inc_by(scored as u64);
        self.metrics.events_repeated.inc_by(repeated);
        self.metrics.events_duplicate.inc_by(duplicate);
        Ok(outputs)
    }
}

/// Applies one event to a lead's state; `None` when the lead already has it.
fn apply(rules: &ScoringRules, lead: &mut LeadDoc, event: &LeadEvent) -> Option<LeadScored> {
    if lead.has_applied(&event.event_id) {
        return None;
    }
    let new = ScoringEvent {
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        timestamp: event.timestamp,
    };
    let outcome = scoring::apply(rules, &lead.scoring_events(), &new)?;
    let as_of = outcome.as_of.format(&Rfc3339).expect("a timestamp formats");
    lead.events.push(AppliedEvent {
        event_id: new.event_id.clone(),
        event_type: new.event_type.clone(),
        timestamp: event.timestamp.format(&Rfc3339).expect("a timestamp formats"),
    });
    lead.version += 1;
    lead.score = outcome.score;
    lead.stage = outcome.stage;
    lead.as_of = as_of;
    lead.rules_version = rules.version.clone();
    // A new event restarts the decay clock, so a later drop is announced afresh.
    lead.decayed_stage = None;
    Some(LeadScored {
        project_id: event.project_id.clone(),
        lead_id: event.lead_id.clone(),
        event_id: new.event_id,
        event_type: new.event_type,
        delta: outcome.delta,
        score: outcome.score,
        stage: outcome.stage,
        previous_stage: outcome.previous_stage,
        event_timestamp: event.timestamp,
        rules_version: rules.version.clone(),
        // The time the score is evaluated at, never the wall clock: replaying gives identical records.
        processed_at: outcome.as_of,
        late: outcome.late,
        reason: outcome.reason.map(str::to_owned),
        lead_version: Some(lead.version),
    })
}

fn transient(e: mongodb::error::Error) -> ProcessError {
    ProcessError::Transient(format!("MongoDB: {e}"))
}

#[cfg(test)]
mod tests;
