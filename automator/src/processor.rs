//! One batch of score and enrichment records in, the executions they cause out. Each lead's
//! document is read once per batch, its records are applied in partition order
//! ([`facts::apply`]), the rules of its project are asked whether the change fires them
//! ([`facts::firings`]), and every firing whose execution key is free becomes an execution with
//! its deliveries queued. The batch's writes commit in one MongoDB transaction before its
//! execution records and offsets commit in the stage's Kafka transaction.
//!
//! An execution key is taken once, ever (the `_id` of `automation_executions`):
//! - a firing whose key is taken (the same rule on the same lead and UTC day, by another
//!   record) does nothing: `automator_firings_total{result="already_executed"}`;
//! - a record read again from an offset already applied (a batch redone after a crash, whose
//!   Kafka transaction never committed) changes nothing, and the executions it made are emitted
//!   again, byte for byte, from their stored records.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use leadflow_core::contract::codec::{CodecError, SchemaCodec};
use leadflow_core::contract::records::{
    ActionOutcome, ActionTaken, AutomationExecuted, ExecutionOutcome, LeadEnriched, LeadReviewed, LeadScored,
    PipelineStage, RecordPosition, TopicRecord,
};
use leadflow_core::contract::topics;
use leadflow_core::model::automation::{Action, AutomationRule};
use leadflow_core::model::webhook::message_id;
use leadflow_core::model::webhook::payload::{self, EventKind};
use leadflow_core::stage::automation_feed::AutomationBook;
use leadflow_core::stage::exactly_once::ProcessError;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::typed::{DecodeInput, Decoded, Emit, Transform};
use leadflow_core::store::documents::{
    AutomationLeadDoc, DeliveryDoc, DeliveryState, DeliveryTarget, ExecutionDoc, WebhookEndpointDoc,
};
use leadflow_core::store::mongo::StoreError;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

use crate::facts::{self, Change, Trigger};
use crate::metrics::AutomatorMetrics;
use crate::store::{AutomatorStore, BatchWrites};

impl DecodeInput for Trigger {
    async fn decode(codec: &SchemaCodec, topic: &str, value: &[u8]) -> Result<Self, CodecError> {
        match topic {
            topics::SCORES => codec.decode::<LeadScored>(value).await.map(Trigger::Scored),
            topics::ENRICHED => codec.decode::<LeadEnriched>(value).await.map(Trigger::Enriched),
            topics::REVIEWS => codec.decode::<LeadReviewed>(value).await.map(Trigger::Reviewed),
            other => Err(CodecError::UnexpectedTopic(other.to_owned())),
        }
    }

    fn expected_key(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Trigger::Scored(r) => r.key(),
            Trigger::Enriched(r) => r.key(),
            Trigger::Reviewed(r) => r.key(),
        }
    }
}

pub struct AutomatorProcessor {
    pub store: AutomatorStore,
    pub rules: watch::Receiver<AutomationBook>,
    pub metrics: AutomatorMetrics,
    /// Whether `notify_sales.url` is set.
    pub notify_sales_configured: bool,
    /// Whether `email.smtp_url` is set.
    pub email_configured: bool,
    /// Wakes the dispatcher once a batch has queued deliveries.
    pub queued: Arc<Notify>,
}

/// A firing whose key was free when the batch looked.
struct NewExecution {
    position: RecordPosition,
    rule: Arc<AutomationRule>,
    key: String,
    utc_day: time::Date,
    record: Trigger,
    lead: AutomationLeadDoc,
    change: Change,
}

impl Transform for AutomatorProcessor {
    type Input = Trigger;
    const STAGE: PipelineStage = PipelineStage::Automator;

    async fn apply(
        &self,
        batch: Vec<Decoded<Trigger>>,
        _pause: &PauseSignal,
    ) -> Result<Vec<Emit>, ProcessError> {
        // A conflict is another writer (a zombie instance after a rebalance) that took a key or
        // changed a lead since the read: redone at once from a fresh read, which sees its writes.
        match self.attempt(&batch).await {
            Err(StoreError::Conflict(reason)) => {
                tracing::debug!(reason, "the save met a conflict; redoing the batch");
                self.attempt(&batch).await
            }
            other => other,
        }
        .map_err(|e| ProcessError::Transient(format!("MongoDB: {e}")))
    }
}

