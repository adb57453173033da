//! The dispatcher: sends the queued deliveries of the partitions this instance holds, one queue
//! per endpoint, so that a slow or failing endpoint only ever delays its own deliveries.
//!
//! - Ownership follows Kafka: a delivery carries its lead's partition, and only the instance
//!   the group gave that partition sends it. There is no lock of our own. During a rebalance two
//!   instances may both send a delivery, which is why each carries a stable `Webhook-Id`.
//! - Every `poll_interval`, and whenever a batch queues deliveries, one query takes the due
//!   deliveries of the held partitions, leaving out those in flight and those of endpoints whose
//!   queue is full; each goes to its endpoint's queue (a task with `per_endpoint_concurrency`
//!   attempts in flight).
//! - An attempt's result is saved with the delivery's `attemptCount` as its condition, so a
//!   second sender's save of the same attempt is refused instead of doubling the log.
//! - A disabled endpoint's deliveries are parked (due at the end of time) until a replay
//!   requeues them; a deleted endpoint's are dropped.

mod attempt;
mod email;
mod sender;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use leadflow_core::model::webhook::{
    DisablePolicy, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, RetrySchedule, WebhookSecret, sign,
};
use leadflow_core::runtime::secret::Secret;
use leadflow_core::stage::exactly_once::AssignedPartitions;
use leadflow_core::store::documents::{DeliveryDoc, DeliveryState, DeliveryTarget};
use mongodb::bson::doc;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use attempt::{AfterAttempt, AttemptResult, EndpointHealth, Policies, after_attempt, epoch_ms};

use crate::config::{EmailConfig, WebhooksConfig};
use crate::metrics::AutomatorMetrics;
use crate::store::AutomatorStore;

/// A parked delivery's `nextAttemptAtMs`: never due until a replay sets it to now.
pub const PARKED: i64 = i64::MAX;

/// How often the gauges of disabled endpoints and pending deliveries are counted.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

pub struct Dispatcher {
    pub store: AutomatorStore,
    pub config: WebhooksConfig,
    pub notify_sales_url: Secret,
    pub email: EmailConfig,
    pub assigned: AssignedPartitions,
    pub metrics: AutomatorMetrics,
    pub queued: Arc<Notify>,
}

/// What every attempt needs, shared by the endpoint queues.
struct AttemptContext {
    store: AutomatorStore,
    config: WebhooksConfig,
    schedule: RetrySchedule,
    notify_sales_url: Secret,
    email: EmailConfig,
    metrics: AutomatorMetrics,
    in_flight: Mutex<HashSet<String>>,
}

impl Dispatcher {
    pub async fn run(self, shutdown: CancellationToken) {
        let context = Arc::new(AttemptContext {
            store: self.store.clone(),
            schedule: self.config.schedule(),
            config: self.config.clone(),
            notify_sales_url: self.notify_sales_url.clone(),
            email: self.email.clone(),
            metrics: self.metrics.clone(),
            in_flight: Mutex::new(HashSet::new()),
        });
        let mut queues: HashMap<String, mpsc::Sender<DeliveryDoc>> = HashMap::new();
        let mut workers = JoinSet::new();
        let mut gauges_at = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = self.queued.notified() => {}
                _ = shutdown.cancelled() => break,
            }
            let partitions: Vec<i32> = self.assigned.lock().expect("not poisoned").iter().copied().collect();
            if gauges_at.elapsed() >= GAUGE_INTERVAL {
                gauges_at = Instant::now();
                self.count_gauges(&partitions).await;
            }
            if partitions.is_empty() {
                continue;
            }
            let started = Instant::now();
            if let Err(e) = self.look(&partitions, &context, &mut queues, &mut workers, &shutdown).await {
                tracing::warn!(error = %e, "cannot read the due deliveries; trying again");
            }
            self.metrics.dispatch_duration.observe(started.elapsed().as_secs_f64());
        }
        // Attempts in flight finish (each is bounded by the request timeout); queued ones wait
        // in MongoDB for the next owner.
        drop(queues);
        while workers.join_next().await.is_some() {}
    }

    async fn look(
        &self,
        partitions: &[i32],
        context: &Arc<AttemptContext>,
        queues: &mut HashMap<String, mpsc::Sender<DeliveryDoc>>,
        workers: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) -> mongodb::error::Result<()> {
        queues.retain(|_, queue| !queue.is_closed());
        let busy: Vec<&String> = queues.iter().filter(|(_, q)| q.capacity() == 0).map(|(id, _)| id).collect();
        let in_flight: Vec<String> =
            context.in_flight.lock().expect("not poisoned").iter().cloned().collect();
        let now_ms = epoch_ms(OffsetDateTime::now_utc());
        let filter = doc! {
            "state": "pending",
            "partition": { "$in": partitions },
            "nextAttemptAtMs": { "$lte": now_ms },
            "_id": { "$nin": in_flight },
            "endpointId": { "$nin": busy },
        };
        let due: Vec<DeliveryDoc> = context
            .store
            .deliveries
            .find(filter)
            .sort(doc! { "nextAttemptAtMs": 1 })
            .limit(self.config.max_due_per_poll as i64)
            .await?
            .try_collect()
            .await?;
        for delivery in due {
            let queue = queues.entry(delivery.endpoint_id.clone()).or_insert_with(|| {
                let concurrency = self.config.per_endpoint_concurrency.max(1);
                let (tx, rx) = mpsc::channel(concurrency);
                workers.spawn(endpoint_queue(rx, context.clone(), concurrency, shutdown.clone()));
                tx
            });
            let id = delivery.id.clone();
            if queue.try_send(delivery).is_ok() {
                context.in_flight.lock().expect("not poisoned").insert(id);
            }
        }
        Ok(())
    }

    async fn count_gauges(&self, partitions: &[i32]) {
        let deliveries = &self.store.deliveries;
        match self.store.endpoints.count_documents(doc! { "enabled": false }).await {
            Ok(n) => self.metrics.endpoints_disabled.set(n as i64),
            Err(e) => tracing::debug!(error = %e, "cannot count the disabled endpoints"),
        }
        match deliveries
            .count_documents(doc! { "state": "pending", "partition": { "$in": partitions } })
            .await
        {
            Ok(n) => self.metrics.deliveries_pending.set(n as i64),
            Err(e) => tracing::debug!(error = %e, "cannot count the pending deliveries"),
        }
    }
}

