//! scorer: reads behavioural events from `leads.events.v1`, applies each `eventId` at most once
//! to its lead's score (state in MongoDB, so any instance can take any partition), and writes a
//! LeadScored per event to `leads.scores.v1`, exactly once: the MongoDB writes of a batch commit
//! in one MongoDB transaction before its records and offsets commit in one Kafka transaction,
//! and a redelivered event re-emits its stored record instead of being scored again.

pub mod config;
pub mod decay_pass;
pub mod metrics;
pub mod processor;
pub mod store;

use std::time::Duration;

use leadflow_core::contract::project::DEFAULT_PROJECT;
use leadflow_core::contract::topics;
use leadflow_core::runtime::service::ServiceContext;
use leadflow_core::stage::exactly_once::{AssignedPartitions, ExactlyOnceStage, StageError};
use leadflow_core::stage::metrics::StageMetrics;
use leadflow_core::stage::rules_feed::{self, RuleBook, RulesUpdate};
use leadflow_core::stage::startup::{self, StartupError};
use leadflow_core::stage::typed::TypedStage;
use tokio::sync::{oneshot, watch};

pub use config::{DEFAULTS, ScorerConfig as Config};

use crate::decay_pass::DecayPass;
use crate::metrics::ScorerMetrics;
use crate::processor::ScoreProcessor;
use crate::store::LeadStore;

#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Stage(#[from] StageError),
}

pub async fn run(config: Config, context: ServiceContext) -> Result<(), ScorerError> {
    let service =
        startup::start_kafka_service(&context, &config.kafka, &config.schema_registry, &config.telemetry)
            .await?;
    let codec = service.codec.clone();

    let metrics = ScorerMetrics::register(&context.metrics)?;
    let stage_metrics = StageMetrics::register(&context.metrics)?;
    let store = LeadStore::new(
        leadflow_core::store::mongo::client(&config.mongo, "leadflow-scorer").await?,
        &config.mongo.database,
    );
    store.ensure_indexes().await?;

    let (rules_tx, rules) = watch::channel(RuleBook::default());
    let (caught_up_tx, caught_up) = oneshot::channel();
    let updates = metrics.rules_updates.clone();
    let feed = tokio::spawn(rules_feed::follow(
        config.kafka.clone(),
        codec.clone(),
        rules_tx,
        caught_up_tx,
        move |update| {
            let outcome = match update {
                RulesUpdate::Applied(_) => "applied",
                RulesUpdate::Refused(_) => "refused",
            };
            updates.with_label_values(&[outcome]).inc();
        },
        context.shutdown.clone(),
    ));
    // Scoring with stale rules would write records that a replay would not reproduce.
    tokio::select! {
        _ = caught_up => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("the rules topic was not read to its end within 30 s; scoring with the rules read so far");
        }
        _ = context.shutdown.cancelled() => {}
    }
    let default_version = rules.borrow().for_project(DEFAULT_PROJECT).rules.version.clone();
    tracing::info!(
        version = %default_version,
        projects_with_rules = rules.borrow().len(),
        "scoring rules loaded"
    );

    let assigned = AssignedPartitions::default();
    let decay = (!config.scoring.decay_pass_interval.is_zero()).then(|| {
        let pass = DecayPass {
            store: store.clone(),
            codec: codec.clone(),
            producer: leadflow_core::stage::kafka::producer_config(&config.kafka).create()?,
            rules: rules.clone(),
            assigned: assigned.clone(),
            interval: config.scoring.decay_pass_interval,
            metrics: metrics.clone(),
        };
        Ok::<_, rdkafka::error::KafkaError>(tokio::spawn(pass.run(context.shutdown.clone())))
    });
    let decay = decay.transpose()?;

    let processor = TypedStage::new(
        ScoreProcessor {
            store,
            rules,
            metrics,
            tail_events: config.scoring.tail_events,
            max_moved_events: processor::MAX_MOVED_EVENTS,
        },
        codec,
        stage_metrics.clone(),
    );
    let stage = ExactlyOnceStage {
        kafka: &config.kafka,
        config: &config.consumer,
        input_topics: &[topics::EVENTS],
        processor: &processor,
        metrics: stage_metrics,
        shutdown: context.shutdown.clone(),
        grace_period: config.shutdown.grace_period,
        assigned,
        membership: service.membership,
    };
    let result = stage.run().await;
    context.shutdown.cancel();
    if let Some(decay) = decay {
        let _ = decay.await;
    }
    let _ = feed.await;
    let _ = service.ops.await;
    Ok(result?)
}
