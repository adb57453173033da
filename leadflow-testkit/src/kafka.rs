//! Reading and writing the stack's topics from tests: where partitions end, what was written
//! after a point, and consumer-group offsets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use leadflow_core::contract::codec::SchemaCodec;
use leadflow_core::contract::codec::SchemaRegistryConfig;
use leadflow_core::contract::records::TopicRecord;

use crate::{Stack, unique};

/// Where each partition of `topic` ends now, so a reader can start after what earlier runs left.
pub fn end_offsets(stack: &Stack, topic: &str) -> HashMap<i32, i64> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka_bootstrap).create().unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            let (_, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).unwrap();
            (p.id(), high)
        })
        .collect()
}

/// Sets `group`'s committed offsets on `topic` to `offsets`, so that a service started in that
/// group begins exactly there (after what earlier tests wrote), with no race against its start.
pub fn commit_group_offsets(stack: &Stack, group: &str, topic: &str, offsets: &HashMap<i32, i64>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset)).unwrap();
    }
    consumer.commit(&list, CommitMode::Sync).unwrap();
}

/// A consumer group of its own (named `<prefix>-<unique>`) whose committed offsets are the
/// current end of `topic`: a service started in it works on what is written from now on, and
/// never on what earlier tests left.
pub fn new_group_at_end(stack: &Stack, prefix: &str, topic: &str) -> String {
    new_group_at_end_of(stack, prefix, &[topic])
}

/// [`new_group_at_end`] for a service that reads several topics.
pub fn new_group_at_end_of(stack: &Stack, prefix: &str, topics: &[&str]) -> String {
    let group = unique(prefix);
    for topic in topics {
        commit_group_offsets(stack, &group, topic, &end_offsets(stack, topic));
    }
    group
}

/// Writes `records` to their topic, keyed and framed by the schema codec as the services write
/// them. `join_all` polls the sends in order, so each is queued in order, and the idempotent
/// producer keeps a partition's records in the order they were queued.
pub async fn produce_records<R: TopicRecord>(stack: &Stack, records: &[R]) {
    let codec = codec(stack);
    let producer = producer(stack);
    for chunk in records.chunks(1000) {
        let mut encoded = Vec::with_capacity(chunk.len());
        for record in chunk {
            encoded.push((record.key(), codec.encode(record).await.unwrap()));
        }
        let sends = encoded.iter().map(|(key, value)| produce(&producer, R::TOPIC, key, value));
        futures::future::join_all(sends).await;
    }
}

/// `group`'s committed offsets on `topic` (partitions with none are left out).
pub fn committed_offsets(stack: &Stack, group: &str, topic: &str) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in end_offsets(stack, topic).keys() {
        list.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10)).unwrap();
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// A producer that partitions like the services (murmur2, as the Java client does).
pub fn producer(stack: &Stack) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .create()
        .unwrap()
}

