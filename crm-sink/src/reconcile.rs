//! Reconcile: the streaming heir of the original system's 5-minute sync. It finds Verified
//! leads whose CRM copy lags their read-model version and asks for their re-delivery by
//! writing a CrmResyncRequested to `crm.resync.v1`. The sink consumes that topic with the lead
//! topics, so a re-delivery takes the same exactly-once path as every other delivery (one
//! receipt per delivered version, idempotency keys); reconcile itself never calls the CRM.
//! Asking twice is harmless: a lead found in sync when its request is read is skipped.
//!
//! Leads of a project with no CRM connection (see [`crate::connections`]) are never asked
//! for: nothing could deliver them, so asking would only fill `crm.resync.v1` every interval.
//!
//! Two ways to run it:
//! - periodically inside the service (`crm.reconcile_interval`), for the leads on the
//!   partitions the instance holds, skipping versions the CRM refused (retrying those every few
//!   minutes would only refill the dead-letter topic);
//! - once, `crm-sink reconcile`, for every lead, refused ones included: an operator runs it
//!   after fixing whatever made the CRM refuse them. It waits until each lead is delivered or
//!   refused again, and says so.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use leadflow_core::contract::codec::SchemaCodec;
use leadflow_core::contract::project::split_lead_key;
use leadflow_core::contract::records::{CrmResyncRequested, DeliveryStatus, TopicRecord};
use leadflow_core::runtime::service::ServiceContext;
use leadflow_core::stage::exactly_once::AssignedPartitions;
use leadflow_core::stage::startup::register_schemas;
use rdkafka::producer::{FutureProducer, FutureRecord};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::CrmSinkConfig;
use crate::metrics::SinkMetrics;
use crate::store::LeadStore;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Codec(#[from] leadflow_core::contract::codec::CodecError),
    #[error(transparent)]
    Startup(#[from] leadflow_core::stage::startup::StartupError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{unsettled} of {requested} leads were neither delivered nor refused within {waited:?}")]
    Unsettled { requested: usize, unsettled: usize, waited: Duration },
}

/// What `crm-sink reconcile` was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// How long to wait for the requested re-deliveries; zero does not wait.
    pub wait: Duration,
}

/// Writes a resync request for each lead out of sync of the `projects` delivered to (`None`:
/// every project); returns the leads asked for, as (lead key, version).
pub async fn request_resync(
    store: &LeadStore,
    codec: &SchemaCodec,
    producer: &FutureProducer,
    partitions: Option<&[i32]>,
    include_refused: bool,
    projects: Option<&BTreeSet<String>>,
) -> Result<Vec<(String, u64)>, ReconcileError> {
    let out_of_sync = store.out_of_sync(partitions, include_refused).await?;
    let deliverable =
        out_of_sync.into_iter().filter(|lead| projects.is_none_or(|p| p.contains(&lead.project_id)));
    let now = OffsetDateTime::now_utc();
    let mut leads = Vec::new();
    let mut values = Vec::new();
    for lead in deliverable {
        let request = CrmResyncRequested {
            project_id: lead.project_id.clone(),
            lead_id: split_lead_key(&lead.key).1.to_owned(),
            version: lead.version,
            requested_at: now,
        };
        values.push(codec.encode(&request).await?);
        leads.push((lead.key, lead.version));
    }
    let values: Vec<(&String, Vec<u8>)> = leads.iter().map(|(key, _)| key).zip(values).collect();
    let sends = values.iter().map(|(key, value)| {
        producer.send(
            FutureRecord::to(CrmResyncRequested::TOPIC).key(key.as_str()).payload(value),
            Duration::from_secs(30),
        )
    });
    for sent in futures::future::join_all(sends).await {
        sent.map_err(|(e, _)| e)?;
    }
    Ok(leads)
}

/// The service's periodic reconcile and its out-of-sync gauge.
pub struct PeriodicReconcile {
    pub store: LeadStore,
    pub codec: Arc<SchemaCodec>,
    pub producer: FutureProducer,
    pub assigned: AssignedPartitions,
    /// Zero: never request re-deliveries, only count.
    pub interval: Duration,
    pub gauge_refresh: Duration,
    pub metrics: SinkMetrics,
    /// The projects delivered to; `None`: every project.
    pub projects: Option<BTreeSet<String>>,
}

