//! Reconcile: the streaming heir of the original system's 5-minute sync, and the repair of what
//! a last-writer-wins CRM can lose. It never writes to the CRM itself: it asks for re-delivery by
//! writing a CrmResyncRequested to `crm.resync.v1`, which the sink consumes with the lead
//! topics, so that a re-delivery takes the same exactly-once path as every other delivery (one
//! receipt per delivered version). Asking twice is harmless: the sink delivers the lead's
//! current version, once per batch.
//!
//! What it finds:
//! - leads whose read-model version the CRM never acknowledged (`outOfSync`), from the read
//!   model alone;
//! - leads whose CRM copy differs from what was delivered, by batch-reading the CRM
//!   ([`contact::compare`]): missing (deleted in the CRM), lagging (rolled back by a late write),
//!   changed (edited in the CRM), each asked for with `crmDiffers`; and ahead (a newer version
//!   than the read model knows: another writer), counted and left alone.
//!
//! Leads of a project with no CRM connection (see [`crate::connections`]) are never asked for.
//! Reads go through the connection's limiter, so reconcile spends the same request budget as
//! deliveries and never more than it.
//!
//! Three ways it runs:
//! - the check, inside the service every [`CHECK_INTERVAL`]: the contacts flagged for a read
//!   back (a write without an answer, or made just after a partition was taken over; see
//!   `crm.http.late_apply_window`) once their window has passed, on the instance's partitions;
//! - the sweep, inside the service every `crm.reconcile_interval`: the out-of-sync leads, then
//!   the next `crm.sweep_pages` pages of 100 leads of the instance's partitions against the CRM,
//!   continuing where the last sweep stopped, so the whole read model is compared in turn
//!   without ever loading it;
//! - once, `crm-sink reconcile`, over every lead, refused ones included: an operator runs it
//!   after fixing whatever made the CRM refuse them, or after edits in the CRM. It reports the
//!   counts, waits until each lead asked for is delivered or refused again, and says so.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use leadflow_core::contract::codec::SchemaCodec;
use leadflow_core::contract::project::split_lead_key;
use leadflow_core::contract::records::{CrmResyncRequested, DeliveryStatus, TopicRecord};
use leadflow_core::runtime::service::ServiceContext;
use leadflow_core::stage::exactly_once::AssignedPartitions;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::startup::register_schemas;
use rdkafka::producer::{FutureProducer, FutureRecord};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::CrmSinkConfig;
use crate::connections::Connections;
use crate::contact::{self, CrmCopy};
use crate::destination::Destination;
use crate::hubspot_wire::MAX_INPUTS;
use crate::metrics::SinkMetrics;
use crate::store::{LeadStore, StoredLead};

/// How often the service reads back the contacts flagged for it.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);

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
    #[error(transparent)]
    Crm(#[from] crate::http_destination::DeliveryError),
    #[error(transparent)]
    Sink(#[from] Box<crate::CrmSinkError>),
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

/// How many leads of a comparison stood how against the CRM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub in_sync: usize,
    pub missing: usize,
    pub lagging: usize,
    pub changed: usize,
    pub conflicting: usize,
}

impl Counts {
    fn add(&mut self, copy: CrmCopy) {
        match copy {
            CrmCopy::InSync => self.in_sync += 1,
            CrmCopy::Missing => self.missing += 1,
            CrmCopy::Lagging => self.lagging += 1,
            CrmCopy::Changed => self.changed += 1,
            CrmCopy::Ahead => self.conflicting += 1,
        }
    }

    fn merge(&mut self, other: Counts) {
        self.in_sync += other.in_sync;
        self.missing += other.missing;
        self.lagging += other.lagging;
        self.changed += other.changed;
        self.conflicting += other.conflicting;
    }

    /// Those asked for again: missing, lagging and changed.
    pub fn repaired(&self) -> usize {
        self.missing + self.lagging + self.changed
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in sync, {} repaired ({} lagging, {} changed in the CRM, {} missing), {} conflicting (newer in the CRM, left as they are)",
            self.in_sync,
            self.repaired(),
            self.lagging,
            self.changed,
            self.missing,
            self.conflicting
        )
    }
}

/// One lead compared with the CRM.
struct Compared {
    lead: StoredLead,
    copy: CrmCopy,
}

