//! One batch of events in, one LeadScored per event out. Each lead's state is read once per
//! batch, together with the batch's already-applied events, its events are applied in partition
//! order, and the batch's changes are saved in one MongoDB transaction before the records go to
//! Kafka.
//!
//! A lead's state is bounded (`scoring::LeadState`, `scoring.tail_events` newest events), so an
//! event costs the same however long the lead's history. Whether an event was applied is asked
//! of `score_history` only for the events that can repeat an applied one
//! (`LeadDoc::may_have_applied`: an id in the lead's tail, or a key not newer than its newest),
//! one query after the leads' load, and none for a batch of in-order new events, the usual
//! case. The history's unique `(leadId, eventId)` index inside the transaction catches the rest
//! (an id that left the tail and came again under a newer timestamp, or a zombie's entry): the
//! save is a conflict, and the batch is redone at once asking about every event.
//!
//! An `eventId` is applied to its lead at most once, and gets exactly one LeadScored on the
//! output topic:
//! - read again from the offset it was applied from (a batch redone after a crash, whose
//!   records never committed), its stored record is emitted again, byte for byte;
//! - read from any other offset (the same event posted twice, as a client's retry does), it is
//!   a duplicate: nothing is emitted, and `scorer_events_duplicate_total` counts it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use leadflow_core::contract::records::{LeadEvent, LeadScored, PipelineStage, RecordPosition, TopicRecord};
use leadflow_core::model::scoring::{LeadState, REASON_TOO_LATE, ScoringEvent, ScoringRules};
use leadflow_core::stage::exactly_once::ProcessError;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::rules_feed::RuleBook;
use leadflow_core::stage::typed::{Decoded, Emit, Transform};
use tokio::sync::watch;

use crate::metrics::ScorerMetrics;
use crate::store::{HistoryDoc, LeadDoc, LeadStore, StoreError};

pub struct ScoreProcessor {
    pub store: LeadStore,
    /// Each project's rules in force.
    pub rules: watch::Receiver<RuleBook>,
    pub metrics: ScorerMetrics,
    /// `scoring.tail_events`: how many of a lead's newest events its state keeps.
    pub tail_events: usize,
    /// The most of a merged lead's applied events a merge moves, its newest
    /// ([`merge::MAX_MOVED_EVENTS`] in service): they go out in one Kafka transaction, which must
    /// stay well within the producer's queue and the transaction timeout, whatever the lead's
    /// history.
    pub max_moved_events: usize,
}

/// What becomes of one input event, in input order.
enum Slot {
    Scored(LeadScored),
    /// An identity merge, or an event of a merged lead: what it emits, decided already.
    Out(Vec<Emit>),
    /// Already applied: what to do depends on where it was applied from.
    Applied {
        lead_key: String,
        event_id: String,
    },
}

/// A lead of the batch: its document as read, the version read, and its state once an event of
/// the batch needs it (a version 1 document is converted then).
struct BatchLead {
    document: LeadDoc,
    read_version: u64,
    state: Option<LeadState>,
}

impl Transform for ScoreProcessor {
    type Input = LeadEvent;
    const STAGE: PipelineStage = PipelineStage::Scorer;

    async fn apply(
        &self,
        batch: Vec<Decoded<LeadEvent>>,
        _pause: &PauseSignal,
    ) -> Result<Vec<Emit>, ProcessError> {
        // A conflict at the save is another writer's entry (a zombie instance) or an eventId
        // that left its lead's tail and came again under another timestamp, which the first
        // attempt did not ask the history about. Redone here at once, asking about every event:
        // a rewind's backoff would let one such repeat hold its partition back.
        match self.attempt(&batch, Ask::WhatMayRepeat).await {
            Err(Attempt::Conflict(reason)) => {
                tracing::debug!(
                    reason,
                    "the save met a conflict; redoing the batch, asking about every event"
                );
                self.attempt(&batch, Ask::Every).await
            }
            other => other,
        }
        .map_err(|e| match e {
            Attempt::Conflict(m) => ProcessError::Transient(m),
            Attempt::Failed(e) => e,
        })
    }
}

/// Which of a batch's events `score_history` is asked about.
#[derive(Clone, Copy)]
enum Ask {
    /// Those that can repeat an applied one (`LeadDoc::may_have_applied`): normally none.
    WhatMayRepeat,
    Every,
}

enum Attempt {
    Conflict(String),
    Failed(ProcessError),
}

