//! The records that travel on LeadFlow's topics. Each type is bound to its topic and its JSON
//! Schema in `schemas/`, so the codec can only put a record on the topic whose contract it meets.
//! Field names are camelCase on the wire, as in the schemas.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::contract::project::{self, lead_key};
use crate::contract::topics;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A record type with a topic of its own.
pub trait TopicRecord: Serialize + DeserializeOwned + Send + Sync {
    /// The topic the record travels on.
    const TOPIC: &'static str;
    /// The record's JSON Schema, registered as `<topic>-value`.
    const SCHEMA: &'static str;
    /// The record key: on every lead topic, the lead's [`lead_key`] (its project and id), so
    /// that a lead's records share a partition.
    fn key(&self) -> Cow<'_, str>;
}

macro_rules! topic_record {
    ($ty:ty, $topic:expr, $schema_file:literal) => {
        impl TopicRecord for $ty {
            const TOPIC: &'static str = $topic;
            const SCHEMA: &'static str = include_str!(concat!("../../../schemas/", $schema_file));
            fn key(&self) -> Cow<'_, str> {
                lead_key(&self.project_id, &self.lead_id)
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameSubmitted {
    /// The lead's project; absent (in records written before projects) is the default one.
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
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
    /// The lead's project; absent (in records written before projects) is the default one.
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
    pub event_id: String,
    pub lead_id: String,
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub properties: serde_json::Map<String, serde_json::Value>,
    /// Present on an identity merge: this lead (an anonymous visitor's, say) becomes part of
    /// that one. Such a record scores nothing; the scorer moves the lead's applied events there
    /// and forwards the lead's later events (see docs/ARCHITECTURE.md, "Identity merges").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_into: Option<String>,
    /// On an event the scorer forwarded from a merged lead: that lead's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_from: Option<String>,
    /// How many merged leads have forwarded the event; 0 when it was sent to its lead directly.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hops: u32,
}
topic_record!(LeadEvent, topics::EVENTS, "LeadEvent.schema.json");

/// The most merged leads an event is forwarded through (the schema's bound on `hops`): a chain
/// longer than that is a cycle of merges, and the event goes to the dead-letter topic.
pub const MAX_FORWARD_HOPS: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrichmentStatus {
    Verified,
    #[serde(rename = "To Check")]
    ToCheck,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadEnriched {
    /// The lead's project; absent (in records written before projects) is the default one.
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
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
    /// The lead's project; absent (in records written before projects) is the default one.
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
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
    /// On the record that closes a merged lead: the lead it became part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
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
    /// The lead's project; absent (in records written before projects) is the default one.
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
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
    /// The lead's project; absent (in records written before projects) is the default one.
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
    pub lead_id: String,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// The CRM's copy differs from the read model (missing, older, or edited in the CRM), so
    /// the lead is delivered even though the read model counts it as synced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crm_differs: bool,
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
    /// The lead's project; absent (in records written before projects) is the default one.
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
    pub lead_id: String,
    pub version: u64,
    pub destination: String,
    pub status: DeliveryStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub delivered_at: OffsetDateTime,
}
topic_record!(CrmDelivery, topics::CRM_DELIVERIES, "CrmDelivery.schema.json");

/// One execution of an automation rule: the rule acted on a lead for one UTC day. The automator
/// writes exactly one per [`execution_key`](crate::model::automation::execution_key) (project,
/// rule, lead, UTC day), in the Kafka transaction of the batch that fired it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutomationExecuted {
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
    pub lead_id: String,
    pub rule_id: String,
    /// The revision of the rule that acted.
    pub rule_version: String,
    pub execution_key: String,
    /// `YYYY-MM-DD`: the UTC day of the trigger record's own time, never of the wall clock.
    pub utc_day: String,
    /// The condition's type, as in the rule (`entersStage`, `scoreCrosses`, ...).
    pub condition: String,
    /// The record whose change fired the rule.
    pub trigger: RecordPosition,
    /// The trigger's eventId, when it is a LeadScored record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_event_id: Option<String>,
    /// The trigger record's own time: a LeadScored's event timestamp, a LeadEnriched's
    /// enrichment time.
    #[serde(with = "time::serde::rfc3339")]
    pub trigger_at: OffsetDateTime,
    pub actions: Vec<ActionTaken>,
    pub outcome: ExecutionOutcome,
    #[serde(with = "time::serde::rfc3339")]
    pub executed_at: OffsetDateTime,
}
topic_record!(AutomationExecuted, topics::AUTOMATION_EXECUTIONS, "AutomationExecuted.schema.json");

/// What an execution did with one of its rule's actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionTaken {
    /// `webhook`, `notifySales` or `email`, as in the rule.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// The delivery's `Webhook-Id`: the same for every attempt, so receivers can drop repeats.
    /// Absent when nothing was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub outcome: ActionOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// A delivery is queued; its attempts are in the delivery log.
    Queued,
    /// The rule names a subscription the project does not have (deleted, or never made).
    SubscriptionNotFound,
    /// The subscription does not take this event kind.
    KindNotSubscribed,
    /// `notifySales` without a configured incoming-webhook URL, or `email` without an SMTP server.
    NotConfigured,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionOutcome {
    /// At least one action queued a delivery.
    Queued,
    /// The rule fired and was recorded for the day, but none of its actions could be queued.
    NothingQueued,
}

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
    Automator,
}

/// The one dead-letter shape for every failure stage: the error, where the record came from,
/// and its original bytes (base64), so that it can be inspected and replayed. A dead letter is
/// bounded whatever the record it replaces: the original key and value are kept whole up to
/// [`MAX_ORIGINAL_KEY_BYTES`] and [`MAX_ORIGINAL_VALUE_BYTES`], and beyond that as a prefix with
/// the original's size and SHA-256; the error text never holds the value and is cut at
/// [`MAX_ERROR_BYTES`]. So a dead letter always fits on the dead-letter topic, and writing it
/// can never stall the partition it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadLetter {
    /// The original record key as text (a lead key, when the record was well formed).
    pub lead_id: String,
    /// The project the original key names, when it names a valid one; else the default.
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
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
    /// The original key's and value's sizes in bytes and SHA-256s (hex), present with the bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_key_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_key_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_value_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_value_sha256: Option<String>,
    /// `true` when `originalKey` or `originalValue` holds only a prefix of the original.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
}
impl TopicRecord for DeadLetter {
    const TOPIC: &'static str = topics::DLQ;
    const SCHEMA: &'static str = include_str!("../../../schemas/DeadLetter.schema.json");
    /// The original record's key, as it was: a dead letter shares its source's partition.
    fn key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.lead_id)
    }
}

