//! The scoring rules in force, per project: each project's newest valid rule set on the
//! compacted topic `scoring.rules.v1` (which the gateway's `PUT /api/scoring-rules` writes), or
//! the seeds' rules for a project that has set none. Every reader (each scorer instance, the
//! gateway) reads the whole topic without a consumer group, so every one of them follows every
//! change.

use std::collections::HashMap;
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
        RulesInForce::seeds_for(crate::contract::project::DEFAULT_PROJECT)
    }

    pub fn seeds_for(project_id: &str) -> Self {
        RulesInForce { rules: Arc::new(ScoringRules::seeds_for(project_id)), offset: None }
    }
}

/// Every project's rules in force. A project with no rule set on the topic is scored by the
/// seeds' rules, never by another project's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleBook {
    by_project: HashMap<String, RulesInForce>,
}

impl RuleBook {
    /// The rules in force for `project_id`.
    pub fn for_project(&self, project_id: &str) -> RulesInForce {
        self.by_project.get(project_id).cloned().unwrap_or_else(|| RulesInForce::seeds_for(project_id))
    }

    /// Puts `rules` in force for their project.
    pub fn set(&mut self, rules: RulesInForce) {
        self.by_project.insert(rules.rules.project_id.clone(), rules);
    }

    /// How many projects have rules of their own.
    pub fn len(&self) -> usize {
        self.by_project.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_project.is_empty()
    }

    /// The shortest decay grace period of any project, the seeds' included (they score every
    /// project without rules of its own).
    pub fn shortest_grace_days(&self) -> f64 {
        self.by_project
            .values()
            .map(|r| r.rules.decay.grace_days)
            .fold(ScoringRules::seeds().decay.grace_days, f64::min)
    }

    /// A book with these rules in force (each for its own project).
    pub fn with(rules: impl IntoIterator<Item = RulesInForce>) -> Self {
        let mut book = RuleBook::default();
        rules.into_iter().for_each(|r| book.set(r));
        book
    }
}

/// What became of one record on the topic, for the reader's metrics.
pub enum RulesUpdate<'a> {
    Applied(&'a ScoringRules),
    Refused(&'a str),
}

/// Follows the rules topic until shutdown, putting each valid rule set in force on `rules` and
/// reporting every record to `on_update`. `caught_up` fires once everything that was on the
/// topic at start has been read.
pub async fn follow(
    kafka: KafkaConfig,
    codec: Arc<SchemaCodec>,
    rules: watch::Sender<RuleBook>,
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
                    let offset = Some(message.offset());
                    rules.send_modify(|book| book.set(RulesInForce { rules: Arc::new(new), offset }));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_without_rules_of_its_own_is_scored_by_the_seeds_not_by_another_project() {
        let mut acme = ScoringRules::seeds_for("acme");
        acme.version = "acme_v2".into();
        let book = RuleBook::with([RulesInForce { rules: Arc::new(acme.clone()), offset: Some(4) }]);
        assert_eq!(*book.for_project("acme").rules, acme);
        assert_eq!(book.for_project("acme").offset, Some(4));
        let other = book.for_project("globex");
        assert_eq!((other.rules.version.as_str(), other.rules.project_id.as_str()), ("v1", "globex"));
        assert_eq!(other.offset, None);
        assert_eq!(*book.for_project("default").rules, ScoringRules::seeds());
    }
}
