//! HubSpot's contacts API on the wire, pure: the bodies the sink sends to the batch upsert, the
//! batch read and the properties API, and what it reads out of the answers (a 207's failed
//! inputs, an error body's reason and category, a 429's policy, a `Retry-After`). What to do
//! about an answer is the client's business ([`crate::http_destination`]); nothing here sends,
//! waits or decides.

use std::collections::HashMap;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The batch upsert endpoint, under the API root (HubSpot also serves a date-versioned path; the
/// paths are configurable, see [`crate::http_destination::HttpDestinationConfig`]).
pub const UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";
/// The batch read endpoint, under the API root.
pub const READ_PATH: &str = "/crm/v3/objects/contacts/batch/read";
/// The contact properties endpoint, under the API root.
pub const PROPERTIES_PATH: &str = "/crm/v3/properties/contacts";
/// HubSpot's limit on `inputs` per batch request.
pub const MAX_INPUTS: usize = 100;
/// The unique contact property that holds the lead id, the `idProperty` of every input.
pub const ID_PROPERTY: &str = "leadflow_id";
/// The contact property that holds the lead's version.
pub const VERSION_PROPERTY: &str = "leadflow_version";
/// The error code of a write to a property the account does not have.
pub const PROPERTY_DOESNT_EXIST: &str = "PROPERTY_DOESNT_EXIST";

/// `{"inputs": [...]}`, at most [`MAX_INPUTS`] of them.
#[derive(Debug, Serialize)]
pub struct BatchUpsertRequest<'a> {
    pub inputs: Vec<UpsertInput<'a>>,
}

impl BatchUpsertRequest<'_> {
    pub fn to_json(&self) -> String {
        // Strings, numbers and string-keyed maps only: nothing here can fail to serialize.
        serde_json::to_string(self).expect("a batch upsert request is plain JSON")
    }
}

/// One element of `inputs`: the contact whose [`ID_PROPERTY`] is `id`, created or updated with
/// `properties`. The four fields HubSpot documents, and no other: HubSpot has no idempotency key.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertInput<'a> {
    pub id_property: &'a str,
    pub id: &'a str,
    pub properties: Map<String, Value>,
    /// `leadId:version`: HubSpot echoes it in errors and its audit trail, so that a write can be
    /// traced to the version that made it.
    pub object_write_trace_id: String,
}

impl<'a> UpsertInput<'a> {
    /// The lead's contact, keyed by its lead id, with `version` as [`VERSION_PROPERTY`] among
    /// its properties.
    pub fn versioned(lead_id: &'a str, version: u64, properties: &Map<String, Value>) -> Self {
        let mut properties = properties.clone();
        properties.insert(VERSION_PROPERTY.to_owned(), Value::from(version));
        UpsertInput {
            id_property: ID_PROPERTY,
            id: lead_id,
            properties,
            object_write_trace_id: format!("{lead_id}:{version}"),
        }
    }
}

/// `POST /crm/v3/objects/contacts/batch/read` by [`ID_PROPERTY`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchReadRequest<'a> {
    pub id_property: &'a str,
    pub inputs: Vec<ReadInput<'a>>,
    pub properties: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct ReadInput<'a> {
    pub id: &'a str,
}

impl<'a> BatchReadRequest<'a> {
    /// The contacts of `lead_ids` (at most [`MAX_INPUTS`]), with `properties` and the two the
    /// sink always compares ([`ID_PROPERTY`], [`VERSION_PROPERTY`]).
    pub fn of(lead_ids: &[&'a str], properties: &[&'a str]) -> Self {
        let mut wanted = vec![ID_PROPERTY, VERSION_PROPERTY];
        wanted.extend(properties.iter().filter(|p| !wanted.contains(p)).copied().collect::<Vec<_>>());
        BatchReadRequest {
            id_property: ID_PROPERTY,
            inputs: lead_ids.iter().map(|id| ReadInput { id }).collect(),
            properties: wanted,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a batch read request is plain JSON")
    }
}

/// A 200 or 207 answer of the batch read or the batch upsert, as far as the sink reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAnswer {
    #[serde(default)]
    pub results: Vec<ContactRecord>,
    #[serde(default)]
    pub errors: Vec<BatchError>,
    #[serde(default)]
    pub num_errors: Option<u64>,
}

