//! Publishing validated records to Kafka. A publish succeeds only when the broker has
//! acknowledged the record (`acks=all`, idempotent producer); anything else is `Unavailable`,
//! and the API answers 503 rather than claim durability it does not have.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use leadflow_core::contract::codec::{CodecError, SchemaCodec};
use leadflow_core::contract::records::TopicRecord;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PublishError {
    /// Kafka or the registry cannot take the record now (down, queue full, timed out). The
    /// record was not acknowledged; the client should retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The record failed its own schema after passing validation: a bug, not the client's fault.
    #[error("the record does not meet its topic's schema: {0}")]
    Contract(String),
}

/// Where validated records go. The gateway talks to Kafka through this, so that handler tests
/// can run without a network.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes `records` in order, one result per record, in the same order. Records for the
    /// same lead reach their partition in the order given.
    fn publish_all<R: TopicRecord>(
        &self,
        records: &[R],
    ) -> impl Future<Output = Vec<Result<(), PublishError>>> + Send;

    /// Publishes a tombstone (a null value) under `key` on the compacted `topic`: what deletes
    /// the key's record once compaction runs, and tells every reader it is gone at once.
    fn publish_tombstone(
        &self,
        topic: &'static str,
        key: &str,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Records handed to the producer and not yet acknowledged.
    fn queue_depth(&self) -> u64;
}

pub struct KafkaPublisher {
    producer: FutureProducer,
    codec: Arc<SchemaCodec>,
}

impl KafkaPublisher {
    pub fn new(producer: FutureProducer, codec: Arc<SchemaCodec>) -> Self {
        KafkaPublisher { producer, codec }
    }

    /// Waits up to `timeout` for every record handed to the producer to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }
}

fn from_kafka(error: &KafkaError) -> PublishError {
    match error {
        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
            PublishError::Unavailable("the producer queue is full".to_owned())
        }
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut) => {
            PublishError::Unavailable("Kafka did not acknowledge the record in time".to_owned())
        }
        other => PublishError::Unavailable(format!("Kafka: {other}")),
    }
}

impl Publisher for KafkaPublisher {
    async fn publish_all<R: TopicRecord>(&self, records: &[R]) -> Vec<Result<(), PublishError>> {
        // Enqueue strictly in input order (the producer keeps per-partition order from here),
        // then wait for all acknowledgements together, so a batch costs one round trip.
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            let bytes = match self.codec.encode(record).await {
                Ok(bytes) => bytes,
                Err(CodecError::Poison { message, .. }) => {
                    pending.push(Err(PublishError::Contract(message)));
                    continue;
                }
                Err(other) => {
                    pending.push(Err(PublishError::Unavailable(other.to_string())));
                    continue;
                }
            };
            let key = record.key();
            let message = FutureRecord::to(R::TOPIC).key(key.as_ref()).payload(&bytes);
            pending.push(self.producer.send_result(message).map_err(|(e, _)| from_kafka(&e)));
        }
        let mut results = Vec::with_capacity(pending.len());
        for item in pending {
            results.push(match item {
                Err(e) => Err(e),
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(from_kafka(&e)),
                    Err(_canceled) => Err(PublishError::Unavailable("the producer shut down".to_owned())),
                },
            });
        }
        results
    }

    async fn publish_tombstone(&self, topic: &'static str, key: &str) -> Result<(), PublishError> {
        let message = FutureRecord::<str, [u8]>::to(topic).key(key);
        let delivery = self.producer.send_result(message).map_err(|(e, _)| from_kafka(&e))?;
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(from_kafka(&e)),
            Err(_canceled) => Err(PublishError::Unavailable("the producer shut down".to_owned())),
        }
    }

    fn queue_depth(&self) -> u64 {
        self.producer.in_flight_count().max(0) as u64
    }
}
