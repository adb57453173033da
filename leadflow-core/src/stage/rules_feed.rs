//! The scoring rules in force: the newest valid rule set on the compacted topic
//! `scoring.rules.v1` (which the gateway's `PUT /api/scoring-rules` writes), or the seeds' rules
//! while the topic is empty. Every reader (each scorer instance, the gateway) reads the whole
//! topic without a consumer group, so every one of them follows every change.

use std::sync::Arc;
use std::time::Duration;

use crate::contract::codec::SchemaCodec;
use crate::contract::topics;
use crate::model::scoring::ScoringRules;
use crate::stage::kafka::KafkaConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

/// The rule set in force, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesInForce {
    pub rules: Arc<ScoringRules>,
    /// The record's offset on `scoring.rules.v1`; `None` for the seeds' rules (empty topic).
    pub offset: Option<i64>,
}

impl RulesInForce {
    pub fn seeds() -> Self {
        RulesInForce { rules: Arc::new(ScoringRules::seeds()), offset: None }
    }
}

/// What became of one record on the topic, for the reader's metrics.
pub enum RulesUpdate<'a> {
    Applied(&'a ScoringRules),
    Refused(&'a str),
}

/// Follows the rules topic until shutdown, publishing each valid rule set on `rules` and
/// reporting every record to `on_update`. `caught_up` fires once everything that was on the
/// topic at start has been read.
pub async fn follow(
    kafka: KafkaConfig,
    codec: Arc<SchemaCodec>,
    rules: watch::Sender<RulesInForce>,
    caught_up: oneshot::Sender<()>,
    on_update: impl Fn(RulesUpdate<'_>) + Send,
    shutdown: CancellationToken,
) -> Result<(), rdkafka::error::KafkaError> {
    let mut config = crate::stage::kafka::consumer_config(&kafka, "scoring-rules-reader");
    // Offsets are never committed: every instance reads the topic from the start.
    config.set("enable.auto.commit", "false");
    let consumer: StreamConsumer = config.create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topics::SCORING_RULES, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let end = tokio::task::block_in_place(|| {
        consumer.fetch_watermarks(topics::SCORING_RULES, 0, Duration::from_secs(10)).map(|(_, high)| high)
    })
    .unwrap_or(0);
    let mut caught_up = Some(caught_up);
    if end == 0 {
        caught_up.take().map(|tx| tx.send(()));
    }
    loop {
        let message = tokio::select! {
            message = consumer.recv() => message,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, "reading the scoring rules");
                continue;
            }
        };
        if let Some(value) = message.payload() {
            match decode(&codec, value).await {
                Ok(new) => {
                    tracing::info!(version = %new.version, offset = message.offset(), "scoring rules in force");
                    on_update(RulesUpdate::Applied(&new));
                    rules.send_replace(RulesInForce { rules: Arc::new(new), offset: Some(message.offset()) });
                }
                Err(e) => {
                    on_update(RulesUpdate::Refused(&e));
                    tracing::error!(error = %e, offset = message.offset(), "refused a rule set; the rules in force stay");
                }
            }
        }
        if message.offset() + 1 >= end {
            caught_up.take().map(|tx| tx.send(()));
        }
    }
}

async fn decode(codec: &SchemaCodec, value: &[u8]) -> Result<ScoringRules, String> {
    let rules: ScoringRules = codec.decode(value).await.map_err(|e| e.to_string())?;
    rules.validate().map_err(|e| e.to_string())?;
    Ok(rules)
}