/// Writes one record and waits for the broker's acknowledgement.
pub async fn produce(producer: &FutureProducer, topic: &str, key: &str, value: &[u8]) {
    producer
        .send(FutureRecord::to(topic).key(key).payload(value), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

pub struct Published {
    pub key: String,
    pub partition: i32,
    pub offset: i64,
    pub value: Vec<u8>,
    /// The record's headers, values as text.
    pub headers: Vec<(String, String)>,
}

impl From<&rdkafka::message::BorrowedMessage<'_>> for Published {
    fn from(m: &rdkafka::message::BorrowedMessage<'_>) -> Self {
        Published {
            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            partition: m.partition(),
            offset: m.offset(),
            value: m.payload().unwrap_or_default().to_vec(),
            headers: m
                .headers()
                .map(|headers| {
                    use rdkafka::message::Headers;
                    (0..headers.count())
                        .map(|i| headers.get(i))
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A `read_committed` consumer of `topic` from `from`, in no group's name but its own.
fn committed_reader(stack: &Stack, topic: &str, from: &HashMap<i32, i64>) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("group.id", unique("test-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in from {
        assignment.add_partition_offset(topic, *partition, Offset::Offset(*offset)).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    consumer
}

/// Reads `topic` (`read_committed`) from `from` until `done` says enough; fails after 30 s.
pub async fn read_from(
    stack: &Stack,
    topic: &str,
    from: &HashMap<i32, i64>,
    done: impl Fn(&[Published]) -> bool,
) -> Vec<Published> {
    read_from_within(stack, topic, from, Duration::from_secs(30), done).await
}

/// Like [`read_from`], failing after `deadline`.
pub async fn read_from_within(
    stack: &Stack,
    topic: &str,
    from: &HashMap<i32, i64>,
    deadline: Duration,
    done: impl Fn(&[Published]) -> bool,
) -> Vec<Published> {
    let consumer = committed_reader(stack, topic, from);
    let mut records = Vec::new();
    let started = Instant::now();
    while !done(&records) {
        assert!(
            started.elapsed() < deadline,
            "only {} records read from {topic} within {deadline:?}",
            records.len()
        );
        if let Ok(message) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            records.push(Published::from(&message.unwrap()));
        }
    }
    records
}

/// Reads everything committed on `topic` from `from` up to the partitions' current ends
/// (`read_committed`): for checks made once the writers have stopped, where a count would stop
/// too early if a duplicate came later. Fails after `deadline`.
pub async fn read_to_end(
    stack: &Stack,
    topic: &str,
    from: &HashMap<i32, i64>,
    deadline: Duration,
) -> Vec<Published> {
    let ends = end_offsets(stack, topic);
    let consumer = committed_reader(stack, topic, from);
    let reached_end = |consumer: &StreamConsumer| {
        let position = consumer.position().unwrap();
        ends.iter().all(|(partition, end)| {
            let at = position.find_partition(topic, *partition).map(|p| p.offset());
            from.get(partition).is_none_or(|start| start >= end)
                || matches!(at, Some(Offset::Offset(o)) if o >= *end)
        })
    };
    let mut records = Vec::new();
    let started = Instant::now();
    while !reached_end(&consumer) {
        assert!(
            started.elapsed() < deadline,
            "{topic} not read to its end within {deadline:?} ({} records)",
            records.len()
        );
        if let Ok(message) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            records.push(Published::from(&message.unwrap()));
        }
    }
    records
}

/// Waits until `topic` holds at least `count` committed records (from `from`) whose key starts
/// with `prefix`, then reads everything committed up to the partitions' ends ([`read_to_end`]).
/// For checks after a writer whose other effects (a MongoDB write, a delivery) are seen before its
/// Kafka transaction commits: the records come a moment after them, and a read at once would
/// miss the last ones. Fails after `deadline`.
pub async fn read_at_least(
    stack: &Stack,
    topic: &str,
    from: &HashMap<i32, i64>,
    prefix: &str,
    count: usize,
    deadline: Duration,
) -> Vec<Published> {
    read_from_within(stack, topic, from, deadline, |records| {
        records.iter().filter(|r| r.key.starts_with(prefix)).count() >= count
    })
    .await;
    read_to_end(stack, topic, from, deadline).await
}

/// A schema codec against the stack's registry, to write and read records as the services do.
pub fn codec(stack: &Stack) -> SchemaCodec {
    SchemaCodec::new(&SchemaRegistryConfig {
        url: stack.schema_registry_url.clone(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

/// Decodes records read from a topic, failing the test on any that does not decode.
pub async fn decode_all<'a, R: TopicRecord>(
    stack: &Stack,
    records: impl Iterator<Item = &'a Published>,
) -> Vec<R> {
    let codec = codec(stack);
    let mut decoded = Vec::new();
    for record in records {
        decoded.push(codec.decode::<R>(&record.value).await.unwrap());
    }
    decoded
}