/// The schema's bound on a dead letter's `leadId`, which may be any record key.
const MAX_LEAD_ID_BYTES: usize = 1024;
/// The most of an original value a dead letter keeps (before base64, which adds a third).
pub const MAX_ORIGINAL_VALUE_BYTES: usize = 256 * 1024;
/// The most of an original key a dead letter keeps.
pub const MAX_ORIGINAL_KEY_BYTES: usize = 16 * 1024;
/// The most of an error text a dead letter keeps.
pub const MAX_ERROR_BYTES: usize = 2048;

/// Where a record sits: its topic, partition and offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordPosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl DeadLetter {
    /// The dead letter for the record at `source`: the lead id is the record key as text (lossy
    /// when it is not UTF-8), and the key and value travel as base64, bounded as the type says.
    pub fn for_record(
        stage: PipelineStage,
        error_kind: &str,
        error: &str,
        source: &RecordPosition,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        failed_at: OffsetDateTime,
    ) -> DeadLetter {
        let lead_id =
            key.map(|k| cut_text(&String::from_utf8_lossy(k), MAX_LEAD_ID_BYTES)).unwrap_or_default();
        let (named, _) = project::split_lead_key(&lead_id);
        let project_id = match project::check_project_id(named) {
            Ok(()) => named.to_owned(),
            Err(_) => project::default_project(),
        };
        let key = key.map(|k| Original::of(k, MAX_ORIGINAL_KEY_BYTES));
        let value = value.map(|v| Original::of(v, MAX_ORIGINAL_VALUE_BYTES));
        DeadLetter {
            lead_id,
            project_id,
            stage,
            error_kind: error_kind.to_owned(),
            error: cut_text(error, MAX_ERROR_BYTES),
            source_topic: Some(source.topic.clone()),
            source_partition: Some(source.partition),
            source_offset: Some(source.offset),
            truncated: key.as_ref().is_some_and(|k| k.truncated)
                || value.as_ref().is_some_and(|v| v.truncated),
            original_key_size: key.as_ref().map(|k| k.size),
            original_key_sha256: key.as_ref().map(|k| k.sha256.clone()),
            original_key: key.map(|k| k.base64),
            original_value_size: value.as_ref().map(|v| v.size),
            original_value_sha256: value.as_ref().map(|v| v.sha256.clone()),
            original_value: value.map(|v| v.base64),
            failed_at,
        }
    }

    /// The dead letter of an input that never was a Kafka record (a message posted to the
    /// gateway): no source position and no original key; `lead_key` names its lead when it has
    /// one (else the key is empty), and the value is bounded as [`DeadLetter::for_record`]'s.
    pub fn for_input(
        stage: PipelineStage,
        project_id: &str,
        lead_key: Option<&str>,
        error_kind: &str,
        error: &str,
        value: &[u8],
        failed_at: OffsetDateTime,
    ) -> DeadLetter {
        let value = Original::of(value, MAX_ORIGINAL_VALUE_BYTES);
        DeadLetter {
            lead_id: lead_key.map(|key| cut_text(key, MAX_LEAD_ID_BYTES)).unwrap_or_default(),
            project_id: project_id.to_owned(),
            stage,
            error_kind: error_kind.to_owned(),
            error: cut_text(error, MAX_ERROR_BYTES),
            source_topic: None,
            source_partition: None,
            source_offset: None,
            original_key: None,
            original_key_size: None,
            original_key_sha256: None,
            truncated: value.truncated,
            original_value_size: Some(value.size),
            original_value_sha256: Some(value.sha256),
            original_value: Some(value.base64),
            failed_at,
        }
    }
}

