//! One batch of lead records in (enriched, scored, reviewed, resync requests), CRM deliveries
//! and their receipts out. Per batch: fold the records into each lead's view (one per lead key,
//! so per project and leadId), deliver every touched lead whose CRM copy is behind through its
//! own project's connection (a lead of a project without one is counted and left out of sync,
//! see [`crate::connections`]), save the views (with the delivery outcome) to MongoDB, and hand
//! the receipts to the stage, which commits them with the batch's offsets in one Kafka
//! transaction.
//!
//! A crash after the CRM answered but before the Kafka commit is the case to get right. The
//! batch is read again from the committed offsets:
//! - if the views were not saved, the leads are delivered again, the same version with the same
//!   properties: under HubSpot's last writer wins that rewrites what is there (a version-guarded
//!   CRM ignores it);
//! - if they were saved, the leads are in sync and are not delivered again, but their receipts
//!   are not in Kafka yet: each view remembers the record that triggered its last delivery, and
//!   a batch that meets that record again emits the stored receipt again. So every delivered
//!   `(leadId, version)` gets exactly one committed receipt.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use leadflow_core::contract::codec::{CodecError, SchemaCodec};
use leadflow_core::contract::records::{
    CrmResyncRequested, DeliveryStatus, LeadEnriched, LeadReviewed, LeadScored, PipelineStage, TopicRecord,
};
use leadflow_core::contract::topics;
use leadflow_core::stage::exactly_once::{AssignedPartitions, ProcessError};
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::typed::{DeadLetterSpec, DecodeInput, Decoded, Emit, Transform};
use time::OffsetDateTime;

use crate::connections::{Connections, Unconfigured};
use crate::contact;
use crate::destination::Destination;
use crate::http_destination::ContactOutcome;
use crate::metrics::SinkMetrics;
use crate::read_model::{Applied, LeadView, RecordPosition};
use crate::store::{LeadStore, StoreError, StoredLead};

/// The error kind of a dead letter for a contact the CRM refused.
pub const CRM_REJECTED: &str = "crm_rejected";

pub struct SinkProcessor {
    pub store: LeadStore,
    pub connections: Connections,
    pub unconfigured: Unconfigured,
    pub metrics: SinkMetrics,
    /// The stage's partitions, to tell when one was taken over.
    assigned: Option<AssignedPartitions>,
    /// Since when this instance has held each partition it has seen a batch of.
    held_since: Mutex<HashMap<i32, Instant>>,
}

impl SinkProcessor {
    pub fn new(store: LeadStore, connections: Connections, metrics: SinkMetrics) -> Self {
        let unconfigured = Unconfigured::new(metrics.unconfigured_project_leads.clone());
        SinkProcessor {
            store,
            connections,
            unconfigured,
            metrics,
            assigned: None,
            held_since: Mutex::default(),
        }
    }

    /// Follows the stage's assignment, so that a partition revoked and given back counts as
    /// taken over again.
    pub fn following(mut self, assigned: AssignedPartitions) -> Self {
        self.assigned = Some(assigned);
        self
    }

    /// How long ago this instance began holding each of `partitions` (a batch is the first
    /// sign of it). The previous holder may have left a write in flight that the CRM applies
    /// late: deliveries within the late-apply window of a takeover are read back later.
    fn held_for(&self, partitions: impl Iterator<Item = i32>) -> HashMap<i32, std::time::Duration> {
        let mut held = self.held_since.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(assigned) = &self.assigned {
            let assigned = assigned.lock().unwrap_or_else(PoisonError::into_inner);
            held.retain(|p, _| assigned.contains(p));
        }
        let now = Instant::now();
        partitions.map(|p| (p, now - *held.entry(p).or_insert(now))).collect()
    }
}

/// A decoded input record, from one of the four co-partitioned topics.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Enriched(LeadEnriched),
    Scored(LeadScored),
    Reviewed(LeadReviewed),
    Resync(CrmResyncRequested),
}

impl DecodeInput for Fact {
    async fn decode(codec: &SchemaCodec, topic: &str, value: &[u8]) -> Result<Self, CodecError> {
        match topic {
            topics::ENRICHED => codec.decode::<LeadEnriched>(value).await.map(Fact::Enriched),
            topics::SCORES => codec.decode::<LeadScored>(value).await.map(Fact::Scored),
            topics::REVIEWS => codec.decode::<LeadReviewed>(value).await.map(Fact::Reviewed),
            topics::CRM_RESYNC => codec.decode::<CrmResyncRequested>(value).await.map(Fact::Resync),
            other => Err(CodecError::UnexpectedTopic(other.to_owned())),
        }
    }

    fn expected_key(&self) -> std::borrow::Cow<'_, str> {
        self.key()
    }
}

impl Fact {
    /// The lead key (`contract::project::lead_key`): the read model's `_id`.
    fn key(&self) -> std::borrow::Cow<'_, str> {
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
    /// A resync request says the CRM's copy differs: deliver even a version counted as synced.
    crm_differs: bool,
}

impl Transform for SinkProcessor {
    type Input = Fact;
    const STAGE: PipelineStage = PipelineStage::CrmSink;

    fn gather_for(&self) -> std::time::Duration {
        self.connections.until_paced()
    }

