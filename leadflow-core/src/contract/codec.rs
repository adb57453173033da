//! The schema codec: records go onto topics Confluent-framed (magic byte, schema id, JSON),
//! validated against the topic's JSON Schema as registered in a Confluent-compatible registry.
//! Consumers also take plain JSON with no framing, as an operator types it into
//! `kafka-console-producer`, and validate it against the same schema.
//!
//! The codec speaks the registry's REST API itself (three calls: register a schema, read a
//! schema by id, set a subject's compatibility). `schema_registry_converter`, which it used
//! before, classes a registry 500, 504 or 404 as permanent and caches it until restart, so one
//! bad minute of the registry turned valid records into dead letters. Here the rule is the
//! pipeline's: only a value that fails a schema the registry really has, or a frame naming an
//! id the registry says it does not have, is poison. Every other registry answer is
//! [`CodecError::RegistryUnavailable`], retried by the caller and never remembered.
//!
//! Error texts name the field and the rule that failed, never the value: a dead letter's error
//! must stay small whatever the record, and must not copy its content a second time.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonschema::error::ValidationErrorKind;
use serde::Deserialize;
use serde_json::Value;

use crate::contract::records::{MAX_ERROR_BYTES, TopicRecord, cut_text};

/// The first byte of a Confluent-framed value; a plain JSON value starts with `{` instead.
const CONFLUENT_MAGIC_BYTE: u8 = 0;
const FRAME_HEADER_LEN: usize = 5;
const COMPATIBILITY: &str = "BACKWARD";
/// The registry's error code for "no schema with this id".
const SCHEMA_NOT_FOUND: u64 = 40403;
/// How many schema violations an error text lists.
const MAX_VIOLATIONS_LISTED: usize = 5;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL of the Confluent-compatible API, e.g. `http://127.0.0.1:8081/apis/ccompat/v7`.
    pub url: String,
    /// One registry call, answer included.
    #[serde(alias = "timeout_ms", deserialize_with = "crate::runtime::duration::millis_or_humantime")]
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The registry could not be reached, timed out, or answered anything but a definite "no":
    /// worth retrying, and never a reason to dead-letter a record.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// The registry refused the request, e.g. an incompatible schema change.
    #[error("schema registry refused: {0}")]
    RegistryRefused(String),
    /// A record from a topic the reader does not read: a wiring mistake, not a bad record.
    #[error("a record from {0}, which this stage does not read")]
    UnexpectedTopic(String),
    /// The record itself is bad: it can never be decoded, so it belongs on the dead-letter topic.
    #[error("{kind}: {message}")]
    Poison { kind: PoisonKind, message: String },
}

impl CodecError {
    fn poison(kind: PoisonKind, message: impl AsRef<str>) -> Self {
        CodecError::Poison { kind, message: cut_text(message.as_ref(), MAX_ERROR_BYTES) }
    }
}

/// Why a record is poison; the label is bounded, for metrics and dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonKind {
    /// Not JSON, or a Confluent frame that is cut short or names a schema the registry lacks.
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

/// A topic's schema as this process validates against it: compiled once, with its registered id.
struct ReaderSchema {
    id: u32,
    validator: Arc<jsonschema::Validator>,
}

pub struct SchemaCodec {
    base_url: String,
    http: reqwest::Client,
    /// Per topic, the registered schema that every value written or read is validated against.
    readers: Mutex<HashMap<&'static str, Arc<ReaderSchema>>>,
    /// Schema ids the registry has confirmed. Only confirmations are kept: a failed look-up is
    /// asked again next time.
    known_ids: Mutex<HashSet<u32>>,
}