/// Original bytes as a dead letter keeps them.
struct Original {
    base64: String,
    size: u64,
    sha256: String,
    truncated: bool,
}

impl Original {
    fn of(bytes: &[u8], cap: usize) -> Original {
        use base64::Engine;
        use sha2::Digest;
        let kept = &bytes[..bytes.len().min(cap)];
        Original {
            base64: base64::engine::general_purpose::STANDARD.encode(kept),
            size: bytes.len() as u64,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            truncated: kept.len() < bytes.len(),
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
pub fn cut_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    const MARK: &str = "…";
    let limit = max.saturating_sub(MARK.len());
    let cut = (0..=limit).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    format!("{}{MARK}", &text[..cut])
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
            project_id: "default".into(),
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
            project_id: "default".into(),
            event_id: "evt1".into(),
            lead_id: "lead-1".into(),
            event_type: "page_view".into(),
            timestamp: AT,
            properties,
            merge_into: None,
            forwarded_from: None,
            hops: 0,
        })
        .unwrap();
        validate(&LeadEnriched {
            project_id: "default".into(),
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
            project_id: "default".into(),
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
            merged_into: None,
        })
        .unwrap();
        validate(&LeadReviewed {
            project_id: "default".into(),
            lead_id: "lead-1".into(),
            decision: ReviewDecision::Verified,
            reviewer: Some("grace@example.com".into()),
            note: None,
            reviewed_at: AT,
        })
        .unwrap();
        for crm_differs in [false, true] {
            validate(&CrmResyncRequested {
                project_id: "default".into(),
                lead_id: "lead-1".into(),
                version: 2,
                requested_at: AT,
                crm_differs,
            })
            .unwrap();
        }
        validate(&CrmDelivery {
            project_id: "default".into(),
            lead_id: "lead-1".into(),
            version: 3,
            destination: "http".into(),
            status: DeliveryStatus::Delivered,
            delivered_at: AT,
        })
        .unwrap();
        validate(&DeadLetter {
            lead_id: String::new(),
            project_id: "default".into(),
            stage: PipelineStage::CrmSink,
            error_kind: "schema_validation".into(),
            error: "missing leadId".into(),
            source_topic: Some(topics::EVENTS.into()),
            source_partition: Some(2),
            source_offset: Some(41),
            original_key: None,
            original_value: Some("e30=".into()),
            original_key_size: None,
            original_key_sha256: None,
            original_value_size: Some(2),
            original_value_sha256: Some(
                "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".into(),
            ),
            truncated: false,
            failed_at: AT,
        })
        .unwrap();
        for (outcome, action) in [
            (ExecutionOutcome::Queued, ActionOutcome::Queued),
            (ExecutionOutcome::NothingQueued, ActionOutcome::SubscriptionNotFound),
        ] {
            validate(&AutomationExecuted {
                project_id: "acme".into(),
                lead_id: "lead-1".into(),
                rule_id: "hot-to-slack".into(),
                rule_version: "v1".into(),
                execution_key: "acme/hot-to-slack/lead-1/2026-01-16".into(),
                utc_day: "2026-01-16".into(),
                condition: "entersStage".into(),
                trigger: RecordPosition { topic: topics::SCORES.into(), partition: 2, offset: 7 },
                trigger_event_id: Some("evt-1".into()),
                trigger_at: AT,
                actions: vec![ActionTaken {
                    kind: "webhook".into(),
                    subscription_id: Some("2b9c".into()),
                    message_id: Some(crate::model::webhook::message_id("k")),
                    outcome: action,
                }],
                outcome,
                executed_at: AT,
            })
            .unwrap();
        }
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
            &RecordPosition { topic: topics::NAMES.into(), partition: 3, offset: 17 },
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
        assert!(!letter.truncated, "a 2,000-byte key and a short value are kept whole");
        assert_eq!(letter.original_value_size, Some(value.len() as u64));
    }

    #[test]
    fn a_dead_letter_of_a_huge_record_is_bounded_and_names_the_whole_by_its_hash() {
        use base64::Engine;
        use sha2::Digest;
        let value = vec![b'x'; 900 * 1024];
        let key = vec![b'k'; 100 * 1024];
        let error = "e".repeat(10_000);
        let at = RecordPosition { topic: topics::EVENTS.into(), partition: 1, offset: 5 };
        let letter = DeadLetter::for_record(
            PipelineStage::Scorer,
            "malformed",
            &error,
            &at,
            Some(&key),
            Some(&value),
            AT,
        );
        validate(&letter).unwrap();
        assert!(letter.truncated);
        assert!(letter.error.len() <= MAX_ERROR_BYTES);
        let kept = base64::engine::general_purpose::STANDARD
            .decode(letter.original_value.as_deref().unwrap())
            .unwrap();
        assert_eq!(kept, &value[..MAX_ORIGINAL_VALUE_BYTES]);
        assert_eq!(letter.original_value_size, Some(value.len() as u64));
        assert_eq!(letter.original_value_sha256, Some(hex::encode(sha2::Sha256::digest(&value))));
        assert_eq!(letter.original_key_size, Some(key.len() as u64));
        let wire = serde_json::to_vec(&letter).unwrap();
        assert!(
            wire.len() < 400 * 1024,
            "a dead letter stays far below the topic's 1 MB: {} bytes",
            wire.len()
        );
    }

    #[test]
    fn a_record_names_its_project_and_one_written_before_projects_reads_as_the_default() {
        let before = r#"{"eventId":"e1","leadId":"lead-1","eventType":"page_view","timestamp":"2026-01-16T10:00:00Z"}"#;
        let event: LeadEvent = serde_json::from_str(before).unwrap();
        assert_eq!((event.project_id.as_str(), event.key().as_ref()), ("default", "lead-1"));
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            before,
            "a default-project record keeps its bytes"
        );

        let acme = LeadEvent { project_id: "acme".into(), ..event };
        assert_eq!(acme.key(), "acme/lead-1", "the project is part of the key, so the partition");
        let wire = serde_json::to_value(&acme).unwrap();
        assert_eq!(wire["projectId"], "acme");
        validate(&acme).unwrap();
        let bad = LeadEvent { project_id: "Acme Corp".into(), ..acme };
        assert!(validate(&bad).is_err(), "the schema refuses a project id outside the pattern");
    }

    #[test]
    fn an_inputs_dead_letter_keeps_its_project_and_lead_and_bounds_its_value() {
        use base64::Engine;
        let decoded = |letter: &DeadLetter| {
            base64::engine::general_purpose::STANDARD.decode(letter.original_value.as_ref().unwrap()).unwrap()
        };
        let message = br#"{"type":"track"}"#;
        let at = OffsetDateTime::UNIX_EPOCH;
        let letter = DeadLetter::for_input(
            PipelineStage::Gateway,
            "acme",
            Some("acme/u1"),
            "missing_event",
            "e",
            message,
            at,
        );
        assert_eq!((letter.lead_id.as_str(), letter.project_id.as_str()), ("acme/u1", "acme"));
        assert_eq!((decoded(&letter).as_slice(), letter.original_value_size), (&message[..], Some(16)));
        assert!(!letter.truncated && letter.source_topic.is_none() && letter.original_key.is_none());
        let keyless =
            DeadLetter::for_input(PipelineStage::Gateway, "acme", None, "missing_identity", "e", message, at);
        assert_eq!((keyless.lead_id.as_str(), keyless.project_id.as_str()), ("", "acme"));

        let large = vec![b'x'; MAX_ORIGINAL_VALUE_BYTES + 10];
        let error = "e".repeat(MAX_ERROR_BYTES * 2);
        let letter = DeadLetter::for_input(
            PipelineStage::Gateway,
            "acme",
            None,
            "message_too_large",
            &error,
            &large,
            at,
        );
        assert!(letter.truncated);
        assert_eq!(decoded(&letter).len(), MAX_ORIGINAL_VALUE_BYTES);
        assert_eq!(letter.original_value_size, Some(large.len() as u64));
        assert!(letter.error.len() <= MAX_ERROR_BYTES);
        validate(&letter).unwrap();
    }

    #[test]
    fn a_dead_letter_names_the_project_its_key_names() {
        let at = RecordPosition { topic: topics::EVENTS.into(), partition: 0, offset: 1 };
        let letter = |key: &str| {
            DeadLetter::for_record(
                PipelineStage::Scorer,
                "malformed",
                "x",
                &at,
                Some(key.as_bytes()),
                None,
                AT,
            )
        };
        let acme = letter("acme/lead-1");
        assert_eq!((acme.project_id.as_str(), acme.key().as_ref()), ("acme", "acme/lead-1"));
        validate(&acme).unwrap();
        assert_eq!(letter("lead-1").project_id, "default");
        assert_eq!(letter("Not A Project/x").project_id, "default", "an invalid prefix is no project");
    }

    #[test]
    fn cut_text_keeps_character_boundaries() {
        assert_eq!(cut_text("short", 10), "short");
        let cut = cut_text(&"é".repeat(100), 11);
        assert!(cut.len() <= 11 && cut.ends_with('…'), "{cut}");
    }

    #[test]
    fn status_and_stage_use_the_wire_spellings() {
        assert_eq!(serde_json::to_string(&EnrichmentStatus::ToCheck).unwrap(), "\"To Check\"");
        assert_eq!(serde_json::to_string(&Stage::Qualified).unwrap(), "\"qualified\"");
        assert_eq!(serde_json::to_string(&PipelineStage::CrmSink).unwrap(), "\"crm-sink\"");
    }
}