/// One contact of `results`. HubSpot keeps every property as text (or null).
#[derive(Debug, Deserialize)]
pub struct ContactRecord {
    /// HubSpot's own id of the contact.
    pub id: String,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

impl ContactRecord {
    /// The lead id the contact carries, if any.
    pub fn lead_id(&self) -> Option<&str> {
        self.properties.get(ID_PROPERTY).and_then(Value::as_str)
    }

    /// The `leadflow_version` the contact holds; `None` when absent or not a whole number.
    pub fn version(&self) -> Option<u64> {
        match self.properties.get(VERSION_PROPERTY)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A property as text, as HubSpot holds it: `None` for absent, null or empty.
    pub fn text(&self, property: &str) -> Option<String> {
        match self.properties.get(property)? {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// One element of a 207's `errors`.
#[derive(Debug, Deserialize)]
pub struct BatchError {
    pub category: Option<String>,
    pub message: Option<String>,
    #[serde(default)]
    pub context: Map<String, Value>,
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
}

impl BatchError {
    /// The input ids the error names (`context.id` or `context.ids`).
    pub fn ids(&self) -> Vec<String> {
        ["id", "ids"]
            .iter()
            .filter_map(|key| self.context.get(*key).and_then(Value::as_array))
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// The category, then the message: what a dead letter says of the refusal.
    pub fn reason(&self) -> String {
        let message = self.message.clone().unwrap_or_default();
        match &self.category {
            Some(category) => format!("{category}: {message}"),
            None => message,
        }
    }
}

impl BatchAnswer {
    pub fn parse(body: &[u8]) -> Option<BatchAnswer> {
        serde_json::from_slice(body).ok()
    }

    /// Each failed input id, with why; and how many errors named no input the sink can find.
    pub fn failures(&self) -> (HashMap<String, String>, usize) {
        let mut failed = HashMap::new();
        let mut unattributed = 0;
        for error in &self.errors {
            let ids = error.ids();
            if ids.is_empty() {
                unattributed += 1;
            }
            for id in ids {
                failed.insert(id, error.reason());
            }
        }
        (failed, unattributed)
    }
}

/// HubSpot's error body, as far as the sink reads it: `{status, message, correlationId,
/// category, errors?}` for a 4xx, `{…, errorType: "RATE_LIMIT", policyName}` for a 429, with more
/// fields that are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub message: Option<String>,
    pub category: Option<String>,
    pub policy_name: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
}

/// One element of an error body's `errors`: its `message`, and the field it is about in `in`
/// (`inputs[3].properties.email`).
#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    pub message: Option<String>,
    #[serde(rename = "in")]
    pub location: Option<String>,
    pub code: Option<String>,
    #[serde(default)]
    pub context: Map<String, Value>,
}

impl ErrorBody {
    /// `None` when the body is not HubSpot's error JSON (a proxy's HTML page, say).
    pub fn parse(body: &[u8]) -> Option<ErrorBody> {
        serde_json::from_slice(body).ok()
    }

    /// Each `errors[].message`, led by the field it names (`in`) unless the message already
    /// does, else `message`; empty when the body says neither.
    pub fn reason(&self) -> String {
        let fields: Vec<String> = self
            .errors
            .iter()
            .filter_map(|e| {
                let message = e.message.as_deref()?;
                Some(match e.location.as_deref() {
                    Some(at) if !message.contains(at) => format!("{at}: {message}"),
                    _ => message.to_owned(),
                })
            })
            .collect();
        if fields.is_empty() { self.message.clone().unwrap_or_default() } else { fields.join("; ") }
    }

    /// The properties the CRM says do not exist (`PROPERTY_DOESNT_EXIST`): a setup problem, not
    /// a bad lead. Empty when the refusal is something else.
    pub fn missing_properties(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .errors
            .iter()
            .filter(|e| e.code.as_deref() == Some(PROPERTY_DOESNT_EXIST))
            .flat_map(|e| match e.context.get("propertyName") {
                Some(Value::Array(names)) => {
                    names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect()
                }
                _ => vec!["?".to_owned()],
            })
            .collect();
        if missing.is_empty() && self.message.as_deref().is_some_and(|m| m.contains(PROPERTY_DOESNT_EXIST)) {
            missing.push("?".to_owned());
        }
        missing.sort();
        missing.dedup();
        missing
    }

    /// The upsert key itself cannot be used: [`ID_PROPERTY`] does not exist, or has no unique
    /// values ("Unable to perform update/upsert by non-unique property").
    pub fn id_property_unusable(&self) -> bool {
        self.message.as_deref().is_some_and(|m| {
            m.contains(ID_PROPERTY) && (m.contains("does not exist") || m.contains("non-unique"))
        })
    }

    /// The daily limit, rather than the ten-second one, refused the request.
    pub fn is_daily_limit(&self) -> bool {
        self.policy_name.as_deref() == Some("DAILY")
    }
}

/// `Retry-After` in its delta-seconds form; `None` when absent or in the HTTP-date form, which
/// HubSpot does not use.
pub fn retry_after_seconds(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
}

/// `X-HubSpot-RateLimit-Remaining` and `X-HubSpot-RateLimit-Interval-Milliseconds`: the requests
/// left in the current ten-second window and the window's length.
pub fn rate_limit_remaining(headers: &HeaderMap) -> Option<(u64, std::time::Duration)> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    let remaining = number("x-hubspot-ratelimit-remaining")?;
    let interval = number("x-hubspot-ratelimit-interval-milliseconds").unwrap_or(10_000);
    Some((remaining, std::time::Duration::from_millis(interval)))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_request_carries_each_contact_keyed_by_lead_id_with_its_version_and_trace_id() {
        let properties = Map::from_iter([("email".to_owned(), Value::from("a@b.co"))]);
        let request = BatchUpsertRequest { inputs: vec![UpsertInput::versioned("L1", 7, &properties)] };
        assert_eq!(
            request.to_json(),
            r#"{"inputs":[{"idProperty":"leadflow_id","id":"L1","properties":{"email":"a@b.co","leadflow_version":7},"objectWriteTraceId":"L1:7"}]}"#
        );
    }

    #[test]
    fn the_version_property_overrides_one_of_the_same_name() {
        let properties = Map::from_iter([(VERSION_PROPERTY.to_owned(), Value::from(1))]);
        let input = UpsertInput::versioned("L1", 7, &properties);
        assert_eq!(input.properties[VERSION_PROPERTY], 7);
    }

    #[test]
    fn retry_after_is_read_in_seconds_only() {
        let headers =
            |value: &str| HeaderMap::from_iter([(RETRY_AFTER, HeaderValue::from_str(value).unwrap())]);
        assert_eq!(retry_after_seconds(&headers("3")), Some(3));
        assert_eq!(retry_after_seconds(&headers(" 0 ")), Some(0));
        assert_eq!(retry_after_seconds(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after_seconds(&HeaderMap::new()), None);
    }

    #[test]
    fn an_error_body_gives_its_field_errors_then_its_message() {
        let reason = |body: Value| ErrorBody::parse(body.to_string().as_bytes()).unwrap().reason();
        let validation = json!({"status": "error", "message": "2 errors", "category": "VALIDATION_ERROR",
                          "errors": [{"message": "inputs[0].properties.email is not a valid email address",
                                      "in": "inputs[0].properties.email"},
                                     {"message": "inputs[0].id must be a non-empty string", "in": "inputs[0].id"}]});
        assert_eq!(
            reason(validation),
            "inputs[0].properties.email is not a valid email address; inputs[0].id must be a non-empty string"
        );
        let conflict =
            json!({"status": "error", "message": "Contact already exists", "category": "CONFLICT"});
        assert_eq!(reason(conflict), "Contact already exists");
        assert_eq!(reason(json!({"errors": [{"in": "inputs[0]"}]})), "");
        let hubspot = json!({"status": "error", "message": "Property values were not valid", "category": "VALIDATION_ERROR",
            "errors": [{"message": "Email address is invalid", "code": "INVALID_EMAIL", "in": "inputs[2].properties.email"}]});
        assert_eq!(
            reason(hubspot),
            "inputs[2].properties.email: Email address is invalid",
            "the field is named"
        );
        assert!(ErrorBody::parse(b"<html>oops</html>").is_none());
    }

    #[test]
    fn a_batch_read_asks_by_lead_id_for_the_version_and_the_id_first() {
        let request = BatchReadRequest::of(&["L1", "L2"], &["email", VERSION_PROPERTY]);
        assert_eq!(
            request.to_json(),
            r#"{"idProperty":"leadflow_id","inputs":[{"id":"L1"},{"id":"L2"}],"properties":["leadflow_id","leadflow_version","email"]}"#
        );
    }

    #[test]
    fn a_contact_read_back_gives_its_lead_id_version_and_text() {
        let answer = BatchAnswer::parse(
            json!({"status": "COMPLETE", "results": [
                {"id": "1001", "properties": {"leadflow_id": "L1", "leadflow_version": "12", "email": "", "company": null}},
                {"id": "1002", "properties": {"leadflow_id": "L2", "leadflow_version": 3, "country": "France"}},
                {"id": "1003", "properties": {"leadflow_version": "v9"}}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let [a, b, c] = &answer.results[..] else { panic!() };
        assert_eq!(
            (a.lead_id(), a.version(), a.text("email"), a.text("company")),
            (Some("L1"), Some(12), None, None)
        );
        assert_eq!((b.version(), b.text("country").as_deref()), (Some(3), Some("France")));
        assert_eq!((c.lead_id(), c.version()), (None, None));
    }

    #[test]
    fn a_multi_status_names_its_failed_inputs_and_counts_the_rest() {
        let answer = BatchAnswer::parse(
            json!({"status": "COMPLETE", "results": [{"id": "1", "properties": {}}], "numErrors": 3, "errors": [
                {"status": "error", "category": "CONFLICT", "message": "Contact already exists. Existing ID: 77",
                 "context": {"id": ["L2"], "existingId": ["77"]}},
                {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "gone", "context": {"ids": ["L3", "L4"]}},
                {"status": "error", "category": "VALIDATION_ERROR", "message": "something"}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let (failed, unattributed) = answer.failures();
        assert_eq!(failed["L2"], "CONFLICT: Contact already exists. Existing ID: 77");
        assert_eq!(failed["L4"], "OBJECT_NOT_FOUND: gone");
        assert_eq!((failed.len(), unattributed), (3, 1));
    }

    #[test]
    fn missing_properties_and_the_daily_limit_are_told_apart_from_other_refusals() {
        let body = |v: Value| ErrorBody::parse(v.to_string().as_bytes()).unwrap();
        let missing = body(json!({"status": "error", "category": "VALIDATION_ERROR",
            "message": "Property values were not valid: PROPERTY_DOESNT_EXIST",
            "errors": [{"message": "Property \"leadflow_stage\" does not exist", "code": "PROPERTY_DOESNT_EXIST",
                        "context": {"propertyName": ["leadflow_stage"]}}]}));
        assert_eq!(missing.missing_properties(), ["leadflow_stage"]);
        let by_message = body(json!({"status": "error", "message": "PROPERTY_DOESNT_EXIST somewhere"}));
        assert_eq!(by_message.missing_properties(), ["?"]);
        assert!(body(json!({"message": "bad email"})).missing_properties().is_empty());
        assert!(body(json!({"message": "Property leadflow_id does not exist"})).id_property_unusable());
        assert!(
            body(json!({"message": "Unable to perform update/upsert by non-unique property: leadflow_id"}))
                .id_property_unusable()
        );
        assert!(!body(json!({"message": "Property leadflow_stage does not exist"})).id_property_unusable());
        let daily = body(json!({"status": "error", "errorType": "RATE_LIMIT", "policyName": "DAILY"}));
        assert!(daily.is_daily_limit());
        assert!(
            !body(json!({"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"})).is_daily_limit()
        );
    }

    #[test]
    fn the_remaining_requests_come_from_hubspot_s_headers() {
        let headers = HeaderMap::from_iter([
            (
                reqwest::header::HeaderName::from_static("x-hubspot-ratelimit-remaining"),
                HeaderValue::from_static("7"),
            ),
            (
                reqwest::header::HeaderName::from_static("x-hubspot-ratelimit-interval-milliseconds"),
                HeaderValue::from_static("10000"),
            ),
        ]);
        assert_eq!(rate_limit_remaining(&headers), Some((7, std::time::Duration::from_secs(10))));
        assert_eq!(rate_limit_remaining(&HeaderMap::new()), None);
    }

    #[test]
    fn the_wire_constants_are_the_stand_ins() {
        assert_eq!(UPSERT_PATH, stand_ins::crm::UPSERT_PATH);
        assert_eq!(MAX_INPUTS, stand_ins::crm::MAX_INPUTS);
        assert_eq!(
            (ID_PROPERTY, VERSION_PROPERTY),
            (stand_ins::crm::ID_PROPERTY, stand_ins::crm::VERSION_PROPERTY)
        );
    }
}
