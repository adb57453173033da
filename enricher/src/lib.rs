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
pub mod rate_limit;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use leadflow_core::codec::SchemaCodec;
use leadflow_core::config::MongoConfig;
use leadflow_core::exactly_once::{ExactlyOnceStage, StageError, StageMetrics};
use leadflow_core::service::{self, ServiceContext, StartupError};
use leadflow_core::topics;

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
    let codec = Arc::new(SchemaCodec::new(&config.schema_registry).map_err(StartupError::from)?);
    let readiness = service::kafka_and_registry_readiness(&config.kafka, codec.clone());
    let ops = service::serve_ops(&context, &config.telemetry, readiness)
        .await
        .map_err(|source| StartupError::OpsListener { addr: config.telemetry.ops_listen, source })?;
    service::register_schemas(&codec, &context.shutdown).await?;

    let metrics = EnricherMetrics::register(&context.metrics)?;
    let stage_metrics = StageMetrics::register(&context.metrics)?;
    let database = mongo_client(&config.mongo).await?.database(&config.mongo.database);
    let cache = PredictionCache::new(&database, &config.cache);
    if let Err(e) = cache.ensure_ttl_index().await {
        tracing::warn!(error = %e, "cannot create the cache's TTL index; stored predictions still expire on read");
    }
    let predictor = Predictor::new(&config.nationalize, cache, metrics.clone())?;
    let processor = EnrichProcessor {
        codec,
        predictor,
        verified_threshold: config.enrichment.verified_threshold,
        provider: config.enrichment.provider.clone(),
        metrics,
    };
    let stage = ExactlyOnceStage {
        kafka: &config.kafka,
        config: &config.consumer,
        input_topic: topics::NAMES,
        processor: &processor,
        metrics: stage_metrics,
        shutdown: context.shutdown.clone(),
        grace_period: Duration::from_millis(config.shutdown.grace_period_ms),
    };
    let result = stage.run().await;
    // The ops endpoints stay up until the stage has finished draining.
    context.shutdown.cancel();
    let _ = ops.await;
    Ok(result?)
}

/// A client that gives up on an unreachable server within seconds, so that a MongoDB outage
/// slows the cache path down by seconds, not by the driver's default 30 s.
pub async fn mongo_client(config: &MongoConfig) -> mongodb::error::Result<mongodb::Client> {
    let mut options = mongodb::options::ClientOptions::parse(&config.uri).await?;
    options.server_selection_timeout = Some(Duration::from_secs(2));
    options.connect_timeout = Some(Duration::from_secs(2));
    options.app_name = Some("leadflow-enricher".to_owned());
    mongodb::Client::with_options(options)
}
