//! The schema codec: records go onto topics Confluent-framed (magic byte, schema id, JSON) through
//! `schema_registry_converter`, validated against the topic's registered JSON Schema. Consumers
//! also take plain JSON with no framing, as an operator types it into `kafka-console-producer`,
//! and validate it against the same schema.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use schema_registry_converter::async_impl::json::{JsonDecoder, JsonEncoder};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SubjectNameStrategy, SuppliedSchema};
use serde_json::Value;

use crate::contract::records::TopicRecord;
use serde::Deserialize;

/// The first byte of a Confluent-framed value; a plain JSON value starts with `{` instead.
const CONFLUENT_MAGIC_BYTE: u8 = 0;
const FRAME_HEADER_LEN: usize = 5;
const COMPATIBILITY: &str = "BACKWARD";

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The registry could not be reached or answered with a server error: worth retrying, and
    /// never a reason to dead-letter a record.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// The registry refused the request, e.g. an incompatible schema change.
    #[error("schema registry refused: {0}")]
    RegistryRefused(String),
    /// The record itself is bad: it can never be decoded, so it belongs on the dead-letter topic.
    #[error("{kind}: {message}")]
    Poison { kind: PoisonKind, message: String },
}

impl CodecError {
    fn poison(kind: PoisonKind, message: impl Into<String>) -> Self {
        CodecError::Poison { kind, message: message.into() }
    }

    fn from_registry(err: SRCError) -> Self {
        if err.retriable {
            CodecError::RegistryUnavailable(err.to_string())
        } else {
            CodecError::RegistryRefused(err.to_string())
        }
    }
}

/// Why a record is poison; the label is bounded, for metrics and dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonKind {
    /// Not JSON, or a Confluent frame that is cut short or names an unknown schema.
    Malformed,
    /// Valid JSON that the topic's schema rejects.
    SchemaViolation,
    /// The value passed the schema but holds something the record type cannot hold.
    InvalidValue,
}

impl PoisonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PoisonKind::Malformed => "malformed",
            PoisonKind::SchemaViolation => "schema_violation",
            PoisonKind::InvalidValue => "invalid_value",
        }
    }
}

impl fmt::Display for PoisonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL of the Confluent-compatible API, e.g. `http://127.0.0.1:8081/apis/ccompat/v7`.
    pub url: String,
    pub timeout_ms: u64,
}

pub struct SchemaCodec {
    settings: SrSettings,
    base_url: String,
    http: reqwest::Client,
    encoder: JsonEncoder,
    decoder: JsonDecoder,
    /// Registered schema id per topic: the reader's schema that every value is validated against.
    reader_schema_ids: Mutex<HashMap<&'static str, u32>>,
}