    async fn apply(&self, batch: Vec<Decoded<Fact>>, pause: &PauseSignal) -> Result<Vec<Emit>, ProcessError> {
        let mut outputs = Vec::new();
        let positions: HashSet<RecordPosition> = batch.iter().map(|d| d.position.clone()).collect();
        let facts: Vec<(RecordPosition, Fact)> = batch.into_iter().map(|d| (d.position, d.record)).collect();

        let mut keys: Vec<String> = facts.iter().map(|(_, f)| f.key().into_owned()).collect();
        keys.sort();
        keys.dedup();
        let mut stored = self.store.load(&keys).await.map_err(mongo_error)?;
        let mut touched: Vec<Touched> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (position, fact) in facts {
            let key = fact.key().into_owned();
            let i = *index.entry(key.clone()).or_insert_with(|| {
                let before = stored.remove(&key);
                let view = before
                    .as_ref()
                    .map_or_else(|| LeadView::new(&key, position.partition), |s| s.view.clone());
                touched.push(Touched {
                    before,
                    view,
                    last_position: position.clone(),
                    resync_requested: false,
                    crm_differs: false,
                });
                touched.len() - 1
            });
            let lead = &mut touched[i];
            let applied = match &fact {
                Fact::Enriched(r) => lead.view.apply_enriched(r),
                Fact::Scored(r) => lead.view.apply_scored(r),
                Fact::Reviewed(r) => lead.view.apply_reviewed(r),
                Fact::Resync(r) => {
                    lead.resync_requested = true;
                    lead.crm_differs |= r.crm_differs;
                    Applied::Ignored
                }
            };
            self.metrics.records_applied.with_label_values(&[&position.topic, applied.as_str()]).inc();
            lead.last_position = position;
        }

        // Receipts of deliveries whose batch never committed: their trigger is in this batch.
        for lead in &touched {
            let Some(before) = &lead.before else { continue };
            if before.view.last_delivery.as_ref().is_some_and(|d| positions.contains(&d.trigger)) {
                outputs.extend(self.receipt_records(&before.view));
            }
        }

        let due: Vec<usize> = (0..touched.len())
            .filter(|i| {
                let lead = &touched[*i];
                lead.view.needs_delivery()
                    || (lead.resync_requested && lead.view.out_of_sync())
                    || (lead.crm_differs && lead.view.belongs_in_crm())
            })
            .collect();
        // Each project's due leads go through that project's connection, and only through it.
        let mut due_by_project: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for i in due {
            due_by_project.entry(touched[i].view.project_id.as_str()).or_default().push(i);
        }
        let mut deliveries: Vec<(&Destination, Vec<usize>)> = Vec::new();
        for (project, due) in due_by_project {
            match self.connections.of(project) {
                Some(destination) => deliveries.push((destination, due)),
                None => self.unconfigured.note(project, due.len()),
            }
        }
        let held_for = self.held_for(touched.iter().map(|t| t.view.partition));
        for (destination, due) in deliveries {
            let views: Vec<&LeadView> = due.iter().map(|i| &touched[*i].view).collect();
            let outcomes = destination
                .deliver(&views, pause)
                .await
                .map_err(|e| ProcessError::Transient(format!("CRM delivery: {e}")))?;
            let window = destination.late_apply_window();
            let destination = destination.kind().as_str();
            let now = OffsetDateTime::now_utc();
            for (i, outcome) in due.into_iter().zip(outcomes) {
                let lead = &mut touched[i];
                let (status, error) = match outcome {
                    ContactOutcome::Delivered { unsure } => {
                        let taken_over =
                            held_for.get(&lead.view.partition).is_some_and(|held| *held < window);
                        if (unsure || taken_over) && !window.is_zero() {
                            lead.view.crm_check_after = Some(now + window);
                        }
                        (DeliveryStatus::Delivered, None)
                    }
                    ContactOutcome::Rejected { error } => (DeliveryStatus::DeadLettered, Some(error)),
                };
                let status_label = match status {
                    DeliveryStatus::Delivered => "delivered",
                    DeliveryStatus::DeadLettered => "dead_lettered",
                };
                self.metrics.deliveries.with_label_values(&[destination, status_label]).inc();
                lead.view.record_delivery(destination, status, now, lead.last_position.clone(), error);
                outputs.extend(self.receipt_records(&lead.view));
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

fn mongo_error(e: mongodb::error::Error) -> ProcessError {
    ProcessError::Transient(format!("MongoDB: {e}"))
}

impl SinkProcessor {
    /// The receipt of the view's last delivery attempt and, if the CRM refused it, the dead
    /// letter: the contact as sent, and the record that triggered it.
    fn receipt_records(&self, view: &LeadView) -> Vec<Emit> {
        let (Some(receipt), Some(attempt)) = (view.receipt(), view.last_delivery.as_ref()) else {
            return Vec::new();
        };
        let mut records = Vec::with_capacity(2);
        if attempt.status == DeliveryStatus::DeadLettered {
            let contact = serde_json::to_vec(&contact::properties(view)).expect("properties serialise");
            let mut letter = DeadLetterSpec::new(
                &attempt.trigger,
                CRM_REJECTED,
                attempt.error.clone().unwrap_or_default(),
            );
            letter.replacement = Some((Some(view.key.as_bytes().to_vec()), contact));
            letter.failed_at = Some(attempt.at);
            records.push(Emit::DeadLetter(letter));
        }
        records.push(Emit::record(&attempt.trigger, &receipt));
        records
    }
}