/// One endpoint's queue: up to `concurrency` attempts at a time, however slow they are, and
/// nothing shared with another endpoint's.
async fn endpoint_queue(
    mut queue: mpsc::Receiver<DeliveryDoc>,
    context: Arc<AttemptContext>,
    concurrency: usize,
    shutdown: CancellationToken,
) {
    let mut running = JoinSet::new();
    loop {
        if running.len() >= concurrency {
            running.join_next().await;
            continue;
        }
        tokio::select! {
            delivery = queue.recv(), if !shutdown.is_cancelled() => match delivery {
                Some(delivery) => {
                    let context = context.clone();
                    running.spawn(async move {
                        let id = delivery.id.clone();
                        if let Err(e) = context.attempt(delivery).await {
                            tracing::warn!(delivery = %id, error = %e, "cannot record a delivery attempt; it is tried again");
                        }
                        context.in_flight.lock().expect("not poisoned").remove(&id);
                    });
                }
                None => break,
            },
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = shutdown.cancelled() => break,
        }
    }
    while running.join_next().await.is_some() {}
}

impl AttemptContext {
    async fn attempt(&self, delivery: DeliveryDoc) -> mongodb::error::Result<()> {
        let target = match delivery.target {
            DeliveryTarget::Webhook => "webhook",
            DeliveryTarget::NotifySales => "notify_sales",
            DeliveryTarget::Email => "email",
        };
        let (url, headers, failing_since_ms) = match delivery.target {
            DeliveryTarget::Webhook => {
                let Some(endpoint) =
                    self.store.endpoints.find_one(doc! { "_id": &delivery.endpoint_id }).await?
                else {
                    return self.set_state(&delivery, DeliveryState::Dropped).await;
                };
                if !endpoint.enabled {
                    return self.park(&delivery).await;
                }
                let secret = match WebhookSecret::parse(&endpoint.secret) {
                    Ok(secret) => secret,
                    Err(e) => {
                        tracing::error!(endpoint = %endpoint.id, error = %e, "a subscription's stored secret is unusable; its deliveries wait");
                        return self.park(&delivery).await;
                    }
                };
                let timestamp = OffsetDateTime::now_utc().unix_timestamp();
                let signature = sign(&secret, &delivery.id, timestamp, delivery.body.as_bytes());
                let headers = vec![
                    (HEADER_ID, delivery.id.clone()),
                    (HEADER_TIMESTAMP, timestamp.to_string()),
                    (HEADER_SIGNATURE, signature),
                ];
                (endpoint.url, headers, Some(endpoint.failing_since_ms))
            }
            DeliveryTarget::NotifySales if self.notify_sales_url.is_empty() => {
                return self.park(&delivery).await;
            }
            DeliveryTarget::NotifySales => (self.notify_sales_url.expose().to_owned(), Vec::new(), None),
            DeliveryTarget::Email if self.email.smtp_url.is_empty() => return self.park(&delivery).await,
            DeliveryTarget::Email => (String::new(), Vec::new(), None),
        };

        let started = OffsetDateTime::now_utc();
        let policy = self.config.url_policy();
        let timeout = self.config.request_timeout;
        let (result, latency_ms) = match delivery.target {
            DeliveryTarget::Email => {
                let smtp = self.email.smtp_url.expose();
                email::send(smtp, &self.email.from, &delivery.id, &delivery.body, timeout).await
            }
            _ => sender::post(&url, &headers, &delivery.body, policy, timeout).await,
        };
        let result = match result {
            // Configuration URLs hold credentials (Slack's path, SMTP's password).
            AttemptResult::Unreachable(text) => {
                AttemptResult::Unreachable(self.email.smtp_url.scrub(&self.notify_sales_url.scrub(&text)))
            }
            other => other,
        };
        self.metrics.deliveries.with_label_values(&[target, result.outcome_label()]).inc();
        self.metrics.delivery_duration.with_label_values(&[target]).observe(latency_ms as f64 / 1000.0);
        let disable = DisablePolicy { after: self.config.disable_after };
        let mut rng = fastrand::Rng::new();
        let after = after_attempt(
            &delivery,
            &result,
            latency_ms,
            started,
            failing_since_ms.flatten(),
            Policies { schedule: &self.schedule, disable },
            &mut rng,
        );
        let saved = self
            .store
            .deliveries
            .replace_one(
                doc! { "_id": &delivery.id, "attemptCount": delivery.attempt_count as i64 },
                &after.delivery,
            )
            .await?;
        if saved.matched_count == 0 {
            tracing::debug!(delivery = %delivery.id, "another sender recorded this attempt first");
            return Ok(());
        }
        if after.given_up {
            self.metrics.deliveries.with_label_values(&[target, "given_up"]).inc();
            tracing::warn!(delivery = %delivery.id, endpoint = %delivery.endpoint_id, "every attempt of the schedule failed; the delivery is given up (replayable)");
        }
        if delivery.target == DeliveryTarget::Webhook {
            self.record_health(&delivery.endpoint_id, failing_since_ms.flatten(), after.endpoint).await?;
        }
        Ok(())
    }

