//! Against the real local broker: partitioning agrees with the Java CLI, and transactions commit
//! and abort as the exactly-once hops need.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use leadflow_core::contract::topics::TopicSpec;
use leadflow_core::stage::kafka::KafkaConfig;
use leadflow_core::stage::kafka::{self, producer_config, transactional_producer_config};
use leadflow_testkit::{Stack, unique};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;

fn kafka_config(stack: &Stack) -> KafkaConfig {
    KafkaConfig { bootstrap_servers: stack.kafka_bootstrap.clone(), client: Default::default() }
}

async fn create_topic(stack: &Stack, prefix: &str) -> String {
    let name = unique(prefix);
    let spec = TopicSpec { name: name.clone(), partitions: PARTITIONS, configs: vec![] };
    kafka::ensure_topics(&kafka_config(stack), &[spec], 1).await.expect("create test topic");
    name
}

/// Reads every record of `topic` up to the end, as (key, value, partition).
async fn read_all(
    stack: &Stack,
    topic: &str,
    isolation: &str,
    expected: usize,
) -> Vec<(String, String, i32)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("group.id", unique("reader"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let decode = |m: &rdkafka::message::BorrowedMessage<'_>| {
        (
            String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            m.partition(),
        )
    };
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while records.len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} records on {topic} ({isolation}) within 30 s",
            records.len()
        );
        if let Ok(message) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            records.push(decode(&message.unwrap()));
        }
    }
    // Anything beyond `expected` would be a duplicate or a leak: read on briefly to catch it.
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
        records.push(decode(&m));
    }
    records
}

async fn produce_keys(config: &ClientConfig, topic: &str, keys: &[String], value: &str) {
    let producer: FutureProducer = config.create().unwrap();
    for key in keys {
        producer
            .send(FutureRecord::to(topic).key(key).payload(value), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

#[tokio::test]
async fn a_key_lands_on_the_same_partition_from_the_java_cli_and_from_rust() {
    let stack = Stack::get();
    let topic = create_topic(&stack, "test.partitioner").await;
    let keys: Vec<String> = (0..40).map(|i| format!("lead-{i}")).collect();

    let mut cli = stack
        .kafka_tool("kafka-console-producer")
        .args(["--bootstrap-server", &stack.kafka_bootstrap, "--topic", &topic])
        .args(["--property", "parse.key=true", "--property", "key.separator=|"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start kafka-console-producer");
    let mut stdin = cli.stdin.take().unwrap();
    for key in &keys {
        writeln!(stdin, "{key}|cli").unwrap();
    }
    drop(stdin);
    assert!(cli.wait().unwrap().success(), "kafka-console-producer failed");

    produce_keys(&producer_config(&kafka_config(&stack)), &topic, &keys, "rust").await;
    // A negative control: librdkafka's own default partitioner, which the services must not use.
    let mut default_partitioner = ClientConfig::new();
    default_partitioner.set("bootstrap.servers", &stack.kafka_bootstrap);
    produce_keys(&default_partitioner, &topic, &keys, "librdkafka-default").await;

    let records = read_all(&stack, &topic, "read_committed", keys.len() * 3).await;
    assert_eq!(records.len(), keys.len() * 3, "one record per key per producer");
    let mut partitions: BTreeMap<(String, String), i32> = BTreeMap::new();
    for (key, value, partition) in records {
        partitions.insert((key, value), partition);
    }
    let by = |key: &String, source: &str| partitions[&(key.clone(), source.to_owned())];
    for key in &keys {
        assert_eq!(by(key, "cli"), by(key, "rust"), "key {key}: CLI and Rust producer disagree");
    }
    let used: BTreeSet<i32> = keys.iter().map(|k| by(k, "rust")).collect();
    assert!(used.len() > 1, "40 keys should spread over several partitions, got {used:?}");
    let differing = keys.iter().filter(|k| by(k, "librdkafka-default") != by(k, "cli")).count();
    assert!(
        differing > 0,
        "the control partitioner agreed on every key, so this test could not tell them apart"
    );
}

#[tokio::test]
async fn committed_transactions_are_visible_and_aborted_ones_are_not() {
    let stack = Stack::get();
    let topic = create_topic(&stack, "test.transactions").await;
    let config = transactional_producer_config(&kafka_config(&stack), &unique("tx-test"));
    let producer: FutureProducer = config.create().unwrap();
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();

    producer.begin_transaction().unwrap();
    for i in 0..5 {
        let key = format!("lead-{i}");
        producer
            .send_result(FutureRecord::to(&topic).key(&key).payload(&format!("committed-{i}")))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.commit_transaction(timeout).unwrap();

    producer.begin_transaction().unwrap();
    for i in 0..3 {
        let key = format!("lead-{i}");
        let delivery = producer
            .send_result(FutureRecord::to(&topic).key(&key).payload(&format!("aborted-{i}")))
            .map_err(|(e, _)| e)
            .unwrap();
        // The records reach the log before the abort: the broker, not the producer, hides them.
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    producer.abort_transaction(timeout).unwrap();

    let committed = read_all(&stack, &topic, "read_committed", 5).await;
    let values: BTreeSet<String> = committed.iter().map(|(_, v, _)| v.clone()).collect();
    let expected: BTreeSet<String> = (0..5).map(|i| format!("committed-{i}")).collect();
    assert_eq!(values, expected);
    assert_eq!(committed.len(), 5, "no record twice, no aborted record: {committed:?}");

    let everything = read_all(&stack, &topic, "read_uncommitted", 8).await;
    assert_eq!(
        everything.iter().filter(|(_, v, _)| v.starts_with("aborted-")).count(),
        3,
        "the aborted records were written, so read_committed really filtered them"
    );
}