impl SchemaCodec {
    pub fn new(cfg: &SchemaRegistryConfig) -> Result<Self, CodecError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| CodecError::RegistryUnavailable(e.to_string()))?;
        Ok(SchemaCodec {
            base_url: cfg.url.trim_end_matches('/').to_owned(),
            http,
            readers: Mutex::new(HashMap::new()),
            known_ids: Mutex::new(HashSet::new()),
        })
    }

    /// Sets `<topic>-value` to BACKWARD compatibility and registers `R`'s schema under it.
    /// Registering a schema the subject already holds returns its existing id.
    pub async fn register<R: TopicRecord>(&self) -> Result<u32, CodecError> {
        Ok(self.reader::<R>().await?.id)
    }

    async fn reader<R: TopicRecord>(&self) -> Result<Arc<ReaderSchema>, CodecError> {
        self.reader_for(R::TOPIC, R::SCHEMA).await
    }

    async fn reader_for(
        &self,
        topic: &'static str,
        schema: &'static str,
    ) -> Result<Arc<ReaderSchema>, CodecError> {
        if let Some(reader) = self.readers.lock().expect("not poisoned").get(topic) {
            return Ok(reader.clone());
        }
        let parsed: Value = serde_json::from_str(schema)
            .map_err(|e| CodecError::RegistryRefused(format!("{topic}'s schema is not JSON: {e}")))?;
        let validator = jsonschema::validator_for(&parsed)
            .map_err(|e| CodecError::RegistryRefused(format!("{topic}'s schema does not compile: {e}")))?;
        let id = self.register_schema(&subject(topic), schema).await?;
        let reader = Arc::new(ReaderSchema { id, validator: Arc::new(validator) });
        self.readers.lock().expect("not poisoned").insert(topic, reader.clone());
        self.known_ids.lock().expect("not poisoned").insert(id);
        Ok(reader)
    }

    /// Sets a subject's compatibility to BACKWARD, then registers `schema` under it.
    pub async fn register_schema(&self, subject: &str, schema: &str) -> Result<u32, CodecError> {
        self.set_backward_compatibility(subject).await?;
        #[derive(Deserialize)]
        struct Registered {
            id: u32,
        }
        let path = format!("/subjects/{subject}/versions");
        let body = serde_json::json!({ "schemaType": "JSON", "schema": schema });
        let response = self.send(self.http.post(self.url(&path)).json(&body), "POST", &path).await?;
        let status = response.status();
        if status.is_success() {
            let registered: Registered = response.json().await.map_err(|e| {
                CodecError::RegistryUnavailable(format!("POST {path}: unreadable answer: {e}"))
            })?;
            return Ok(registered.id);
        }
        let message = format!("POST {path}: {status}: {}", error_text(response).await);
        // 409 is an incompatible change and 422 an invalid schema: answers about the schema.
        if matches!(status.as_u16(), 409 | 422) {
            Err(CodecError::RegistryRefused(message))
        } else {
            Err(unavailable(message))
        }
    }

    async fn set_backward_compatibility(&self, subject: &str) -> Result<(), CodecError> {
        let path = format!("/config/{subject}");
        let request = self
            .http
            .put(self.url(&path))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(format!(r#"{{"compatibility":"{COMPATIBILITY}"}}"#));
        let response = self.send(request, "PUT", &path).await?;
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
        let message = format!("PUT {path}: {status}: {}", error_text(response).await);
        if status.is_client_error()
            && status.as_u16() != 404
            && status.as_u16() != 408
            && status.as_u16() != 429
        {
            Err(CodecError::RegistryRefused(message))
        } else {
            Err(unavailable(message))
        }
    }

    /// The compatibility level set on `subject`, if any.
    pub async fn compatibility_level(&self, subject: &str) -> Result<Option<String>, CodecError> {
        let path = format!("/config/{subject}");
        let response = self.send(self.http.get(self.url(&path)), "GET", &path).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(unavailable(format!("GET {path}: {}", response.status())));
        }
        let body: Value =
            response.json().await.map_err(|e| CodecError::RegistryUnavailable(format!("GET {path}: {e}")))?;
        Ok(body["compatibilityLevel"].as_str().map(str::to_owned))
    }

    /// Validates `record` against its topic's schema and frames it with the schema id.
    pub async fn encode<R: TopicRecord>(&self, record: &R) -> Result<Vec<u8>, CodecError> {
        let value = serde_json::to_value(record)
            .map_err(|e| CodecError::poison(PoisonKind::InvalidValue, e.to_string()))?;
        self.encode_value(R::TOPIC, R::SCHEMA, &value).await
    }

    /// [`SchemaCodec::encode`] for a record already turned into JSON: `schema` is the topic's.
    pub async fn encode_value(
        &self,
        topic: &'static str,
        schema: &'static str,
        value: &Value,
    ) -> Result<Vec<u8>, CodecError> {
        let reader = self.reader_for(topic, schema).await?;
        check(&reader.validator, value)?;
        let mut bytes = Vec::with_capacity(FRAME_HEADER_LEN + 256);
        bytes.push(CONFLUENT_MAGIC_BYTE);
        bytes.extend_from_slice(&reader.id.to_be_bytes());
        serde_json::to_writer(&mut bytes, value)
            .map_err(|e| CodecError::poison(PoisonKind::InvalidValue, e.to_string()))?;
        Ok(bytes)
    }

    /// Decodes a framed or plain-JSON value and validates it against `R`'s registered schema.
    pub async fn decode<R: TopicRecord>(&self, bytes: &[u8]) -> Result<R, CodecError> {
        let json = if bytes.first() == Some(&CONFLUENT_MAGIC_BYTE) {
            let Some(header) = bytes.get(..FRAME_HEADER_LEN) else {
                return Err(CodecError::poison(
                    PoisonKind::Malformed,
                    "Confluent frame shorter than its 5-byte header",
                ));
            };
            let id = u32::from_be_bytes(header[1..].try_into().expect("four bytes"));
            self.confirm_schema_id(id).await?;
            &bytes[FRAME_HEADER_LEN..]
        } else {
            bytes
        };
        let value: Value = serde_json::from_slice(json)
            .map_err(|e| CodecError::poison(PoisonKind::Malformed, format!("not JSON: {e}")))?;
        let reader = self.reader::<R>().await?;
        check(&reader.validator, &value)?;
        serde_json::from_value(value).map_err(|e| CodecError::poison(PoisonKind::InvalidValue, e.to_string()))
    }

    /// `Ok` once the registry says it has schema `id`; poison only when it says it has not.
    async fn confirm_schema_id(&self, id: u32) -> Result<(), CodecError> {
        if self.known_ids.lock().expect("not poisoned").contains(&id) {
            return Ok(());
        }
        let path = format!("/schemas/ids/{id}");
        let response = self.send(self.http.get(self.url(&path)), "GET", &path).await?;
        let status = response.status();
        if status.is_success() {
            self.known_ids.lock().expect("not poisoned").insert(id);
            return Ok(());
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == reqwest::StatusCode::NOT_FOUND && body["error_code"].as_u64() == Some(SCHEMA_NOT_FOUND) {
            return Err(CodecError::poison(
                PoisonKind::Malformed,
                format!("the frame names schema id {id}, which the registry does not have"),
            ));
        }
        Err(unavailable(format!("GET {path}: {status}")))
    }

    /// `Ok` when the registry answers.
    pub async fn check_reachable(&self) -> Result<(), CodecError> {
        let response = self.send(self.http.get(self.url("/config")), "GET", "/config").await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(unavailable(format!("GET /config: {}", response.status())))
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a request; a transport failure (refused, reset, timed out) is unavailability. The
    /// error names the path only: the base URL may carry credentials.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        path: &str,
    ) -> Result<reqwest::Response, CodecError> {
        request.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            };
            unavailable(format!("{method} {path}: {what}"))
        })
    }
}

