//! The records that travel on LeadFlow's topics. Each type is bound to its topic and its JSON
//! Schema in `schemas/`, so the codec can only put a record on the topic whose contract it meets.
//! Field names are camelCase on the wire, as in the schemas.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::contract::topics;

/// A record type with a topic of its own.
pub trait TopicRecord: Serialize + DeserializeOwned + Send + Sync {
    /// The topic the record travels on.
    const TOPIC: &'static str;
    /// The record's JSON Schema, registered as `<topic>-value`.
    const SCHEMA: &'static str;
    /// The record key: on every lead topic, the lead id, so that a lead's records share a
    /// partition.
    fn key(&self) -> &str;
}

macro_rules! topic_record {
    ($ty:ty, $topic:expr, $schema_file:literal) => {
        impl TopicRecord for $ty {
            const TOPIC: &'static str = $topic;
            const SCHEMA: &'static str = include_str!(concat!("../../../schemas/", $schema_file));
            fn key(&self) -> &str {
                &self.lead_id
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameSubmitted {
    pub lead_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
}
topic_record!(NameSubmitted, topics::NAMES, "NameSubmitted.schema.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadEvent {
    pub event_id: String,
    pub lead_id: String,
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub properties: serde_json::Map<String, serde_json::Value>,
}
topic_record!(LeadEvent, topics::EVENTS, "LeadEvent.schema.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrichmentStatus {
    Verified,
    #[serde(rename = "To Check")]
    ToCheck,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadEnriched {
    pub lead_id: String,
    pub name: String,
    /// As submitted: the enricher copies the profile along, so the crm-sink needs one topic per
    /// lead fact rather than a join with `leads.names.v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub probability: Option<f64>,
    pub status: EnrichmentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub provider: String,
    #[serde(with = "time::serde::rfc3339")]
    pub enriched_at: OffsetDateTime,
}
topic_record!(LeadEnriched, topics::ENRICHED, "LeadEnriched.schema.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Cold,
    Warm,
    Hot,
    Qualified,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadScored {
    pub lead_id: String,
    pub event_id: String,
    pub event_type: String,
    pub delta: f64,
    pub score: f64,
    pub stage: Stage,
    pub previous_stage: Option<Stage>,
    #[serde(with = "time::serde::rfc3339")]
    pub event_timestamp: OffsetDateTime,
    pub rules_version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub processed_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The lead's applied-event count once this record was made; orders a lead's states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_version: Option<u64>,
}
topic_record!(LeadScored, topics::SCORES, "LeadScored.schema.json");

/// A reviewer's decision on a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewDecision {
    Verified,
    Rejected,
}

/// A person's decision on a lead (usually a `To Check` one). It overrides the enrichment
/// status, and the newest decision wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadReviewed {
    pub lead_id: String,
    pub decision: ReviewDecision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub reviewed_at: OffsetDateTime,
}
topic_record!(LeadReviewed, topics::REVIEWS, "LeadReviewed.schema.json");

/// Asks the crm-sink to deliver a lead that its read model says is out of sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrmResyncRequested {
    pub lead_id: String,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
}
topic_record!(CrmResyncRequested, topics::CRM_RESYNC, "CrmResyncRequested.schema.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Delivered,
    DeadLettered,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrmDelivery {
    pub lead_id: String,
    pub version: u64,
    pub destination: String,
    pub status: DeliveryStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub delivered_at: OffsetDateTime,
}
topic_record!(CrmDelivery, topics::CRM_DELIVERIES, "CrmDelivery.schema.json");

/// The one key of `scoring.rules.v1`: compaction keeps the newest rule set.
pub const SCORING_RULES_KEY: &str = "scoring-rules";

/// Which pipeline stage gave up on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PipelineStage {
    Gateway,
    Enricher,
    Scorer,
    CrmSink,
}

/// The one dead-letter shape for every failure stage: the error, where the record came from,
/// and its original bytes (base64), so that it can be inspected and replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadLetter {
    pub lead_id: String,
    pub stage: PipelineStage,
    pub error_kind: String,
    pub error: String,
    #[serde(default)]
    pub source_topic: Option<String>,
    #[serde(default)]
    pub source_partition: Option<i32>,
    #[serde(default)]
    pub source_offset: Option<i64>,
    #[serde(default)]
    pub original_key: Option<String>,
    pub original_value: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
}
topic_record!(DeadLetter, topics::DLQ, "DeadLetter.schema.json");

/// The schema's bound on a dead letter's `leadId`, which may be any record key.
const MAX_LEAD_ID_BYTES: usize = 1024;

impl DeadLetter {
    /// The dead letter for a record read from `source_topic`: the lead id is the record key as
    /// text (lossy when it is not UTF-8), and the key and value travel as base64.
    #[allow(clippy::too_many_arguments)] // one per field of the shape, all needed
    pub fn for_record(
        stage: PipelineStage,
        error_kind: &str,
        error: impl Into<String>,
        source_topic: &str,
        source_partition: i32,
        source_offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        failed_at: OffsetDateTime,
    ) -> DeadLetter {
        use base64::Engine;
        let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut lead_id: String = key.map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
        if lead_id.len() > MAX_LEAD_ID_BYTES {
            let cut = (0..=MAX_LEAD_ID_BYTES).rev().find(|i| lead_id.is_char_boundary(*i)).unwrap_or(0);
            lead_id.truncate(cut);
        }
        DeadLetter {
            lead_id,
            stage,
            error_kind: error_kind.to_owned(),
            error: error.into(),
            source_topic: Some(source_topic.to_owned()),
            source_partition: Some(source_partition),
            source_offset: Some(source_offset),
            original_key: key.map(base64),
            original_value: value.map(base64),
            failed_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn validate<R: TopicRecord>(record: &R) -> Result<(), String> {
        let schema: serde_json::Value = serde_json::from_str(R::SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let value = serde_json::to_value(record).unwrap();
        validator.validate(&value).map_err(|e| format!("{}: {e}", R::TOPIC))
    }

    const AT: OffsetDateTime = datetime!(2026-01-16 10:00:00 UTC);

    #[test]
    fn every_record_type_serialises_to_a_value_its_schema_accepts() {
        validate(&NameSubmitted {
            lead_id: "lead-1".into(),
            name: "Zoë Ångström".into(),
            email: Some("zoe@example.com".into()),
            company: None,
            submitted_at: AT,
        })
        .unwrap();
        let mut properties = serde_json::Map::new();
        properties.insert("page".into(), "/pricing".into());
        validate(&LeadEvent {
            event_id: "evt1".into(),
            lead_id: "lead-1".into(),
            event_type: "page_view".into(),
            timestamp: AT,
            properties,
        })
        .unwrap();
        validate(&LeadEnriched {
            lead_id: "lead-1".into(),
            name: "Zoë".into(),
            email: Some("zoe@example.com".into()),
            company: Some("Analytical Engines".into()),
            country_code: None,
            country_name: None,
            probability: None,
            status: EnrichmentStatus::ToCheck,
            reason: Some("no_prediction".into()),
            provider: "nationalize".into(),
            enriched_at: AT,
        })
        .unwrap();
        validate(&LeadScored {
            lead_id: "lead-1".into(),
            event_id: "evt1".into(),
            event_type: "page_view".into(),
            delta: 5.0,
            score: 5.0,
            stage: Stage::Cold,
            previous_stage: None,
            event_timestamp: AT,
            rules_version: "v1".into(),
            processed_at: AT,
            late: true,
            reason: None,
            lead_version: Some(3),
        })
        .unwrap();
        validate(&LeadReviewed {
            lead_id: "lead-1".into(),
            decision: ReviewDecision::Verified,
            reviewer: Some("grace@example.com".into()),
            note: None,
            reviewed_at: AT,
        })
        .unwrap();
        validate(&CrmResyncRequested { lead_id: "lead-1".into(), version: 2, requested_at: AT }).unwrap();
        validate(&CrmDelivery {
            lead_id: "lead-1".into(),
            version: 3,
            destination: "http".into(),
            status: DeliveryStatus::Delivered,
            delivered_at: AT,
        })
        .unwrap();
        validate(&DeadLetter {
            lead_id: String::new(),
            stage: PipelineStage::CrmSink,
            error_kind: "schema_validation".into(),
            error: "missing leadId".into(),
            source_topic: Some(topics::EVENTS.into()),
            source_partition: Some(2),
            source_offset: Some(41),
            original_key: None,
            original_value: Some("e30=".into()),
            failed_at: AT,
        })
        .unwrap();
    }

    #[test]
    fn schemas_reject_what_the_types_would_not_produce() {
        let schema: serde_json::Value = serde_json::from_str(LeadEvent::SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let missing_lead = serde_json::json!({"eventId": "e", "eventType": "page_view", "timestamp": "2026-01-16T10:00:00Z"});
        assert!(!validator.is_valid(&missing_lead));
        let typo = serde_json::json!({"eventId": "e", "leadId": "l", "eventType": "page_view", "timestamp": "2026-01-16T10:00:00Z", "lead_id": "l"});
        assert!(!validator.is_valid(&typo), "unknown fields are rejected, so typos surface");
        let bad_type = serde_json::json!({"eventId": "e", "leadId": "l", "eventType": "Page View", "timestamp": "2026-01-16T10:00:00Z"});
        assert!(!validator.is_valid(&bad_type));
    }

    #[test]
    fn a_dead_letter_keeps_the_original_bytes_and_fits_its_schema() {
        use base64::Engine;
        let value = b"\xff not json";
        let long_key = "k".repeat(2000);
        let letter = DeadLetter::for_record(
            PipelineStage::Enricher,
            "malformed",
            "not JSON",
            topics::NAMES,
            3,
            17,
            Some(long_key.as_bytes()),
            Some(value),
            AT,
        );
        validate(&letter).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(letter.original_value.as_deref().unwrap())
            .unwrap();
        assert_eq!(decoded, value);
        assert_eq!(letter.lead_id.len(), 1024, "the key is cut to the schema's bound");
        assert_eq!((letter.source_partition, letter.source_offset), (Some(3), Some(17)));
    }

    #[test]
    fn status_and_stage_use_the_wire_spellings() {
        assert_eq!(serde_json::to_string(&EnrichmentStatus::ToCheck).unwrap(), "\"To Check\"");
        assert_eq!(serde_json::to_string(&Stage::Qualified).unwrap(), "\"qualified\"");
        assert_eq!(serde_json::to_string(&PipelineStage::CrmSink).unwrap(), "\"crm-sink\"");
    }
}
