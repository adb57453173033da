//! automator: acts on leads when they change. It reads `leads.scores.v1`, `leads.enriched.v1`
//! and `leads.reviews.v1` (consumer group `automator`), asks each project's automation rules
//! (`automations.rules.v1`) whether a record's change fires them, and records each execution on
//! `automations.executions.v1`, exactly once per (project, rule, lead, UTC day): the execution
//! and its queued deliveries commit in one MongoDB transaction under the execution key before
//! the records and offsets commit in one Kafka transaction, and a redelivered trigger re-emits
//! its stored execution. The dispatcher then sends the queued deliveries (signed webhooks, sales
//! notifications and emails), with a queue per endpoint and retries over hours.

pub mod config;
pub mod dispatch;
pub mod facts;
pub mod metrics;
pub mod processor;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use leadflow_core::contract::topics;
use leadflow_core::runtime::service::ServiceContext;
use leadflow_core::stage::automation_feed::{self, AutomationBook, AutomationUpdate};
use leadflow_core::stage::exactly_once::{AssignedPartitions, ExactlyOnceStage, StageError};
use leadflow_core::stage::metrics::StageMetrics;
use leadflow_core::stage::startup::{self, StartupError};
use leadflow_core::stage::typed::TypedStage;
use tokio::sync::{Notify, oneshot, watch};

pub use config::{AutomatorConfig as Config, DEFAULTS};

use crate::dispatch::Dispatcher;
use crate::metrics::AutomatorMetrics;
use crate::processor::AutomatorProcessor;
use crate::store::AutomatorStore;

#[derive(Debug, thiserror::Error)]
pub enum AutomatorError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("invalid configuration: {0}")]
    Config(String),
}

pub async fn run(config: Config, context: ServiceContext) -> Result<(), AutomatorError> {
    if !(config.webhooks.retry_scale.is_finite() && config.webhooks.retry_scale > 0.0) {
        return Err(AutomatorError::Config("webhooks.retry_scale must be a number above 0".into()));
    }
    let service =
        startup::start_kafka_service(&context, &config.kafka, &config.schema_registry, &config.telemetry)
            .await?;
    let codec = service.codec.clone();
    let metrics = AutomatorMetrics::register(&context.metrics)?;
    let stage_metrics = StageMetrics::register(&context.metrics)?;
    let store = AutomatorStore::new(
        leadflow_core::store::mongo::client(&config.mongo, "leadflow-automator").await?,
        &config.mongo.database,
    );
    store.ensure_indexes().await?;

    let (rules_tx, rules) = watch::channel(AutomationBook::default());
    let (caught_up_tx, caught_up) = oneshot::channel();
    let updates = metrics.rules_updates.clone();
    let feed = tokio::spawn(automation_feed::follow(
        config.kafka.clone(),
        codec.clone(),
        rules_tx,
        caught_up_tx,
        move |update| {
            let outcome = match update {
                AutomationUpdate::Applied(_) => "applied",
                AutomationUpdate::Deleted { .. } => "deleted",
                AutomationUpdate::Refused(_) => "refused",
            };
            updates.with_label_values(&[outcome]).inc();
        },
        context.shutdown.clone(),
    ));
    // Acting with rules not yet read would skip executions that a replay would make.
    tokio::select! {
        _ = caught_up => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("the automation rules topic was not read to its end within 30 s; going on with the rules read so far");
        }
        _ = context.shutdown.cancelled() => {}
    }
    tracing::info!(rules = rules.borrow().len(), "automation rules loaded");

    let assigned = AssignedPartitions::default();
    let queued = Arc::new(Notify::new());
    let dispatcher = Dispatcher {
        store: store.clone(),
        config: config.webhooks.clone(),
        notify_sales_url: config.notify_sales.url.clone(),
        email: config.email.clone(),
        assigned: assigned.clone(),
        metrics: metrics.clone(),
        queued: queued.clone(),
    };
    let dispatching = tokio::spawn(dispatcher.run(context.shutdown.clone()));

    let processor = TypedStage::new(
        AutomatorProcessor {
            store,
            rules,
            metrics,
            notify_sales_configured: !config.notify_sales.url.is_empty(),
            email_configured: !config.email.smtp_url.is_empty(),
            queued,
        },
        codec,
        stage_metrics.clone(),
    );
    let stage = ExactlyOnceStage {
        kafka: &config.kafka,
        config: &config.consumer,
        input_topics: &[topics::SCORES, topics::ENRICHED, topics::REVIEWS],
        processor: &processor,
        metrics: stage_metrics,
        shutdown: context.shutdown.clone(),
        grace_period: config.shutdown.grace_period,
        assigned,
        membership: service.membership,
    };
    let result = stage.run().await;
    context.shutdown.cancel();
    let _ = dispatching.await;
    let _ = feed.await;
    let _ = service.ops.await;
    Ok(result?)
}