    async fn record_health(
        &self,
        endpoint_id: &str,
        was_failing_since: Option<i64>,
        health: EndpointHealth,
    ) -> mongodb::error::Result<()> {
        let endpoints = &self.store.endpoints;
        match health {
            EndpointHealth::Healthy if was_failing_since.is_some() => {
                endpoints
                    .update_one(doc! { "_id": endpoint_id }, doc! { "$set": { "failingSinceMs": null } })
                    .await?;
            }
            EndpointHealth::Healthy => {}
            EndpointHealth::Failing { since_ms } if was_failing_since.is_none() => {
                endpoints
                    .update_one(doc! { "_id": endpoint_id }, doc! { "$set": { "failingSinceMs": since_ms } })
                    .await?;
            }
            EndpointHealth::Failing { .. } => {}
            EndpointHealth::Disable { reason, since_ms } => {
                let now_ms = epoch_ms(OffsetDateTime::now_utc());
                let disabled = endpoints
                    .update_one(
                        doc! { "_id": endpoint_id, "enabled": true },
                        doc! { "$set": { "enabled": false, "disabledReason": reason, "disabledAtMs": now_ms, "failingSinceMs": since_ms } },
                    )
                    .await?;
                if disabled.modified_count > 0 {
                    self.metrics.endpoints_disabled_total.with_label_values(&[reason]).inc();
                    tracing::warn!(endpoint = %endpoint_id, reason, "webhook subscription disabled; its undelivered messages wait for a replay");
                }
                self.store
                    .deliveries
                    .update_many(
                        doc! { "endpointId": endpoint_id, "state": "pending" },
                        doc! { "$set": { "nextAttemptAtMs": PARKED } },
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn park(&self, delivery: &DeliveryDoc) -> mongodb::error::Result<()> {
        self.store
            .deliveries
            .update_one(
                doc! { "_id": &delivery.id, "attemptCount": delivery.attempt_count as i64 },
                doc! { "$set": { "nextAttemptAtMs": PARKED } },
            )
            .await
            .map(drop)
    }

    async fn set_state(&self, delivery: &DeliveryDoc, state: DeliveryState) -> mongodb::error::Result<()> {
        let state = mongodb::bson::to_bson(&state).expect("a state serialises");
        self.store
            .deliveries
            .update_one(doc! { "_id": &delivery.id }, doc! { "$set": { "state": state } })
            .await
            .map(drop)
    }
}
