//! Shared by the gateway's stack tests: the gateway binary as a child process, and a reader of
//! what it published.

#![allow(dead_code)] // each test binary uses part of this

use std::collections::HashMap;
use std::time::{Duration, Instant};

use leadflow_testkit::{ServiceProcess, Stack, unique};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

pub struct Gateway {
    pub process: ServiceProcess,
    pub base_url: String,
    pub ops_url: String,
}

impl Gateway {
    pub async fn start(stack: &Stack) -> Gateway {
        let env = [("LEADFLOW_HTTP__LISTEN", "127.0.0.1:0".to_owned())];
        let (mut process, ops) =
            ServiceProcess::spawn_against(stack, env!("CARGO_BIN_EXE_ingest-gateway"), &env).await.unwrap();
        process.wait_http_ok(&format!("http://{ops}/readyz"), Duration::from_secs(60)).await.unwrap();
        let api = process.wait_for_log_field("API listening", "addr", Duration::from_secs(30)).await.unwrap();
        Gateway { process, base_url: format!("http://{api}"), ops_url: format!("http://{ops}") }
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base_url))
            .json(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }
}

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

pub struct Published {
    pub key: String,
    pub partition: i32,
    pub offset: i64,
    pub value: Vec<u8>,
}

/// Reads `topic` from `from` until `done` says enough (or fails after 30 s).
pub async fn read_from(
    stack: &Stack,
    topic: &str,
    from: &HashMap<i32, i64>,
    done: impl Fn(&[Published]) -> bool,
) -> Vec<Published> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("group.id", unique("gateway-test-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in from {
        assignment.add_partition_offset(topic, *partition, Offset::Offset(*offset)).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&records) {
        assert!(Instant::now() < deadline, "only {} records read from {topic} within 30 s", records.len());
        if let Ok(message) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            let m = message.unwrap();
            records.push(Published {
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                partition: m.partition(),
                offset: m.offset(),
                value: m.payload().unwrap_or_default().to_vec(),
            });
        }
    }
    records
}

pub fn run_id() -> String {
    unique("gw").replace('-', "_")
}

/// A codec against the stack's registry, to decode what the gateway published.
pub fn codec(stack: &Stack) -> leadflow_core::codec::SchemaCodec {
    let config = leadflow_core::config::SchemaRegistryConfig {
        url: stack.schema_registry_url.clone(),
        timeout_ms: 5000,
    };
    leadflow_core::codec::SchemaCodec::new(&config).unwrap()
}