impl ScoreProcessor {
    async fn attempt(&self, batch: &[Decoded<LeadEvent>], ask: Ask) -> Result<Vec<Emit>, Attempt> {
        // One view of the rules for the whole batch, so that a change lands between batches.
        let book = self.rules.borrow().clone();
        let mut rules_of: HashMap<String, std::sync::Arc<ScoringRules>> = HashMap::new();
        // Leads are known by their key (project and id): two projects' `lead-1` never meet.
        let lead_keys: Vec<String> =
            batch.iter().map(|e| e.record.key().into_owned()).collect::<BTreeSet<_>>().into_iter().collect();
        let failed = |e| Attempt::Failed(transient(e));
        let mut stored_leads = self.store.load(&lead_keys).await.map_err(failed)?;
        let mut ids_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for event in batch {
            let key = event.record.key();
            let asked = match ask {
                Ask::Every => true,
                Ask::WhatMayRepeat => stored_leads
                    .get(key.as_ref())
                    .is_some_and(|lead| lead.may_have_applied(&scoring_event(&event.record))),
            };
            if asked {
                ids_of.entry(key.into_owned()).or_default().push(event.record.event_id.clone());
            }
        }
        let stored_history = self.store.applied(&ids_of).await.map_err(failed)?;

        let mut leads: HashMap<String, BatchLead> = HashMap::new();
        let mut applied_here: HashSet<(String, String)> = HashSet::new();
        let mut history = Vec::new();
        let mut slots = Vec::with_capacity(batch.len());
        for Decoded { position, record: event, .. } in batch {
            let key = event.key().into_owned();
            let position = position.clone();
            let merged = leads
                .get(&key)
                .map(|lead| &lead.document)
                .or_else(|| stored_leads.get(&key))
                .and_then(|document| document.merged.clone())
                .filter(|merge| !merge::read_before(&position, &merge.source));
            if let Some(merge) = merged {
                let out = self.after_merge(&merge, event, &position).await.map_err(failed)?;
                slots.push((position, Slot::Out(out)));
                continue;
            }
            if let Some(into) = &event.merge_into {
                let cycle = self.merge_cycle(&key, event, into, &leads).await.map_err(failed)?;
                let lead = leads.entry(key.clone()).or_insert_with(|| {
                    let document =
                        stored_leads.remove(&key).unwrap_or_else(|| LeadDoc::new(&key, position.partition));
                    BatchLead { read_version: document.version, document, state: None }
                });
                let out = match cycle {
                    Some(error) => {
                        self.metrics.merges.with_label_values(&["refused"]).inc();
                        vec![Emit::dead_letter(&position, merge::ERROR_CYCLE, error)]
                    }
                    None => self.merge(lead, event, into, &position, &history).await.map_err(failed)?,
                };
                slots.push((position, Slot::Out(out)));
                continue;
            }
            let pair = (key.clone(), event.event_id.clone());
            if stored_history.contains_key(&pair) || applied_here.contains(&pair) {
                slots.push((position, Slot::Applied { lead_key: key, event_id: event.event_id.clone() }));
                continue;
            }
            let rules = rules_of
                .entry(event.project_id.clone())
                .or_insert_with(|| book.for_project(&event.project_id).rules);
            let lead = leads.entry(key.clone()).or_insert_with(|| {
                let document =
                    stored_leads.remove(&key).unwrap_or_else(|| LeadDoc::new(&key, position.partition));
                BatchLead { read_version: document.version, document, state: None }
            });
            let state = lead.state.get_or_insert_with(|| lead.document.state(rules, self.tail_events));
            let record = apply(rules, &mut lead.document, state, event, self.tail_events);
            history.push(HistoryDoc {
                lead_key: key,
                event_id: record.event_id.clone(),
                seq: lead.document.version,
                ts: Some(HistoryDoc::ts_of(event.timestamp)),
                record: record.clone(),
                source: Some(position.clone()),
            });
            applied_here.insert(pair);
            slots.push((position, Slot::Scored(record)));
        }

        // Where each already-applied event was applied from: the stored history, or this batch.
        let mut applied: HashMap<(String, String), (LeadScored, Option<RecordPosition>)> =
            stored_history.into_iter().map(|(pair, h)| (pair, (h.record, h.source))).collect();
        let repeated_here = slots.iter().any(|(_, slot)| matches!(slot, Slot::Applied { .. }));
        if repeated_here {
            for h in &history {
                applied
                    .insert((h.lead_key.clone(), h.event_id.clone()), (h.record.clone(), h.source.clone()));
            }
        }

        let changed: Vec<(LeadDoc, u64)> = leads
            .into_values()
            .filter_map(|BatchLead { mut document, read_version, state }| {
                document.set_state(&state?);
                Some((document, read_version))
            })
            .collect();
        let scored = history.len();
        let too_late = history.iter().filter(|h| h.record.reason.as_deref() == Some(REASON_TOO_LATE)).count();
        self.store.save(history, changed).await.map_err(|e| match e {
            StoreError::Conflict(m) => Attempt::Conflict(m),
            StoreError::Mongo(e) => failed(e),
        })?;

        let mut outputs = Vec::with_capacity(slots.len());
        let (mut repeated, mut duplicate) = (0, 0);
        for (position, slot) in slots {
            match slot {
                Slot::Scored(record) => outputs.push(Emit::record(&position, &record)),
                Slot::Out(out) => outputs.extend(out),
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
        self.metrics.events_too_late.inc_by(too_late as u64);
        self.metrics.events_repeated.inc_by(repeated);
        self.metrics.events_duplicate.inc_by(duplicate);
        Ok(outputs)
    }
}

/// Applies one event not applied before to a lead's state and document, keeping `k` newest
/// events. A too-late event is recorded (the version counts it) but changes no score.
fn apply(
    rules: &ScoringRules,
    lead: &mut LeadDoc,
    state: &mut LeadState,
    event: &LeadEvent,
    k: usize,
) -> LeadScored {
    let new = scoring_event(event);
    let outcome = state.apply_event(rules, &new, k);
    lead.version += 1;
    if outcome.reason != Some(REASON_TOO_LATE) {
        lead.rules_version = rules.version.clone();
        // A new event restarts the decay clock, so a later drop is announced afresh.
        lead.decayed_stage = None;
    }
    outcome.record(&event.project_id, &event.lead_id, &new, &rules.version, lead.version)
}

fn scoring_event(event: &LeadEvent) -> ScoringEvent {
    ScoringEvent {
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        timestamp: event.timestamp,
    }
}

fn transient(e: mongodb::error::Error) -> ProcessError {
    ProcessError::Transient(format!("MongoDB: {e}"))
}

mod merge;
pub use merge::MAX_MOVED_EVENTS;
#[cfg(test)]
mod tests;
