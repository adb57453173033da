//! enricher: reads submitted names from `leads.names.v1`, asks a nationalize.io-compatible API
//! for each name's most likely country, and writes a LeadEnriched per lead to
//! `leads.enriched.v1`, exactly once (one Kafka transaction per poll batch, the consumed
//! offsets inside it). Any instance can take any partition; add instances to scale out.

pub mod cache;
pub mod config;
pub mod countries;
pub mod metrics;
pub mod nationalize;
pub mod predictor;
pub mod processor;
pub mod quota;
pub mod rate_limit;
pub mod rules;

use leadflow_core::contract::topics;
use leadflow_core::runtime::service::ServiceContext;
use leadflow_core::stage::exactly_once::{ExactlyOnceStage, StageError};
use leadflow_core::stage::metrics::StageMetrics;
use leadflow_core::stage::startup::{self, StartupError};
use leadflow_core::stage::typed::TypedStage;

pub use config::{DEFAULTS, EnricherConfig as Config};

use crate::cache::PredictionCache;
use crate::metrics::EnricherMetrics;
use crate::predictor::Predictor;
use crate::processor::EnrichProcessor;

#[derive(Debug, thiserror::Error)]
pub enum EnricherError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot set up the MongoDB client: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("cannot set up the API client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Stage(#[from] StageError),
}

pub async fn run(config: Config, context: ServiceContext) -> Result<(), EnricherError> {
    config.validate().map_err(EnricherError::Config)?;
    let service =
        startup::start_kafka_service(&context, &config.kafka, &config.schema_registry, &config.telemetry)
            .await?;

    let metrics = EnricherMetrics::register(&context.metrics)?;
    let stage_metrics = StageMetrics::register(&context.metrics)?;
    let database = leadflow_core::store::mongo::client(&config.mongo, "leadflow-enricher")
        .await?
        .database(&config.mongo.database);
    let cache = PredictionCache::new(&database, &config.cache);
    if let Err(e) = cache.ensure_ttl_index().await {
        tracing::warn!(error = %e, "cannot create the cache's TTL index; stored predictions still expire on read");
    }
    let predictor = Predictor::new(&config.nationalize, cache, metrics.clone())?;
    if let Some(quota) = &predictor.quota
        && let Err(e) = quota.ensure_ttl_index().await
    {
        tracing::warn!(error = %e, "cannot create the budgets' TTL index; old quota days stay until removed");
    }
    let processor = EnrichProcessor {
        predictor,
        verified_threshold: config.enrichment.verified_threshold,
        provider: config.enrichment.provider.clone(),
        metrics,
    };
    let processor = TypedStage::new(processor, service.codec, stage_metrics.clone());
    let stage = ExactlyOnceStage {
        kafka: &config.kafka,
        config: &config.consumer,
        input_topics: &[topics::NAMES],
        processor: &processor,
        metrics: stage_metrics,
        shutdown: context.shutdown.clone(),
        grace_period: config.shutdown.grace_period,
        assigned: Default::default(),
        membership: service.membership,
    };
    let result = stage.run().await;
    // The ops endpoints stay up until the stage has finished draining.
    context.shutdown.cancel();
    let _ = service.ops.await;
    Ok(result?)
}