fn unavailable(message: String) -> CodecError {
    CodecError::RegistryUnavailable(message)
}

/// The registry's own words about a refusal, bounded.
async fn error_text(response: reqwest::Response) -> String {
    let body = response.text().await.unwrap_or_default();
    cut_text(&body, 512)
}

/// `Ok` when `value` meets the schema; otherwise a schema violation naming each failing place
/// and rule, never the value found there.
fn check(validator: &jsonschema::Validator, value: &Value) -> Result<(), CodecError> {
    if validator.is_valid(value) {
        return Ok(());
    }
    let mut violations: Vec<String> = validator
        .iter_errors(value)
        .take(MAX_VIOLATIONS_LISTED)
        .map(|error| {
            let at = error.instance_path().to_string();
            let at = if at.is_empty() { "/".to_owned() } else { at };
            let rule = match error.kind() {
                ValidationErrorKind::Required { property } => format!("missing required property {property}"),
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    format!("properties not allowed: {}", unexpected.join(", "))
                }
                _ => format!("fails {}", error.schema_path()),
            };
            format!("at {at}: {rule}")
        })
        .collect();
    violations.dedup();
    Err(CodecError::poison(PoisonKind::SchemaViolation, violations.join("; ")))
}

/// The subject of a topic's values (the topic name strategy).
pub fn subject(topic: &str) -> String {
    format!("{topic}-value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(schema: Value) -> jsonschema::Validator {
        jsonschema::validator_for(&schema).unwrap()
    }

    #[test]
    fn a_violation_names_the_field_and_rule_but_never_the_value() {
        let v = validator(serde_json::json!({
            "type": "object", "additionalProperties": false, "required": ["leadId"],
            "properties": {"leadId": {"type": "string"}, "name": {"type": "string", "maxLength": 5}}
        }));
        let secret = "x".repeat(600_000);
        let Err(CodecError::Poison { kind, message }) =
            check(&v, &serde_json::json!({"name": secret, "extra": 1}))
        else {
            panic!("a violation")
        };
        assert_eq!(kind, PoisonKind::SchemaViolation);
        assert!(message.contains("leadId"), "{message}");
        assert!(message.contains("/name") && message.contains("maxLength"), "{message}");
        assert!(message.contains("extra"), "{message}");
        assert!(!message.contains("xxxx"), "the value is never in the error: {message}");
        assert!(message.len() <= MAX_ERROR_BYTES);
    }
}
