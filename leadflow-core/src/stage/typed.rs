//! Typed stages: the stage owns the wire. A processor ([`Transform`]) gets decoded input
//! ([`Decoded<T>`]) and returns what it wants written ([`Emit`]); the stage does the rest in
//! one place:
//! - decoding, where a record that cannot be read becomes a dead letter;
//! - encoding, where an output that fails its schema, or would not fit on its topic, becomes
//!   a dead letter of the input that caused it rather than a batch retried forever;
//! - dead letters: one bounded shape ([`DeadLetter`]), with the context in Kafka headers too,
//!   counted by one metric, `leadflow_dead_letters_total{stage,error_kind}`;
//! - errors: a registry or store that is down is [`ProcessError::Transient`] (the batch is
//!   retried), never a dead letter.
//!
//! So a processor holds only its domain work, and its unit tests call [`Transform::apply`] with
//! plain values, with no broker and no registry.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::contract::codec::{CodecError, SchemaCodec};
use crate::contract::records::{DeadLetter, PipelineStage, RecordPosition, TopicRecord};
use crate::stage::exactly_once::{BatchProcessor, InputRecord, OutputRecord, ProcessError};
use crate::stage::metrics::StageMetrics;
use crate::stage::pause::PauseSignal;

/// The dead-letter error kind of a record with no value.
pub const MALFORMED: &str = "malformed";
/// A record whose Kafka key is not the lead key its own fields give (`projectId`, `leadId`): it
/// sits on another lead's partition, so taking it would break that lead's order, or file it
/// under another project.
pub const KEY_MISMATCH: &str = "key_mismatch";
/// The dead-letter error kind of an input whose output fails the output topic's schema.
pub const UNENCODABLE_OUTPUT: &str = "unencodable_output";
/// The dead-letter error kind of an input whose output would be larger than a topic takes.
pub const OUTPUT_TOO_LARGE: &str = "output_too_large";

/// Kafka Connect's dead-letter header names, so that generic tools read LeadFlow's dead
/// letters as they read Connect's.
pub mod headers {
    pub const TOPIC: &str = "__connect.errors.topic";
    pub const PARTITION: &str = "__connect.errors.partition";
    pub const OFFSET: &str = "__connect.errors.offset";
    pub const STAGE: &str = "__connect.errors.stage";
    /// The error kind, a short bounded label.
    pub const ERROR_KIND: &str = "__connect.errors.exception.class.name";
    pub const ERROR_MESSAGE: &str = "__connect.errors.exception.message";
}

/// One consumed record, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    pub position: RecordPosition,
    pub key: Option<Vec<u8>>,
    pub record: T,
}

/// What a stage's input decodes into: one record type, or an enum over co-partitioned topics.
pub trait DecodeInput: Sized + Send + Sync {
    fn decode(
        codec: &SchemaCodec,
        topic: &str,
        value: &[u8],
    ) -> impl Future<Output = Result<Self, CodecError>> + Send;

    /// The key the record belongs under: a record read under any other key is refused.
    fn expected_key(&self) -> Cow<'_, str>;
}

impl<R: TopicRecord> DecodeInput for R {
    async fn decode(codec: &SchemaCodec, _topic: &str, value: &[u8]) -> Result<Self, CodecError> {
        codec.decode::<R>(value).await
    }

    fn expected_key(&self) -> Cow<'_, str> {
        self.key()
    }
}

/// A stage's domain work on one batch.
pub trait Transform: Send + Sync {
    type Input: DecodeInput;
    /// The stage named in its dead letters and metrics.
    const STAGE: PipelineStage;
    /// Turns a batch into outputs. Every input must end somewhere (a record, a dead letter, or
    /// a deliberate nothing), since the batch's offsets are committed with whatever it returns.
    fn apply(
        &self,
        batch: Vec<Decoded<Self::Input>>,
        pause: &PauseSignal,
    ) -> impl Future<Output = Result<Vec<Emit>, ProcessError>> + Send;

    /// See [`BatchProcessor::gather_for`].
    fn gather_for(&self) -> Duration {
        Duration::ZERO
    }
}

/// What a processor asks the stage to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Emit {
    /// A record for an output topic, caused by the input at `cause` (whose dead letter it
    /// becomes if it cannot be encoded).
    Record {
        cause: RecordPosition,
        record: Outgoing,
    },
    DeadLetter(DeadLetterSpec),
}

impl Emit {
    pub fn record<R: TopicRecord>(cause: &RecordPosition, record: &R) -> Emit {
        Emit::Record { cause: cause.clone(), record: Outgoing::of(record) }
    }

    /// The input at `cause` goes to the dead-letter topic with its original bytes.
    pub fn dead_letter(cause: &RecordPosition, error_kind: &'static str, error: impl Into<String>) -> Emit {
        Emit::DeadLetter(DeadLetterSpec::new(cause, error_kind, error))
    }
}

