//! crm-sink: reads what the pipeline knows about each lead (`leads.enriched.v1`,
//! `leads.scores.v1`, `leads.reviews.v1`, co-partitioned by lead id) into the lead read model in
//! MongoDB, and delivers Verified leads to the CRM, again whenever something the CRM shows
//! changes. Kafka transactions make the Kafka side exactly-once (a CrmDelivery receipt per
//! delivered version, committed with the consumed offsets); the CRM side is exactly-once in
//! effect, through upserts keyed `leadId:version` that the CRM applies once however often they
//! are sent. See [`processor`] for the crash cases.
//!
//! Leads are known by their lead key (project and leadId): the read model holds one document per
//! key, and each project's leads go to that project's own CRM ([`connections`]).

pub mod cli;
pub mod config;
pub mod connections;
pub mod contact;
pub mod destination;
pub mod http_destination;
pub mod hubspot_wire;
pub mod metrics;
pub mod processor;
pub mod rate_limit;
pub use leadflow_core::model::read_model;
pub mod reconcile;
pub mod setup;
pub mod store;

use leadflow_core::contract::topics;
use leadflow_core::runtime::ops_server::ReadinessChecks;
use leadflow_core::runtime::service::ServiceContext;
use leadflow_core::stage::exactly_once::{AssignedPartitions, ExactlyOnceStage, StageError};
use leadflow_core::stage::metrics::StageMetrics;
use leadflow_core::stage::startup::{self, StartupError};
use leadflow_core::stage::typed::TypedStage;

pub use config::{CrmSinkConfig as Config, DEFAULTS};

use crate::connections::Connections;
use crate::http_destination::DeliveryError;
use crate::metrics::SinkMetrics;
use crate::processor::SinkProcessor;
use crate::reconcile::PeriodicReconcile;
use crate::store::LeadStore;

/// The topics the sink reads, all keyed by lead id with one partition count.
pub const INPUT_TOPICS: [&str; 4] = [topics::ENRICHED, topics::SCORES, topics::REVIEWS, topics::CRM_RESYNC];

#[derive(Debug, thiserror::Error)]
pub enum CrmSinkError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Destination(#[from] DeliveryError),
    #[error(transparent)]
    Stage(#[from] StageError),
}

pub async fn run(config: Config, context: ServiceContext) -> Result<(), CrmSinkError> {
    let connections = Connections::from_config(&config.crm, &context.metrics)?;
    // A CRM that refuses the configuration (credentials, scopes, properties) makes the sink
    // unready: no delivery can succeed until someone fixes it, and nothing is dead-lettered.
    let checked = connections.clone();
    let crm_check = move |checks: ReadinessChecks| {
        checks.add("crm", move || {
            let problems = checked.config_problems();
            async move { if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) } }
        })
    };
    let service = startup::start_kafka_service_with(
        &context,
        &config.kafka,
        &config.schema_registry,
        &config.telemetry,
        crm_check,
    )
    .await?;
    let codec = service.codec.clone();
    let metrics = SinkMetrics::register(&context.metrics)?;
    let stage_metrics = StageMetrics::register(&context.metrics)?;
    let mongo = leadflow_core::store::mongo::client(&config.mongo, "leadflow-crm-sink").await?;
    connections.share_budgets(&mongo.database(&config.mongo.database)).await?;
    let store = LeadStore::new(mongo, &config.mongo.database);
    store.ensure_indexes().await?;

    let assigned = AssignedPartitions::default();
    let reconcile = PeriodicReconcile {
        store: store.clone(),
        codec: codec.clone(),
        producer: leadflow_core::stage::kafka::producer_config(&config.kafka).create()?,
        connections: connections.clone(),
        assigned: assigned.clone(),
        interval: config.crm.reconcile_interval,
        sweep_pages: config.crm.sweep_pages,
        gauge_refresh: config.crm.out_of_sync_refresh,
        metrics: metrics.clone(),
        projects: connections.projects(),
    };
    let reconcile = tokio::spawn(reconcile.run(context.shutdown.clone()));

    tracing::info!(
        destination = config.crm.destination.as_str(),
        projects = ?connections.projects(),
        "delivering to the CRM"
    );
    let processor = SinkProcessor::new(store, connections, metrics).following(assigned.clone());
    let processor = TypedStage::new(processor, codec, stage_metrics.clone());
    let stage = ExactlyOnceStage {
        kafka: &config.kafka,
        config: &config.consumer,
        input_topics: &INPUT_TOPICS,
        processor: &processor,
        metrics: stage_metrics,
        shutdown: context.shutdown.clone(),
        grace_period: config.shutdown.grace_period,
        assigned,
        membership: service.membership,
    };
    let result = stage.run().await;
    context.shutdown.cancel();
    let _ = reconcile.await;
    let _ = service.ops.await;
    Ok(result?)
}
