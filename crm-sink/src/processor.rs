//! One batch of lead records in (enriched, scored, reviewed, resync requests), CRM deliveries
//! and their receipts out. Per batch: fold the records into each lead's view, deliver every
//! touched lead whose CRM copy is behind, save the views (with the delivery outcome) to MongoDB,
//! and hand the receipts to the stage, which commits them with the batch's offsets in one Kafka
//! transaction.
//!
//! A crash after the CRM answered but before the Kafka commit is the case to get right. The
//! batch is read again from the committed offsets:
//! - if the views were not saved, the leads are delivered again with the same idempotency keys
//!   (`leadId:version`), which the CRM applies once;
//! - if they were saved, the leads are in sync and are not delivered again, but their receipts
//!   are not in Kafka yet: each view remembers the record that triggered its last delivery, and
//!   a batch that meets that record again emits the stored receipt again. So every delivered
//!   `(leadId, version)` gets exactly one committed receipt.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use leadflow_core::contract::codec::{CodecError, SchemaCodec};
use leadflow_core::contract::records::{
    CrmDelivery, CrmResyncRequested, DeadLetter, DeliveryStatus, LeadEnriched, LeadReviewed, LeadScored,
    PipelineStage, TopicRecord,
};
use leadflow_core::contract::topics;
use leadflow_core::stage::exactly_once::{BatchProcessor, InputRecord, OutputRecord, ProcessError};
use leadflow_core::stage::pause::PauseSignal;
use time::OffsetDateTime;

use crate::contact;
use crate::destination::Destination;
use crate::http_destination::ContactOutcome;
use crate::metrics::SinkMetrics;
use crate::read_model::{Applied, LeadView, RecordPosition};
use crate::store::{LeadStore, StoreError, StoredLead};

/// The error kind of a dead letter for a contact the CRM refused.
pub const CRM_REJECTED: &str = "crm_rejected";

pub struct SinkProcessor {
    pub codec: Arc<SchemaCodec>,
    pub store: LeadStore,
    pub destination: Destination,
    pub metrics: SinkMetrics,
}

/// A decoded input record.
enum Fact {
    Enriched(LeadEnriched),
    Scored(LeadScored),
    Reviewed(LeadReviewed),
    Resync(CrmResyncRequested),
}

impl Fact {
    fn lead_id(&self) -> &str {
        match self {
            Fact::Enriched(r) => r.key(),
            Fact::Scored(r) => r.key(),
            Fact::Reviewed(r) => r.key(),
            Fact::Resync(r) => r.key(),
        }
    }
}

/// A lead the batch has records for.
struct Touched {
    before: Option<StoredLead>,
    view: LeadView,
    /// The lead's last record in the batch: the trigger of a delivery made now.
    last_position: RecordPosition,
    /// A resync request asks for delivery even of a version the CRM refused before.
    resync_requested: bool,
}

impl BatchProcessor for SinkProcessor {
    async fn process(
        &self,
        batch: &[InputRecord],
        pause: &PauseSignal,
    ) -> Result<Vec<OutputRecord>, ProcessError> {
        let mut outputs = Vec::new();
        let mut facts = Vec::with_capacity(batch.len());
        for record in batch {
            match self.decode(record).await? {
                Ok(fact) => facts.push((position(record), fact)),
                Err(letter) => outputs.push(letter),
            }
        }

        let mut lead_ids: Vec<String> = facts.iter().map(|(_, f)| f.lead_id().to_owned()).collect();
        lead_ids.sort();
        lead_ids.dedup();
        let mut stored = self.store.load(&lead_ids).await.map_err(mongo_error)?;
        let mut touched: Vec<Touched> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (position, fact) in facts {
            let lead_id = fact.lead_id().to_owned();
            let i = *index.entry(lead_id.clone()).or_insert_with(|| {
                let before = stored.remove(&lead_id);
                let view = before
                    .as_ref()
                    .map_or_else(|| LeadView::new(&lead_id, position.partition), |s| s.view.clone());
                touched.push(Touched {
                    before,
                    view,
                    last_position: position.clone(),
                    resync_requested: false,
                });
                touched.len() - 1
            });
            let lead = &mut touched[i];
            let applied = match &fact {
                Fact::Enriched(r) => lead.view.apply_enriched(r),
                Fact::Scored(r) => lead.view.apply_scored(r),
                Fact::Reviewed(r) => lead.view.apply_reviewed(r),
                Fact::Resync(_) => {
                    lead.resync_requested = true;
                    Applied::Ignored
                }
            };
            self.metrics.records_applied.with_label_values(&[&position.topic, applied.as_str()]).inc();
            lead.last_position = position;
        }

        // Receipts of deliveries whose batch never committed: their trigger is in this batch.
        let positions: HashSet<RecordPosition> = batch.iter().map(position).collect();
        for lead in &touched {
            let Some(before) = &lead.before else { continue };
            if before.view.last_delivery.as_ref().is_some_and(|d| positions.contains(&d.trigger)) {
                outputs.extend(self.receipt_records(&before.view).await?);
            }
        }

        let due: Vec<usize> = (0..touched.len())
            .filter(|i| {
                let lead = &touched[*i];
                lead.view.needs_delivery() || (lead.resync_requested && lead.view.out_of_sync())
            })
            .collect();
        if !due.is_empty() {
            let views: Vec<&LeadView> = due.iter().map(|i| &touched[*i].view).collect();
            let outcomes = self
                .destination
                .deliver(&views, pause)
                .await
                .map_err(|e| ProcessError::Transient(format!("CRM delivery: {e}")))?;
            let destination = self.destination.kind().as_str();
            let now = OffsetDateTime::now_utc();
            for (i, outcome) in due.into_iter().zip(outcomes) {
                let lead = &mut touched[i];
                let (status, error) = match outcome {
                    ContactOutcome::Delivered => (DeliveryStatus::Delivered, None),
                    ContactOutcome::Rejected { error } => (DeliveryStatus::DeadLettered, Some(error)),
                };
                let status_label = match status {
                    DeliveryStatus::Delivered => "delivered",
                    DeliveryStatus::DeadLettered => "dead_lettered",
                };
                self.metrics.deliveries.with_label_values(&[destination, status_label]).inc();
                lead.view.record_delivery(destination, status, now, lead.last_position.clone(), error);
                outputs.extend(self.receipt_records(&lead.view).await?);
            }
        }

        let changed: Vec<(LeadView, u64)> = touched
            .into_iter()
            .filter(|lead| lead.before.as_ref().map(|b| &b.view) != Some(&lead.view))
            .map(|lead| (lead.view, lead.before.map_or(0, |b| b.revision)))
            .collect();
        self.store.save(changed).await.map_err(|e| match e {
            StoreError::Conflict(m) => ProcessError::Transient(m),
            StoreError::Mongo(e) => mongo_error(e),
        })?;
        Ok(outputs)
    }
}