impl SchemaCodec {
    pub fn new(cfg: &SchemaRegistryConfig) -> Result<Self, CodecError> {
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let base_url = cfg.url.trim_end_matches('/').to_owned();
        let settings = SrSettings::new_builder(base_url.clone())
            .set_timeout(timeout)
            .build()
            .map_err(CodecError::from_registry)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| CodecError::RegistryUnavailable(e.to_string()))?;
        Ok(SchemaCodec {
            encoder: JsonEncoder::new(settings.clone()),
            decoder: JsonDecoder::new(settings.clone()),
            settings,
            base_url,
            http,
            reader_schema_ids: Mutex::new(HashMap::new()),
        })
    }

    /// Sets `<topic>-value` to BACKWARD compatibility and registers `R`'s schema under it.
    /// Registering a schema the subject already holds returns its existing id.
    pub async fn register<R: TopicRecord>(&self) -> Result<u32, CodecError> {
        let id = self.register_schema(&subject(R::TOPIC), R::SCHEMA).await?;
        self.reader_schema_ids.lock().expect("not poisoned").insert(R::TOPIC, id);
        Ok(id)
    }

    /// Sets a subject's compatibility to BACKWARD, then registers `schema` under it.
    pub async fn register_schema(&self, subject: &str, schema: &str) -> Result<u32, CodecError> {
        self.set_backward_compatibility(subject).await?;
        let supplied = SuppliedSchema::new(None, SchemaType::Json, schema.to_owned());
        let registered = post_schema(&self.settings, subject.to_owned(), supplied)
            .await
            .map_err(CodecError::from_registry)?;
        Ok(registered.id)
    }

    async fn set_backward_compatibility(&self, subject: &str) -> Result<(), CodecError> {
        let url = format!("{}/config/{subject}", self.base_url);
        let response = self
            .http
            .put(&url)
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(format!(r#"{{"compatibility":"{COMPATIBILITY}"}}"#))
            .send()
            .await
            .map_err(|e| CodecError::RegistryUnavailable(format!("PUT {url}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // Apicurio answers 409 when two instances create the subject's rule at the same moment;
        // what matters is the level the subject ends up with.
        if status == reqwest::StatusCode::CONFLICT
            && self.compatibility_level(subject).await?.as_deref() == Some(COMPATIBILITY)
        {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let message = format!("PUT {url}: {status}: {body}");
        if status.is_server_error() {
            Err(CodecError::RegistryUnavailable(message))
        } else {
            Err(CodecError::RegistryRefused(message))
        }
    }

    /// The compatibility level set on `subject`, if any.
    pub async fn compatibility_level(&self, subject: &str) -> Result<Option<String>, CodecError> {
        let url = format!("{}/config/{subject}", self.base_url);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| CodecError::RegistryUnavailable(format!("GET {url}: {e}")))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(CodecError::RegistryUnavailable(format!("GET {url}: {}", response.status())));
        }
        let body: serde_json::Value =
            response.json().await.map_err(|e| CodecError::RegistryUnavailable(format!("GET {url}: {e}")))?;
        Ok(body["compatibilityLevel"].as_str().map(str::to_owned))
    }

    /// Validates `record` against its topic's schema and frames it with the schema id.
    pub async fn encode<R: TopicRecord>(&self, record: &R) -> Result<Vec<u8>, CodecError> {
        let value = serde_json::to_value(record)
            .map_err(|e| CodecError::poison(PoisonKind::InvalidValue, e.to_string()))?;
        let supplied = SuppliedSchema::new(None, SchemaType::Json, R::SCHEMA.to_owned());
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(R::TOPIC.to_owned(), false, supplied);
        self.encoder.encode(&value, strategy).await.map_err(|e| {
            if e.retriable {
                CodecError::RegistryUnavailable(e.to_string())
            } else {
                CodecError::poison(PoisonKind::SchemaViolation, e.to_string())
            }
        })
    }

    /// Decodes a framed or plain-JSON value and validates it against `R`'s registered schema.
    /// Call [`SchemaCodec::register`] for `R` first.
    pub async fn decode<R: TopicRecord>(&self, bytes: &[u8]) -> Result<R, CodecError> {
        let value = if bytes.first() == Some(&CONFLUENT_MAGIC_BYTE) {
            if bytes.len() < FRAME_HEADER_LEN {
                return Err(CodecError::poison(
                    PoisonKind::Malformed,
                    "Confluent frame shorter than its 5-byte header",
                ));
            }
            match self.decoder.decode(Some(bytes)).await {
                Ok(Some(decoded)) => decoded.value,
                Ok(None) => return Err(CodecError::poison(PoisonKind::Malformed, "empty value")),
                Err(e) if e.retriable => {
                    return Err(CodecError::RegistryUnavailable(e.to_string()));
                }
                Err(e) => return Err(CodecError::poison(PoisonKind::Malformed, e.to_string())),
            }
        } else {
            serde_json::from_slice::<Value>(bytes)
                .map_err(|e| CodecError::poison(PoisonKind::Malformed, format!("not JSON: {e}")))?
        };
        self.validate::<R>(&value).await?;
        serde_json::from_value(value).map_err(|e| CodecError::poison(PoisonKind::InvalidValue, e.to_string()))
    }

    async fn validate<R: TopicRecord>(&self, value: &Value) -> Result<(), CodecError> {
        let id = self.reader_schema_ids.lock().expect("not poisoned").get(R::TOPIC).copied();
        let id = match id {
            Some(id) => id,
            None => self.register::<R>().await?,
        };
        let schema = self.decoder.get_schema(id).await.map_err(CodecError::from_registry)?;
        self.decoder
            .validate(&schema, value)
            .map_err(|e| CodecError::poison(PoisonKind::SchemaViolation, e.error))
    }

    /// `Ok` when the registry answers.
    pub async fn check_reachable(&self) -> Result<(), CodecError> {
        let url = format!("{}/config", self.base_url);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| CodecError::RegistryUnavailable(format!("GET {url}: {e}")))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(CodecError::RegistryUnavailable(format!("GET {url}: {}", response.status())))
        }
    }
}

/// The subject of a topic's values (the topic name strategy).
pub fn subject(topic: &str) -> String {
    format!("{topic}-value")
}
