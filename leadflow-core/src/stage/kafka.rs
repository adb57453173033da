//! Kafka client setup shared by every service, so that producers agree on partitioning and
//! durability and consumers agree on isolation and offset ownership.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use serde::Deserialize;

use crate::contract::topics::TopicSpec;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    /// librdkafka properties applied last, for tuning without a code change,
    /// e.g. `[kafka.client] "linger.ms" = "10"`.
    #[serde(default)]
    pub client: BTreeMap<String, String>,
}

/// The Java client's default partitioner (murmur2 of the key, random for a null key).
/// librdkafka's own default (`consistent_random`, CRC32) would put a key produced by a service
/// on a different partition than the same key typed into `kafka-console-producer`.
pub const JAVA_COMPATIBLE_PARTITIONER: &str = "murmur2_random";

fn base_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &cfg.bootstrap_servers);
    config
}

fn with_overrides(mut config: ClientConfig, cfg: &KafkaConfig) -> ClientConfig {
    for (key, value) in &cfg.client {
        config.set(key, value);
    }
    config
}

/// A durable producer: a delivery report means every in-sync replica has the record, and
/// retries cannot duplicate or reorder records within a partition.
///
/// `linger.ms` 1: every writer here waits for its acknowledgements (a gateway request, a
/// stage's batch before its offsets), so the linger is paid on every request and every batch,
/// and a batch is enqueued at once anyway. librdkafka's 5 ms was measured as most of the
/// gateway's single-event latency (issue #15, docs/BENCHMARKS.md).
pub fn producer_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut config = base_config(cfg);
    config
        .set("partitioner", JAVA_COMPATIBLE_PARTITIONER)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1");
    with_overrides(config, cfg)
}

/// A producer whose records and consumed offsets commit atomically. `transactional_id` must be
/// stable for one logical producer so that a restarted instance fences its zombie predecessor.
pub fn transactional_producer_config(cfg: &KafkaConfig, transactional_id: &str) -> ClientConfig {
    let mut config = producer_config(cfg);
    config.set("transactional.id", transactional_id);
    with_overrides(config, cfg)
}

/// A consumer that reads only committed records and never commits on its own: the service
/// commits offsets itself, after (or together with) the work they stand for.
pub fn consumer_config(cfg: &KafkaConfig, group_id: &str) -> ClientConfig {
    let mut config = base_config(cfg);
    config
        .set("group.id", group_id)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    with_overrides(config, cfg)
}

/// Asks the cluster for its metadata; `Ok` means a broker answered within `timeout`.
pub async fn check_reachable(cfg: &KafkaConfig, timeout: Duration) -> Result<(), KafkaError> {
    let config = with_overrides(base_config(cfg), cfg);
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create()?;
        consumer.fetch_metadata(None, timeout).map(|_| ())
    })
    .await
    .expect("the metadata probe does not panic")
}

/// Creates the topics that do not exist yet; existing ones are left as they are.
pub async fn ensure_topics(
    cfg: &KafkaConfig,
    specs: &[TopicSpec],
    replication: i32,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = with_overrides(base_config(cfg), cfg).create()?;
    let new_topics: Vec<NewTopic> = specs
        .iter()
        .map(|spec| {
            spec.configs.iter().fold(
                NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(replication)),
                |topic, (k, v)| topic.set(k, v),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                tracing::error!(topic, ?code, "topic creation failed");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> KafkaConfig {
        KafkaConfig { bootstrap_servers: "127.0.0.1:9092".into(), client: Default::default() }
    }

    #[test]
    fn producers_partition_like_the_java_client_and_wait_for_all_replicas() {
        let config = producer_config(&cfg());
        assert_eq!(config.get("partitioner"), Some(JAVA_COMPATIBLE_PARTITIONER));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        let tx = transactional_producer_config(&cfg(), "enricher-0");
        assert_eq!(tx.get("transactional.id"), Some("enricher-0"));
        assert_eq!(tx.get("partitioner"), Some(JAVA_COMPATIBLE_PARTITIONER));
    }

    #[test]
    fn consumers_read_committed_and_leave_commits_to_the_service() {
        let config = consumer_config(&cfg(), "scorer");
        assert_eq!(config.get("isolation.level"), Some("read_committed"));
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
    }

    #[test]
    fn operator_overrides_apply_last() {
        let mut cfg = cfg();
        cfg.client.insert("linger.ms".into(), "20".into());
        assert_eq!(producer_config(&cfg).get("linger.ms"), Some("20"));
    }
}