impl PeriodicReconcile {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut gauge = tokio::time::interval(self.gauge_refresh.max(Duration::from_secs(1)));
        gauge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reconcile = tokio::time::interval_at(
            tokio::time::Instant::now() + self.interval,
            self.interval.max(Duration::from_secs(1)),
        );
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = gauge.tick() => match self.store.count_out_of_sync().await {
                    Ok(n) => self.metrics.leads_out_of_sync.set(n as i64),
                    Err(e) => tracing::warn!(error = %e, "cannot count leads out of sync"),
                },
                _ = reconcile.tick(), if !self.interval.is_zero() => self.once().await,
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn once(&self) {
        let partitions: Vec<i32> = self.assigned.lock().expect("not poisoned").iter().copied().collect();
        if partitions.is_empty() {
            return;
        }
        let projects = self.projects.as_ref();
        match request_resync(&self.store, &self.codec, &self.producer, Some(&partitions), false, projects)
            .await
        {
            Ok(leads) if leads.is_empty() => tracing::debug!("reconcile: every lead is in sync"),
            Ok(leads) => {
                self.metrics.resync_requests.inc_by(leads.len() as u64);
                tracing::warn!(
                    leads = leads.len(),
                    "reconcile: requested re-delivery of leads the CRM lacks"
                );
            }
            Err(e) => tracing::warn!(error = %e, "reconcile failed; retried at the next interval"),
        }
    }
}

/// `crm-sink reconcile`: one pass over every lead, then wait for the outcome.
pub async fn run_once(
    config: CrmSinkConfig,
    context: ServiceContext,
    options: ReconcileOptions,
) -> Result<(), ReconcileError> {
    let codec = SchemaCodec::new(&config.schema_registry)?;
    register_schemas(&codec, &context.shutdown).await?;
    let store = LeadStore::new(
        leadflow_core::store::mongo::client(&config.mongo, "leadflow-crm-reconcile").await?,
        &config.mongo.database,
    );
    let producer: FutureProducer = leadflow_core::stage::kafka::producer_config(&config.kafka).create()?;
    let projects = config.crm.delivered_projects().map_err(ReconcileError::Config)?;
    let requested_at = OffsetDateTime::now_utc();
    let leads = request_resync(&store, &codec, &producer, None, true, projects.as_ref()).await?;
    if leads.is_empty() {
        println!("reconcile: every Verified lead is in sync; nothing to deliver");
        return Ok(());
    }
    println!("reconcile: requested re-delivery of {} leads out of sync", leads.len());
    if options.wait.is_zero() {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + options.wait;
    let mut last_report = tokio::time::Instant::now();
    loop {
        let (delivered, refused) = settled(&store, &leads, requested_at).await?;
        let unsettled = leads.len() - delivered - refused;
        if unsettled == 0 {
            println!("reconcile: {delivered} delivered, {refused} refused by the CRM (see leads.dlq.v1)");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            println!(
                "reconcile: {delivered} delivered, {refused} refused, {unsettled} still waiting; is a crm-sink running?"
            );
            return Err(ReconcileError::Unsettled {
                requested: leads.len(),
                unsettled,
                waited: options.wait,
            });
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!("reconcile: {delivered} delivered, {refused} refused, {unsettled} waiting");
            last_report = tokio::time::Instant::now();
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = context.shutdown.cancelled() => return Ok(()),
        }
    }
}

/// How many of the requested `(lead, version)`s the sink has delivered, or tried again since
/// `requested_at` and seen refused.
async fn settled(
    store: &LeadStore,
    leads: &[(String, u64)],
    requested_at: OffsetDateTime,
) -> Result<(usize, usize), ReconcileError> {
    let ids: Vec<String> = leads.iter().map(|(id, _)| id.clone()).collect();
    let stored = store.load(&ids).await?;
    let (mut delivered, mut refused) = (0, 0);
    for (lead_id, version) in leads {
        let Some(lead) = stored.get(lead_id) else { continue };
        if lead.view.synced_version >= *version {
            delivered += 1;
        } else if let Some(attempt) = &lead.view.last_delivery
            && attempt.version >= *version
            && attempt.status == DeliveryStatus::DeadLettered
            && attempt.at >= requested_at
        {
            refused += 1;
        }
    }
    Ok((delivered, refused))
}