fn position(record: &InputRecord) -> RecordPosition {
    RecordPosition { topic: record.topic.to_string(), partition: record.partition, offset: record.offset }
}

fn mongo_error(e: mongodb::error::Error) -> ProcessError {
    ProcessError::Transient(format!("MongoDB: {e}"))
}

fn encode_error(e: CodecError) -> ProcessError {
    ProcessError::Transient(e.to_string())
}

impl SinkProcessor {
    /// The record as a fact, or (`Ok(Err)`) the dead letter that replaces it.
    async fn decode(&self, record: &InputRecord) -> Result<Result<Fact, OutputRecord>, ProcessError> {
        let Some(value) = record.value.as_deref() else {
            return Ok(Err(self.dead_letter(record, "malformed", "a record with no value").await?));
        };
        let decoded = match &*record.topic {
            topics::ENRICHED => self.codec.decode::<LeadEnriched>(value).await.map(Fact::Enriched),
            topics::SCORES => self.codec.decode::<LeadScored>(value).await.map(Fact::Scored),
            topics::REVIEWS => self.codec.decode::<LeadReviewed>(value).await.map(Fact::Reviewed),
            topics::CRM_RESYNC => self.codec.decode::<CrmResyncRequested>(value).await.map(Fact::Resync),
            other => {
                return Err(ProcessError::Fatal(format!(
                    "a record from {other}, which the crm-sink does not read"
                )));
            }
        };
        match decoded {
            Ok(fact) => Ok(Ok(fact)),
            Err(CodecError::Poison { kind, message }) => {
                Ok(Err(self.dead_letter(record, kind.as_str(), &message).await?))
            }
            Err(e) => Err(encode_error(e)),
        }
    }

    async fn dead_letter(
        &self,
        record: &InputRecord,
        kind: &str,
        error: &str,
    ) -> Result<OutputRecord, ProcessError> {
        self.metrics.dlq_records.with_label_values(&[kind]).inc();
        record.dead_letter(&self.codec, PipelineStage::CrmSink, kind, error, OffsetDateTime::now_utc()).await
    }

    /// The receipt of the view's last delivery attempt and, if the CRM refused it, the dead
    /// letter: the contact as sent, and the record that triggered it.
    async fn receipt_records(&self, view: &LeadView) -> Result<Vec<OutputRecord>, ProcessError> {
        let (Some(receipt), Some(attempt)) = (view.receipt(), view.last_delivery.as_ref()) else {
            return Ok(Vec::new());
        };
        let mut records = Vec::with_capacity(2);
        if attempt.status == DeliveryStatus::DeadLettered {
            self.metrics.dlq_records.with_label_values(&[CRM_REJECTED]).inc();
            let contact = serde_json::to_vec(&contact::properties(view)).expect("properties serialise");
            let letter = DeadLetter::for_record(
                PipelineStage::CrmSink,
                CRM_REJECTED,
                attempt.error.clone().unwrap_or_default(),
                &attempt.trigger.topic,
                attempt.trigger.partition,
                attempt.trigger.offset,
                Some(view.lead_id.as_bytes()),
                Some(&contact),
                attempt.at,
            );
            let value = self.codec.encode(&letter).await.map_err(encode_error)?;
            records.push(OutputRecord { topic: DeadLetter::TOPIC, key: letter.lead_id, value });
        }
        let value = self.codec.encode(&receipt).await.map_err(encode_error)?;
        records.push(OutputRecord { topic: CrmDelivery::TOPIC, key: receipt.lead_id, value });
        Ok(records)
    }
}