/// A typed record turned into JSON, with the topic, schema and key it goes out with.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: &'static str,
    schema: &'static str,
    pub key: String,
    /// The JSON, or why the record could not be turned into JSON.
    value: Result<Value, String>,
}

impl Outgoing {
    pub fn of<R: TopicRecord>(record: &R) -> Outgoing {
        Outgoing {
            topic: R::TOPIC,
            schema: R::SCHEMA,
            key: record.key().into_owned(),
            value: serde_json::to_value(record).map_err(|e| e.to_string()),
        }
    }

    /// The record back as its type, for tests that look at what a processor emitted.
    pub fn decode<R: TopicRecord>(&self) -> Option<R> {
        (self.topic == R::TOPIC).then(|| serde_json::from_value(self.value.clone().ok()?).ok()).flatten()
    }
}

/// A dead letter a processor asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterSpec {
    pub cause: RecordPosition,
    pub error_kind: &'static str,
    pub error: String,
    /// The key and value to keep instead of the cause's original bytes, e.g. the contact as it
    /// was sent to a CRM that refused it. `None` keeps the original record.
    pub replacement: Option<(Option<Vec<u8>>, Vec<u8>)>,
    /// When it failed, if the processor knows better than now (a failure it recorded earlier
    /// and emits again).
    pub failed_at: Option<OffsetDateTime>,
}

impl DeadLetterSpec {
    pub fn new(cause: &RecordPosition, error_kind: &'static str, error: impl Into<String>) -> Self {
        DeadLetterSpec {
            cause: cause.clone(),
            error_kind,
            error: error.into(),
            replacement: None,
            failed_at: None,
        }
    }
}

/// Runs a [`Transform`] inside the exactly-once loop.
pub struct TypedStage<T> {
    pub transform: T,
    pub codec: Arc<SchemaCodec>,
    pub metrics: StageMetrics,
    /// The most bytes (key and value) an output record may have; above it the output is
    /// replaced by a dead letter of its cause. Below the broker's `message.max.bytes`.
    pub max_output_bytes: usize,
}

/// The broker's default `message.max.bytes` is 1,048,588; this leaves room for the batch
/// framing and headers.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1_000_000;

impl<T> TypedStage<T> {
    pub fn new(transform: T, codec: Arc<SchemaCodec>, metrics: StageMetrics) -> Self {
        TypedStage { transform, codec, metrics, max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES }
    }
}

impl<T: Transform> BatchProcessor for TypedStage<T> {
    fn gather_for(&self) -> Duration {
        self.transform.gather_for()
    }

    async fn process(
        &self,
        batch: &[InputRecord],
        pause: &PauseSignal,
    ) -> Result<Vec<OutputRecord>, ProcessError> {
        let by_position: HashMap<RecordPosition, &InputRecord> =
            batch.iter().map(|r| (r.position(), r)).collect();
        let mut outputs = Vec::with_capacity(batch.len());
        let mut decoded = Vec::with_capacity(batch.len());
        for input in batch {
            let position = input.position();
            let Some(value) = input.value.as_deref() else {
                let spec = DeadLetterSpec::new(&position, MALFORMED, "a record with no value");
                outputs.push(self.dead_letter(spec, &by_position).await?);
                continue;
            };
            match T::Input::decode(&self.codec, &input.topic, value).await {
                // A keyless record (an operator's CLI without `parse.key`) is taken as before.
                Ok(record) if input.key.as_deref().is_some_and(|k| k != record.expected_key().as_bytes()) => {
                    let error =
                        key_mismatch(input.key.as_deref().unwrap_or_default(), &record.expected_key());
                    let spec = DeadLetterSpec::new(&position, KEY_MISMATCH, error);
                    outputs.push(self.dead_letter(spec, &by_position).await?);
                }
                Ok(record) => decoded.push(Decoded { position, key: input.key.clone(), record }),
                Err(CodecError::Poison { kind, message }) => {
                    let spec = DeadLetterSpec::new(&position, kind.as_str(), message);
                    outputs.push(self.dead_letter(spec, &by_position).await?);
                }
                Err(e @ CodecError::UnexpectedTopic(_)) => return Err(ProcessError::Fatal(e.to_string())),
                Err(e) => return Err(ProcessError::Transient(e.to_string())),
            }
        }
        if decoded.is_empty() {
            return Ok(outputs);
        }
        for emit in self.transform.apply(decoded, pause).await? {
            match emit {
                Emit::DeadLetter(spec) => outputs.push(self.dead_letter(spec, &by_position).await?),
                Emit::Record { cause, record } => match self.encode(&record).await? {
                    Ok(value) => outputs.push(OutputRecord {
                        topic: record.topic,
                        key: record.key,
                        value,
                        headers: Vec::new(),
                    }),
                    Err((kind, error)) => {
                        let spec = DeadLetterSpec::new(&cause, kind, error);
                        outputs.push(self.dead_letter(spec, &by_position).await?);
                    }
                },
            }
        }
        Ok(outputs)
    }
}

