//! HubSpot's contacts batch upsert on the wire, pure: the request body the sink sends
//! to `POST /crm/v3/objects/contacts/batch/upsert`, and what it reads out of the answers (an
//! error body's reason, a 429's `Retry-After`). What to do about an answer is the client's
//! business ([`crate::http_destination`]); nothing here sends, waits or decides.

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The batch upsert endpoint, under the API root.
pub const UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";
/// HubSpot's limit on `inputs` per batch request.
pub const MAX_INPUTS: usize = 100;
/// The unique contact property that holds the lead id, the `idProperty` of every input.
pub const ID_PROPERTY: &str = "leadflow_id";
/// The contact property that holds the lead's version.
pub const VERSION_PROPERTY: &str = "leadflow_version";

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
/// `properties`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertInput<'a> {
    pub id_property: &'a str,
    pub id: &'a str,
    pub properties: Map<String, Value>,
    /// Not a field HubSpot documents (its own per-input field is `objectWriteTraceId`); the CRM
    /// stand-in requires it and recognises repeats by it.
    pub idempotency_key: String,
}

impl<'a> UpsertInput<'a> {
    /// The lead's contact, keyed by its lead id, with `version` as [`VERSION_PROPERTY`] among
    /// its properties.
    pub fn versioned(
        lead_id: &'a str,
        version: u64,
        properties: &Map<String, Value>,
        idempotency_key: String,
    ) -> Self {
        let mut properties = properties.clone();
        properties.insert(VERSION_PROPERTY.to_owned(), Value::from(version));
        UpsertInput { id_property: ID_PROPERTY, id: lead_id, properties, idempotency_key }
    }
}

/// HubSpot's error body, as far as the sink reads it: `{status, message, correlationId,
/// category, errors?}` for a 4xx, with more fields that are ignored.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
}

/// One element of an error body's `errors`; its `message` names the field.
#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    pub message: Option<String>,
}

impl ErrorBody {
    /// `None` when the body is not HubSpot's error JSON (a proxy's HTML page, say).
    pub fn parse(body: &[u8]) -> Option<ErrorBody> {
        serde_json::from_slice(body).ok()
    }

    /// Each `errors[].message`, since they name their field, else `message`; empty when the
    /// body says neither.
    pub fn reason(self) -> String {
        let fields: Vec<String> = self.errors.into_iter().filter_map(|e| e.message).collect();
        if fields.is_empty() { self.message.unwrap_or_default() } else { fields.join("; ") }
    }
}

/// `Retry-After` in its delta-seconds form; `None` when absent or in the HTTP-date form, which
/// HubSpot does not use.
pub fn retry_after_seconds(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_request_carries_each_contact_keyed_by_lead_id_with_its_version_and_key() {
        let properties = Map::from_iter([("email".to_owned(), Value::from("a@b.co"))]);
        let request =
            BatchUpsertRequest { inputs: vec![UpsertInput::versioned("L1", 7, &properties, "L1:7".into())] };
        assert_eq!(
            request.to_json(),
            r#"{"inputs":[{"idProperty":"leadflow_id","id":"L1","properties":{"email":"a@b.co","leadflow_version":7},"idempotencyKey":"L1:7"}]}"#
        );
    }

    #[test]
    fn the_version_property_overrides_one_of_the_same_name() {
        let properties = Map::from_iter([(VERSION_PROPERTY.to_owned(), Value::from(1))]);
        let input = UpsertInput::versioned("L1", 7, &properties, String::new());
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
        assert!(ErrorBody::parse(b"<html>oops</html>").is_none());
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