impl AutomatorProcessor {
    async fn attempt(&self, batch: &[Decoded<Trigger>]) -> Result<Vec<Emit>, StoreError> {
        let book = self.rules.borrow().clone();
        let keys: Vec<String> = batch
            .iter()
            .map(|d| d.record.expected_key().into_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut stored = self.store.load_leads(&keys).await?;
        let mut leads: HashMap<String, (AutomationLeadDoc, u64)> = HashMap::new();
        let mut redelivered = Vec::new();
        let mut changed: HashSet<String> = HashSet::new();
        let mut candidates = Vec::new();
        for Decoded { position, record, .. } in batch {
            let key = record.expected_key().into_owned();
            let (lead, _) = leads.entry(key.clone()).or_insert_with(|| {
                let doc = stored.remove(&key).unwrap_or_else(|| AutomationLeadDoc::new(&key));
                let version = doc.version;
                (doc, version)
            });
            let Some(change) = facts::apply(lead, record, position) else {
                redelivered.push(position.clone());
                continue;
            };
            changed.insert(key.clone());
            let rules: Vec<&AutomationRule> =
                book.for_project(record.project_id()).map(|r| r.rule.as_ref()).collect();
            for firing in facts::firings(rules, record, &change) {
                let rule =
                    book.get(record.project_id(), &firing.rule.id).expect("a rule of the book").rule.clone();
                candidates.push(NewExecution {
                    position: position.clone(),
                    rule,
                    key: firing.execution_key,
                    utc_day: firing.utc_day,
                    record: record.clone(),
                    lead: lead.clone(),
                    change: change.clone(),
                });
            }
        }

        let candidate_keys: Vec<String> = candidates.iter().map(|c| c.key.clone()).collect();
        let taken = self.store.executions_by_key(&candidate_keys).await?;
        let mut claimed: HashSet<String> = HashSet::new();
        let (mut fresh, mut already) = (Vec::new(), 0u64);
        for candidate in candidates {
            if taken.contains_key(&candidate.key) || !claimed.insert(candidate.key.clone()) {
                already += 1;
            } else {
                fresh.push(candidate);
            }
        }

        let subscription_ids: Vec<String> = fresh
            .iter()
            .flat_map(|c| c.rule.actions.iter())
            .filter_map(|a| match a {
                Action::Webhook { subscription_id } => Some(subscription_id.clone()),
                Action::NotifySales { .. } | Action::Email { .. } => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let endpoints = self.store.endpoints(&subscription_ids).await?;

        let now = OffsetDateTime::now_utc();
        let mut writes = BatchWrites::default();
        let mut emitted: Vec<(RecordPosition, AutomationExecuted)> = Vec::new();
        for candidate in fresh {
            let (record, deliveries) = self.execution(&candidate, &endpoints, now);
            writes.executions.push(ExecutionDoc {
                key: candidate.key.clone(),
                project_id: record.project_id.clone(),
                rule_id: record.rule_id.clone(),
                lead_key: candidate.record.expected_key().into_owned(),
                executed_at_ms: epoch_ms(now),
                source: candidate.position.clone(),
                record: record.clone(),
            });
            writes.deliveries.extend(deliveries);
            emitted.push((candidate.position, record));
        }
        let stored_again = self.store.executions_from(&redelivered).await?;
        writes.leads = leads
            .into_iter()
            .filter(|(key, _)| changed.contains(key))
            .map(|(_, (mut doc, read))| {
                doc.version = read + 1;
                (doc, read)
            })
            .collect();
        let queued = !writes.deliveries.is_empty();
        let executed = writes.executions.len() as u64;
        let outcomes: Vec<ExecutionOutcome> = writes.executions.iter().map(|e| e.record.outcome).collect();
        self.store.save(writes).await?;
        if queued {
            self.queued.notify_one();
        }

        self.metrics.firings.with_label_values(&["executed"]).inc_by(executed);
        self.metrics.firings.with_label_values(&["already_executed"]).inc_by(already);
        for outcome in outcomes {
            let label = match outcome {
                ExecutionOutcome::Queued => "queued",
                ExecutionOutcome::NothingQueued => "nothing_queued",
            };
            self.metrics.executions.with_label_values(&[label]).inc();
        }
        self.metrics.executions_re_emitted.inc_by(stored_again.len() as u64);
        emitted.extend(stored_again.into_iter().map(|e| (e.source, e.record)));
        // Input order, so that a lead's executions keep the order of their triggers.
        let order: HashMap<RecordPosition, usize> =
            batch.iter().enumerate().map(|(i, d)| (d.position.clone(), i)).collect();
        emitted.sort_by_key(|(position, record)| (order.get(position).copied(), record.rule_id.clone()));
        Ok(emitted.iter().map(|(position, record)| Emit::record(position, record)).collect())
    }

    /// The execution record of a fresh firing and the deliveries it queues.
    fn execution(
        &self,
        candidate: &NewExecution,
        endpoints: &HashMap<String, WebhookEndpointDoc>,
        now: OffsetDateTime,
    ) -> (AutomationExecuted, Vec<DeliveryDoc>) {
        let NewExecution { position, rule, key, utc_day, record, lead, change } = candidate;
        let project_id = record.project_id().to_owned();
        let mut execution = AutomationExecuted {
            project_id: project_id.clone(),
            lead_id: record.lead_id().to_owned(),
            rule_id: rule.id.clone(),
            rule_version: rule.version.clone(),
            execution_key: key.clone(),
            utc_day: format!("{:04}-{:02}-{:02}", utc_day.year(), u8::from(utc_day.month()), utc_day.day()),
            condition: rule.condition_type().to_owned(),
            trigger: position.clone(),
            trigger_event_id: record.event_id().map(str::to_owned),
            trigger_at: record.at(),
            actions: Vec::new(),
            outcome: ExecutionOutcome::NothingQueued,
            executed_at: now,
        };
        let facts = facts::lead_facts(lead, change);
        let kind = EventKind::of_condition(&rule.condition);
        // (action index, queue, target, body when not the webhook body)
        let mut queue: Vec<(usize, String, DeliveryTarget, Option<String>)> = Vec::new();
        for (index, action) in rule.actions.iter().enumerate() {
            let id = message_id(&format!("{key}#{index}"));
            let (taken, queued) = match action {
                Action::Webhook { subscription_id } => {
                    let outcome = match endpoints.get(subscription_id) {
                        // Another project's subscription is as good as none.
                        Some(endpoint) if endpoint.project_id == project_id => {
                            if kind.is_taken_by(&endpoint.event_kinds) {
                                ActionOutcome::Queued
                            } else {
                                ActionOutcome::KindNotSubscribed
                            }
                        }
                        _ => ActionOutcome::SubscriptionNotFound,
                    };
                    let queued = (outcome == ActionOutcome::Queued)
                        .then(|| (subscription_id.clone(), DeliveryTarget::Webhook, None));
                    (("webhook", Some(subscription_id.clone()), outcome), queued)
                }
                Action::NotifySales { .. } if !self.notify_sales_configured => {
                    (("notifySales", None, ActionOutcome::NotConfigured), None)
                }
                Action::NotifySales { channel, message } => {
                    let body = payload::sales_message_body(
                        message.as_deref(),
                        channel.as_deref(),
                        record.lead_id(),
                        &facts,
                    );
                    let queue = DeliveryDoc::notify_sales_endpoint(&project_id);
                    (
                        ("notifySales", None, ActionOutcome::Queued),
                        Some((queue, DeliveryTarget::NotifySales, Some(body))),
                    )
                }
                Action::Email { .. } if !self.email_configured => {
                    (("email", None, ActionOutcome::NotConfigured), None)
                }
                Action::Email { to, subject, message } => {
                    let body = payload::email_body(
                        to,
                        subject.as_deref(),
                        message.as_deref(),
                        record.lead_id(),
                        &facts,
                    );
                    let queue = DeliveryDoc::email_endpoint(&project_id);
                    (("email", None, ActionOutcome::Queued), Some((queue, DeliveryTarget::Email, Some(body))))
                }
            };
            let ((kind_name, subscription_id, outcome), queued) = (taken, queued);
            execution.actions.push(ActionTaken {
                kind: kind_name.to_owned(),
                subscription_id,
                message_id: queued.is_some().then_some(id),
                outcome,
            });
            if let Some((endpoint_id, target, body)) = queued {
                queue.push((index, endpoint_id, target, body));
            }
        }
        if !queue.is_empty() {
            execution.outcome = ExecutionOutcome::Queued;
        }
        // The webhook body holds the finished execution, so it is built last.
        let webhook_body = payload::execution_body(rule, &execution, &facts);
        let deliveries = queue
            .into_iter()
            .map(|(index, endpoint_id, target, body)| DeliveryDoc {
                id: message_id(&format!("{key}#{index}")),
                endpoint_id,
                project_id: project_id.clone(),
                target,
                partition: position.partition,
                kind: kind.name().to_owned(),
                body: body.unwrap_or_else(|| webhook_body.clone()),
                state: DeliveryState::Pending,
                attempt_count: 0,
                scheduled_attempts: 0,
                next_attempt_at_ms: epoch_ms(now),
                attempts: Vec::new(),
                created_at_ms: epoch_ms(now),
                delivered_at_ms: None,
                execution_key: Some(key.clone()),
            })
            .collect();
        (execution, deliveries)
    }
}

pub fn epoch_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
