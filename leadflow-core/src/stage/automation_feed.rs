//! The automation rules in force: the newest record of each key on the compacted topic
//! `automations.rules.v1` (which the gateway's `/api/automations` writes), a tombstone for a
//! deleted rule. Every reader (each automator instance, the gateway) reads the whole topic
//! without a consumer group, so every one of them follows every change, as with the scoring
//! rules (`rules_feed`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::contract::codec::SchemaCodec;
use crate::contract::topics;
use crate::model::automation::AutomationRule;
use crate::stage::kafka::KafkaConfig;

/// A rule in force and the offset of its record.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInForce {
    pub rule: Arc<AutomationRule>,
    pub offset: i64,
}

/// Every project's automation rules, by project and rule id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutomationBook {
    by_key: BTreeMap<(String, String), RuleInForce>,
}

impl AutomationBook {
    /// A project's rules, in id order.
    pub fn for_project<'a>(&'a self, project_id: &'a str) -> impl Iterator<Item = &'a RuleInForce> + 'a {
        self.by_key
            .range((project_id.to_owned(), String::new())..)
            .take_while(move |((p, _), _)| p == project_id)
            .map(|(_, r)| r)
    }

    pub fn get(&self, project_id: &str, rule_id: &str) -> Option<&RuleInForce> {
        self.by_key.get(&(project_id.to_owned(), rule_id.to_owned()))
    }

    pub fn set(&mut self, rule: RuleInForce) {
        self.by_key.insert((rule.rule.project_id.clone(), rule.rule.id.clone()), rule);
    }

    pub fn remove(&mut self, project_id: &str, rule_id: &str) {
        self.by_key.remove(&(project_id.to_owned(), rule_id.to_owned()));
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// What became of one record on the topic, for the reader's metrics.
pub enum AutomationUpdate<'a> {
    Applied(&'a AutomationRule),
    Deleted { project_id: &'a str, rule_id: &'a str },
    Refused(&'a str),
}

/// Follows the rules topic until shutdown, keeping `book` up to date and reporting every record
/// to `on_update`. `caught_up` fires once everything that was on the topic at start is read.
pub async fn follow(
    kafka: KafkaConfig,
    codec: Arc<SchemaCodec>,
    book: watch::Sender<AutomationBook>,
    caught_up: oneshot::Sender<()>,
    on_update: impl Fn(AutomationUpdate<'_>) + Send,
    shutdown: CancellationToken,
) -> Result<(), rdkafka::error::KafkaError> {
    let mut config = crate::stage::kafka::consumer_config(&kafka, "automation-rules-reader");
    // Offsets are never committed: every instance reads the topic from the start.
    config.set("enable.auto.commit", "false");
    let consumer: StreamConsumer = config.create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topics::AUTOMATION_RULES, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let end = tokio::task::block_in_place(|| {
        consumer.fetch_watermarks(topics::AUTOMATION_RULES, 0, Duration::from_secs(10)).map(|(_, high)| high)
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
                tracing::warn!(error = %e, "reading the automation rules");
                continue;
            }
        };
        let key = message.key().map(String::from_utf8_lossy).unwrap_or_default();
        match message.payload() {
            None => match AutomationRule::parse_topic_key(&key) {
                Some((project_id, rule_id)) => {
                    on_update(AutomationUpdate::Deleted { project_id, rule_id });
                    book.send_modify(|book| book.remove(project_id, rule_id));
                }
                None => on_update(AutomationUpdate::Refused("a tombstone under a key that names no rule")),
            },
            Some(value) => match decode(&codec, &key, value).await {
                Ok(rule) => {
                    tracing::info!(project = %rule.project_id, rule = %rule.id, version = %rule.version, "automation rule in force");
                    on_update(AutomationUpdate::Applied(&rule));
                    let offset = message.offset();
                    book.send_modify(|book| book.set(RuleInForce { rule: Arc::new(rule), offset }));
                }
                Err(e) => {
                    on_update(AutomationUpdate::Refused(&e));
                    tracing::error!(error = %e, offset = message.offset(), "refused an automation rule; the one in force stays");
                }
            },
        }
        if message.offset() + 1 >= end {
            caught_up.take().map(|tx| tx.send(()));
        }
    }
}

async fn decode(codec: &SchemaCodec, key: &str, value: &[u8]) -> Result<AutomationRule, String> {
    let rule: AutomationRule = codec.decode(value).await.map_err(|e| e.to_string())?;
    rule.validate().map_err(|e| e.to_string())?;
    // A record under another rule's key would put that rule in force under the wrong name.
    if AutomationRule::parse_topic_key(key) != Some((rule.project_id.as_str(), rule.id.as_str())) {
        return Err(format!("the record's key {key:?} is not its rule's"));
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::records::Stage;
    use crate::model::automation::{Action, Condition};

    fn rule(project_id: &str, id: &str) -> RuleInForce {
        RuleInForce {
            rule: Arc::new(AutomationRule {
                project_id: project_id.into(),
                id: id.into(),
                version: "v1".into(),
                name: "n".into(),
                enabled: true,
                condition: Condition::EntersStage { stage: Stage::Hot },
                actions: vec![Action::Webhook { subscription_id: "s".into() }],
            }),
            offset: 0,
        }
    }

    #[test]
    fn a_project_sees_its_own_rules_only_and_a_delete_removes_one() {
        let mut book = AutomationBook::default();
        for (p, id) in [("acme", "b"), ("acme", "a"), ("acmex", "c"), ("acm", "d")] {
            book.set(rule(p, id));
        }
        let ids: Vec<&str> = book.for_project("acme").map(|r| r.rule.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        book.remove("acme", "a");
        assert_eq!(book.for_project("acme").count(), 1);
        assert!(book.get("acmex", "c").is_some());
        assert_eq!(AutomationRule::parse_topic_key("automation/acme/a"), Some(("acme", "a")));
        assert_eq!(AutomationRule::parse_topic_key("automation/acme/a/b"), None);
        assert_eq!(AutomationRule::parse_topic_key("scoring-rules/acme"), None);
    }
}
