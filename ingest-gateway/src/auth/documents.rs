//! The MongoDB documents the gateway owns (no other service reads them): `projects`, `api_keys`
//! and `rate_limits`. Field names are camelCase, as the shared design lists them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub const PROJECTS: &str = "projects";
pub const API_KEYS: &str = "api_keys";
pub const RATE_LIMITS: &str = "rate_limits";

/// A project, a tenant: `{_id, name, allowedOrigins, eventsPerMinute, eventTypes, createdAt}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub events_per_minute: Option<u32>,
    /// The Segment API's event names mapped to event types (`"Demo Requested"` → `demo_request`).
    /// Stored as `[{name, eventType}]`: an event name is free text, and MongoDB field names may
    /// not hold every text (`.` and a leading `$`).
    #[serde(default, with = "event_type_pairs")]
    pub event_types: BTreeMap<String, String>,
    #[serde(with = "bson_datetime")]
    pub created_at: OffsetDateTime,
}

/// One API key, stored by its id with the SHA-256 of the whole key text, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub scopes: Vec<crate::auth::scope::Scope>,
    #[serde(default)]
    pub events_per_minute: Option<u32>,
    /// Lowercase hex SHA-256 of the full key text.
    pub hash: String,
    #[serde(with = "bson_datetime")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "bson_datetime_option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A key's GCRA state: its theoretical arrival time, epoch microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitDoc {
    #[serde(rename = "_id")]
    pub key_id: String,
    pub tat: i64,
}

/// A project's event-name map as the array of pairs it is stored as.
mod event_type_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Pair {
        name: String,
        event_type: String,
    }

    pub fn serialize<S: Serializer>(map: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<Pair> = map
            .iter()
            .map(|(name, event_type)| Pair { name: name.clone(), event_type: event_type.clone() })
            .collect();
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
        let pairs = Vec::<Pair>::deserialize(d)?;
        Ok(pairs.into_iter().map(|p| (p.name, p.event_type)).collect())
    }
}

/// Times as BSON dates, so that they sort and show as dates in the shell.
mod bson_datetime {
    use mongodb::bson::DateTime;
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&to_bson(*at), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        Ok(from_bson(DateTime::deserialize(d)?))
    }

    pub fn to_bson(at: OffsetDateTime) -> DateTime {
        DateTime::from_millis((at.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn from_bson(at: DateTime) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.timestamp_millis()) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

mod bson_datetime_option {
    use mongodb::bson::DateTime;
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(at: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&at.map(super::bson_datetime::to_bson), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
        Ok(Option::<DateTime>::deserialize(d)?.map(super::bson_datetime::from_bson))
    }
}

pub use bson_datetime::to_bson as bson_date;