/// Reads the CRM's copy of `leads` (any number, any projects) in batches of 100 through each
/// project's own connection and compares each with the read model. Leads of projects without
/// an HTTP connection are left out.
async fn compare_with_crm(
    connections: &Connections,
    leads: Vec<StoredLead>,
    pause: &PauseSignal,
) -> Result<Vec<Compared>, ReconcileError> {
    let mut by_project: BTreeMap<String, Vec<StoredLead>> = BTreeMap::new();
    for lead in leads {
        by_project.entry(lead.view.project_id.clone()).or_default().push(lead);
    }
    let mut compared = Vec::new();
    for (project, leads) in by_project {
        let Some(Destination::Http(http)) = connections.of(&project) else { continue };
        for chunk in leads.chunks(MAX_INPUTS) {
            let ids: Vec<&str> = chunk.iter().map(|l| l.view.lead_id()).collect();
            let held = http.read(&ids, &contact::PROPERTIES, pause).await?;
            for lead in chunk {
                let copy = contact::compare(&lead.view, held.get(lead.view.lead_id()));
                compared.push(Compared { lead: lead.clone(), copy });
            }
        }
    }
    Ok(compared)
}

/// Writes one resync request per lead, `crm_differs` when its CRM copy differs rather than lags
/// its read-model version.
async fn ask_for(
    codec: &SchemaCodec,
    producer: &FutureProducer,
    leads: &[(&StoredLead, bool)],
) -> Result<(), ReconcileError> {
    let now = OffsetDateTime::now_utc();
    let mut values = Vec::with_capacity(leads.len());
    for (lead, crm_differs) in leads {
        let request = CrmResyncRequested {
            project_id: lead.view.project_id.clone(),
            lead_id: split_lead_key(&lead.view.key).1.to_owned(),
            version: lead.view.version.max(1),
            requested_at: now,
            crm_differs: *crm_differs,
        };
        values.push(codec.encode(&request).await?);
    }
    let sends = leads.iter().zip(&values).map(|((lead, _), value)| {
        producer.send(
            FutureRecord::to(CrmResyncRequested::TOPIC).key(lead.view.key.as_str()).payload(value),
            Duration::from_secs(30),
        )
    });
    for sent in futures::future::join_all(sends).await {
        sent.map_err(|(e, _)| e)?;
    }
    Ok(())
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
            crm_differs: false,
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

/// The service's periodic reconcile (the check and the sweep) and its out-of-sync gauge.
pub struct PeriodicReconcile {
    pub store: LeadStore,
    pub codec: Arc<SchemaCodec>,
    pub producer: FutureProducer,
    pub connections: Connections,
    pub assigned: AssignedPartitions,
    /// Zero: never request re-deliveries, only count.
    pub interval: Duration,
    /// Pages of 100 leads compared with the CRM per sweep.
    pub sweep_pages: usize,
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
        let mut check = tokio::time::interval(CHECK_INTERVAL);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Where the sweep goes on from: the last lead key compared.
        let mut swept_to: Option<String> = None;
        loop {
            tokio::select! {
                _ = gauge.tick() => match self.store.count_out_of_sync().await {
                    Ok(n) => self.metrics.leads_out_of_sync.set(n as i64),
                    Err(e) => tracing::warn!(error = %e, "cannot count leads out of sync"),
                },
                _ = check.tick(), if !self.interval.is_zero() => {
                    if let Err(e) = self.check().await {
                        tracing::warn!(error = %e, "the read back of flagged contacts failed; retried in {CHECK_INTERVAL:?}");
                    }
                }
                _ = reconcile.tick(), if !self.interval.is_zero() => {
                    self.request_out_of_sync().await;
                    match self.sweep(swept_to.clone()).await {
                        Ok(next) => swept_to = next,
                        Err(e) => tracing::warn!(error = %e, "the CRM sweep failed; retried at the next interval"),
                    }
                }
                _ = shutdown.cancelled() => return,
            }
        }
    }

    fn partitions(&self) -> Vec<i32> {
        self.assigned.lock().expect("not poisoned").iter().copied().collect()
    }

    async fn request_out_of_sync(&self) {
        let partitions = self.partitions();
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

    /// Reads back the contacts whose late-apply window has passed, asks again for those a late
    /// write rolled back (or that were changed meanwhile), and clears the flag.
    async fn check(&self) -> Result<(), ReconcileError> {
        let partitions = self.partitions();
        if partitions.is_empty() {
            return Ok(());
        }
        let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let due = self.store.due_checks(&partitions, now_ms, 10 * MAX_INPUTS as i64).await?;
        if due.is_empty() {
            return Ok(());
        }
        let compared = compare_with_crm(&self.connections, due, &PauseSignal::default()).await?;
        let counts = self.repair(&compared).await?;
        for c in &compared {
            self.store.clear_check(&c.lead.view.key, c.lead.revision).await?;
        }
        if counts.repaired() + counts.conflicting > 0 {
            tracing::warn!(%counts, "read back of contacts written without an answer or after a takeover");
        }
        Ok(())
    }

    /// Compares the next `sweep_pages` pages of leads after `after` with the CRM; answers where
    /// the next sweep goes on (`None`: from the start).
    async fn sweep(&self, mut after: Option<String>) -> Result<Option<String>, ReconcileError> {
        let partitions = self.partitions();
        if partitions.is_empty() || self.sweep_pages == 0 {
            return Ok(after);
        }
        let mut counts = Counts::default();
        for _ in 0..self.sweep_pages {
            let page =
                self.store.page_for_crm(Some(&partitions), after.as_deref(), MAX_INPUTS as i64).await?;
            let Some(last) = page.last() else { return Ok(None) };
            after = Some(last.view.key.clone());
            let compared = compare_with_crm(&self.connections, page, &PauseSignal::default()).await?;
            counts.merge(self.repair(&compared).await?);
        }
        if counts.repaired() + counts.conflicting > 0 {
            tracing::warn!(%counts, "reconcile: the CRM sweep found contacts that differ");
        }
        Ok(after)
    }

    /// Asks for re-delivery of what `compared` found missing, lagging or changed.
    async fn repair(&self, compared: &[Compared]) -> Result<Counts, ReconcileError> {
        let mut counts = Counts::default();
        let mut asks = Vec::new();
        for c in compared {
            counts.add(c.copy);
            self.metrics.crm_compared.with_label_values(&[c.copy.as_str()]).inc();
            if c.copy.needs_delivery() {
                asks.push((&c.lead, true));
            }
        }
        ask_for(&self.codec, &self.producer, &asks).await?;
        self.metrics.resync_requests.inc_by(asks.len() as u64);
        Ok(counts)
    }
}

/// `crm-sink reconcile`: one pass over every lead the CRM should hold, compared with the CRM,
/// then waits for the re-deliveries it asked for.
pub async fn run_once(
    config: CrmSinkConfig,
    context: ServiceContext,
    options: ReconcileOptions,
) -> Result<(), ReconcileError> {
    let codec = SchemaCodec::new(&config.schema_registry)?;
    register_schemas(&codec, &context.shutdown).await?;
    let mongo = leadflow_core::store::mongo::client(&config.mongo, "leadflow-crm-reconcile").await?;
    let store = LeadStore::new(mongo.clone(), &config.mongo.database);
    let producer: FutureProducer = leadflow_core::stage::kafka::producer_config(&config.kafka).create()?;
    let connections =
        Connections::from_config(&config.crm, &prometheus::Registry::new()).map_err(Box::new)?;
    // Its reads spend the same budget as the running sinks' writes.
    connections.share_budgets(&mongo.database(&config.mongo.database)).await.map_err(Box::new)?;
    let requested_at = OffsetDateTime::now_utc();
    let pause = PauseSignal::default();
    let mut counts = Counts::default();
    let mut asked: Vec<(String, u64)> = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.page_for_crm(None, after.as_deref(), MAX_INPUTS as i64).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.view.key.clone());
        let compared = compare_with_crm(&connections, page, &pause).await?;
        let mut asks = Vec::new();
        for c in &compared {
            counts.add(c.copy);
            if c.copy.needs_delivery() {
                asks.push((&c.lead, true));
                asked.push((c.lead.view.key.clone(), c.lead.view.version));
            }
        }
        ask_for(&codec, &producer, &asks).await?;
        pages += 1;
        if pages % 10 == 0 {
            println!("reconcile: {} leads compared so far: {counts}", pages * MAX_INPUTS);
        }
        if context.shutdown.is_cancelled() {
            return Ok(());
        }
    }
    println!("reconcile: {counts}");
    if asked.is_empty() {
        println!("reconcile: nothing to deliver");
        return Ok(());
    }
    if options.wait.is_zero() {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + options.wait;
    let mut last_report = tokio::time::Instant::now();
    loop {
        let (delivered, refused) = settled(&store, &asked, requested_at).await?;
        let unsettled = asked.len() - delivered - refused;
        if unsettled == 0 {
            println!("reconcile: {delivered} delivered, {refused} refused by the CRM (see leads.dlq.v1)");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            println!(
                "reconcile: {delivered} delivered, {refused} refused, {unsettled} still waiting; is a crm-sink running?"
            );
            return Err(ReconcileError::Unsettled {
                requested: asked.len(),
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

/// How many of the requested `(lead, version)`s the sink has delivered since `requested_at`,
/// or tried again since then and seen refused.
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
        let Some(attempt) = &lead.view.last_delivery else { continue };
        if attempt.version < *version || attempt.at < requested_at {
            continue;
        }
        match attempt.status {
            DeliveryStatus::Delivered => delivered += 1,
            DeliveryStatus::DeadLettered => refused += 1,
        }
    }
    Ok((delivered, refused))
}