/// Why a record's key is refused, naming both keys (cut, as a dead letter's error is).
fn key_mismatch(key: &[u8], expected: &str) -> String {
    let key = crate::contract::records::cut_text(&String::from_utf8_lossy(key), 200);
    let expected = crate::contract::records::cut_text(expected, 200);
    format!(
        "the record key {key:?} is not the lead key {expected:?} of its projectId and leadId; \
         key a lead's records <leadId> in the default project and <projectId>/<leadId> in any other"
    )
}

impl<T: Transform> TypedStage<T> {
    /// The framed value, or (`Ok(Err)`) why this output can never be written.
    async fn encode(
        &self,
        record: &Outgoing,
    ) -> Result<Result<Vec<u8>, (&'static str, String)>, ProcessError> {
        let value = match &record.value {
            Ok(value) => value,
            Err(e) => return Ok(Err((UNENCODABLE_OUTPUT, format!("{}: {e}", record.topic)))),
        };
        match self.codec.encode_value(record.topic, record.schema, value).await {
            Ok(bytes) if bytes.len() + record.key.len() > self.max_output_bytes => Ok(Err((
                OUTPUT_TOO_LARGE,
                format!(
                    "the {} record would be {} bytes, over the {} a record may have",
                    record.topic,
                    bytes.len() + record.key.len(),
                    self.max_output_bytes
                ),
            ))),
            Ok(bytes) => Ok(Ok(bytes)),
            Err(CodecError::Poison { message, .. }) => {
                Ok(Err((UNENCODABLE_OUTPUT, format!("the {} record: {message}", record.topic))))
            }
            Err(e) => Err(ProcessError::Transient(e.to_string())),
        }
    }

    async fn dead_letter(
        &self,
        spec: DeadLetterSpec,
        batch: &HashMap<RecordPosition, &InputRecord>,
    ) -> Result<OutputRecord, ProcessError> {
        let original = batch.get(&spec.cause);
        let (key, value) = match &spec.replacement {
            Some((key, value)) => (key.as_deref(), Some(value.as_slice())),
            None => (original.and_then(|r| r.key.as_deref()), original.and_then(|r| r.value.as_deref())),
        };
        let letter = DeadLetter::for_record(
            T::STAGE,
            spec.error_kind,
            &spec.error,
            &spec.cause,
            key,
            value,
            spec.failed_at.unwrap_or_else(OffsetDateTime::now_utc),
        );
        let value = match self.codec.encode(&letter).await {
            Ok(value) => value,
            Err(CodecError::Poison { message, .. }) => {
                return Err(ProcessError::Fatal(format!("a dead letter fails its own schema: {message}")));
            }
            Err(e) => return Err(ProcessError::Transient(e.to_string())),
        };
        self.metrics.dead_letters.with_label_values(&[stage_label(T::STAGE), spec.error_kind]).inc();
        tracing::warn!(
            stage = stage_label(T::STAGE),
            error_kind = spec.error_kind,
            topic = %spec.cause.topic,
            partition = spec.cause.partition,
            offset = spec.cause.offset,
            error = %letter.error,
            "record dead-lettered"
        );
        Ok(OutputRecord {
            topic: DeadLetter::TOPIC,
            key: letter.lead_id.clone(),
            value,
            headers: headers_of(&letter),
        })
    }
}

/// The dead letter's context as Kafka headers.
fn headers_of(letter: &DeadLetter) -> Vec<(&'static str, String)> {
    let mut list = vec![
        (headers::STAGE, stage_label(letter.stage).to_owned()),
        (headers::ERROR_KIND, letter.error_kind.clone()),
        (headers::ERROR_MESSAGE, letter.error.clone()),
    ];
    if let Some(topic) = &letter.source_topic {
        list.push((headers::TOPIC, topic.clone()));
    }
    if let Some(partition) = letter.source_partition {
        list.push((headers::PARTITION, partition.to_string()));
    }
    if let Some(offset) = letter.source_offset {
        list.push((headers::OFFSET, offset.to_string()));
    }
    list
}

pub fn stage_label(stage: PipelineStage) -> &'static str {
    match stage {
        PipelineStage::Gateway => "gateway",
        PipelineStage::Enricher => "enricher",
        PipelineStage::Scorer => "scorer",
        PipelineStage::CrmSink => "crm-sink",
        PipelineStage::Automator => "automator",
    }
}
