//! One batch of events in, one LeadScored per event out. Each lead's state is read once per
//! batch, its events are applied in partition order, and the batch's changes are saved in one
//! MongoDB transaction before the records go to Kafka. An event already applied (a redelivery
//! after a crash, or the same `eventId` posted twice) is not scored again: its stored record is
//! emitted again, byte for byte the same value.

use std::collections::HashMap;
use std::sync::Arc;

use leadflow_core::contract::codec::{CodecError, SchemaCodec};
use leadflow_core::contract::records::{LeadEvent, LeadScored, PipelineStage, TopicRecord};
use leadflow_core::model::scoring::{self, ScoringEvent, ScoringRules};
use leadflow_core::stage::exactly_once::{BatchProcessor, InputRecord, OutputRecord, ProcessError};
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::rules_feed::RulesInForce;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use crate::metrics::ScorerMetrics;
use crate::store::{AppliedEvent, HistoryDoc, LeadDoc, LeadStore, StoreError};

pub struct ScoreProcessor {
    pub codec: Arc<SchemaCodec>,
    pub store: LeadStore,
    pub rules: watch::Receiver<RulesInForce>,
    pub metrics: ScorerMetrics,
}

/// What becomes of one input record, in input order.
enum Slot {
    Scored(LeadScored),
    /// Already applied: its stored record is emitted again.
    Repeat {
        lead_id: String,
        event_id: String,
    },
    DeadLetter(OutputRecord),
}

impl BatchProcessor for ScoreProcessor {
    async fn process(
        &self,
        batch: &[InputRecord],
        _pause: &PauseSignal,
    ) -> Result<Vec<OutputRecord>, ProcessError> {
        let rules = self.rules.borrow().rules.clone();
        let mut events = Vec::with_capacity(batch.len());
        let mut slots: Vec<Option<Slot>> = Vec::with_capacity(batch.len());
        for record in batch {
            let Some(value) = record.value.as_deref() else {
                slots.push(Some(Slot::DeadLetter(
                    self.dead_letter(record, "malformed", "a record with no value").await?,
                )));
                continue;
            };
            match self.codec.decode::<LeadEvent>(value).await {
                Ok(event) => {
                    events.push((slots.len(), record.partition, event));
                    slots.push(None);
                }
                Err(CodecError::Poison { kind, message }) => slots
                    .push(Some(Slot::DeadLetter(self.dead_letter(record, kind.as_str(), &message).await?))),
                Err(e) => return Err(ProcessError::Transient(e.to_string())),
            }
        }

        let mut lead_ids: Vec<String> = events.iter().map(|(_, _, e)| e.lead_id.clone()).collect();
        lead_ids.sort();
        lead_ids.dedup();
        let mut leads = self.store.load(&lead_ids).await.map_err(transient)?;
        let read_versions: HashMap<String, u64> =
            leads.iter().map(|(id, d)| (id.clone(), d.version)).collect();
        let mut history = Vec::new();
        for (slot, partition, event) in events {
            let lead =
                leads.entry(event.lead_id.clone()).or_insert_with(|| LeadDoc::new(&event.lead_id, partition));
            slots[slot] = Some(match apply(&rules, lead, &event) {
                Some(record) => {
                    history.push(HistoryDoc {
                        lead_id: record.lead_id.clone(),
                        event_id: record.event_id.clone(),
                        seq: lead.version,
                        record: record.clone(),
                    });
                    Slot::Scored(record)
                }
                None => Slot::Repeat { lead_id: event.lead_id, event_id: event.event_id },
            });
        }

        let repeats: Vec<(String, String)> = slots
            .iter()
            .filter_map(|s| match s {
                Some(Slot::Repeat { lead_id, event_id }) => Some((lead_id.clone(), event_id.clone())),
                _ => None,
            })
            .collect();
        // A repeat inside this batch finds its record among the batch's own; others are stored.
        let mut known: HashMap<(String, String), LeadScored> =
            history.iter().map(|h| ((h.lead_id.clone(), h.event_id.clone()), h.record.clone())).collect();
        let missing: Vec<(String, String)> = repeats.into_iter().filter(|k| !known.contains_key(k)).collect();
        if !missing.is_empty() {
            known.extend(self.store.stored_records(&missing).await.map_err(transient)?);
        }

        let changed: Vec<(LeadDoc, u64)> = leads
            .into_values()
            .filter_map(|lead| {
                let read = read_versions.get(&lead.lead_id).copied().unwrap_or(0);
                (lead.version != read).then_some((lead, read))
            })
            .collect();
        let scored = history.len();
        self.store.save(history, changed).await.map_err(|e| match e {
            StoreError::Conflict(m) => ProcessError::Transient(m),
            StoreError::Mongo(e) => transient(e),
        })?;

        let mut outputs = Vec::with_capacity(slots.len());
        let mut repeated = 0;
        for slot in slots.into_iter().flatten() {
            let record = match slot {
                Slot::DeadLetter(letter) => {
                    outputs.push(letter);
                    continue;
                }
                Slot::Scored(record) => record,
                Slot::Repeat { lead_id, event_id } => {
                    repeated += 1;
                    match known.get(&(lead_id.clone(), event_id.clone())) {
                        Some(record) => record.clone(),
                        None => {
                            tracing::warn!(
                                lead_id,
                                event_id,
                                "an applied event has no stored record; not emitted"
                            );
                            continue;
                        }
                    }
                }
            };
            let value =
                self.codec.encode(&record).await.map_err(|e| ProcessError::Transient(e.to_string()))?;
            outputs.push(OutputRecord { topic: LeadScored::TOPIC, key: record.lead_id, value });
        }
        self.metrics.events_scored.inc_by(scored as u64);
        self.metrics.events_repeated.inc_by(repeated);
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

impl ScoreProcessor {
    async fn dead_letter(
        &self,
        record: &InputRecord,
        kind: &str,
        error: &str,
    ) -> Result<OutputRecord, ProcessError> {
        self.metrics.dlq_records.with_label_values(&[kind]).inc();
        record.dead_letter(&self.codec, PipelineStage::Scorer, kind, error, OffsetDateTime::now_utc()).await
    }
}
