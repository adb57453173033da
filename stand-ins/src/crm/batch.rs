//! Reads a batch-upsert body into [`Upsert`]s, or into every [`FieldError`] a 400 names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// HubSpot's batch limit.
pub const MAX_INPUTS: usize = 100;
/// The only `idProperty` the stand-in knows: contacts are keyed by LeadFlow's lead id.
pub const ID_PROPERTY: &str = "leadflow_id";
/// The property whose integer value orders writes to one contact.
pub const VERSION_PROPERTY: &str = "leadflow_version";
/// The property HubSpot checks is an email address.
pub const EMAIL_PROPERTY: &str = "email";

const INPUT_FIELDS: [&str; 5] = ["idProperty", "id", "properties", "idempotencyKey", "objectWriteTraceId"];

/// One validated input.
#[derive(Debug, Clone, PartialEq)]
pub struct Upsert {
    pub id: String,
    pub version: u64,
    pub properties: Map<String, Value>,
    pub idempotency_key: String,
}

/// One entry of a 400's `errors`: `in` is the path of the offending field, like
/// `inputs[3].properties.leadflow_version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldError {
    pub message: String,
    #[serde(rename = "in")]
    pub location: String,
}

fn field_error(location: &str, problem: &str) -> FieldError {
    FieldError { message: format!("{location} {problem}"), location: location.to_owned() }
}

/// Parses the body; `header_key` (the `Idempotency-Key` header) stands in for a missing
/// `idempotencyKey` only when the batch holds exactly one input.
pub fn parse(body: &[u8], header_key: Option<&str>) -> Result<Vec<Upsert>, Vec<FieldError>> {
    let top = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(top)) => top,
        Ok(_) => return Err(vec![field_error("body", "must be a JSON object")]),
        Err(e) => return Err(vec![field_error("body", &format!("is not valid JSON: {e}"))]),
    };
    let mut errors: Vec<_> =
        top.keys().filter(|k| *k != "inputs").map(|k| field_error(k, "is not a known field")).collect();
    let inputs = match top.get("inputs") {
        Some(Value::Array(inputs)) if (1..=MAX_INPUTS).contains(&inputs.len()) => inputs.as_slice(),
        Some(Value::Array(inputs)) => {
            let problem = format!("must hold 1 to {MAX_INPUTS} items, got {}", inputs.len());
            errors.push(field_error("inputs", &problem));
            &[]
        }
        Some(_) => {
            errors.push(field_error("inputs", "must be an array"));
            &[]
        }
        None => {
            errors.push(field_error("inputs", "is required"));
            &[]
        }
    };
    let fallback_key = header_key.filter(|_| inputs.len() == 1);
    let upserts: Vec<_> = inputs
        .iter()
        .enumerate()
        .filter_map(|(i, input)| parse_input(&format!("inputs[{i}]"), input, fallback_key, &mut errors))
        .collect();
    if errors.is_empty() { Ok(upserts) } else { Err(errors) }
}

fn parse_input(
    at: &str,
    input: &Value,
    fallback_key: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<Upsert> {
    let Value::Object(fields) = input else {
        errors.push(field_error(at, "must be an object"));
        return None;
    };
    let before = errors.len();
    let mut fail = |field: &str, problem: &str| errors.push(field_error(&format!("{at}.{field}"), problem));
    for key in fields.keys().filter(|k| !INPUT_FIELDS.contains(&k.as_str())) {
        fail(key, "is not a known field");
    }
    if fields.get("idProperty").and_then(Value::as_str) != Some(ID_PROPERTY) {
        fail("idProperty", &format!("must be \"{ID_PROPERTY}\""));
    }
    let id = non_empty(fields.get("id"));
    if id.is_none() {
        fail("id", "must be a non-empty string");
    }
    // HubSpot's own per-input field, `objectWriteTraceId`, serves as the key when there is none.
    let idempotency_key = match fields.get("idempotencyKey").or_else(|| fields.get("objectWriteTraceId")) {
        None if fallback_key.is_some() => fallback_key.map(str::to_owned),
        None => {
            fail(
                "idempotencyKey",
                "is required (or objectWriteTraceId, or an Idempotency-Key header for a lone input)",
            );
            None
        }
        key => non_empty(key).or_else(|| {
            fail("idempotencyKey", "must be a non-empty string");
            None
        }),
    };
    let mut version = None;
    match fields.get("properties") {
        Some(Value::Object(properties)) => {
            for (name, value) in properties {
                if !(value.is_string() || value.is_number()) {
                    fail(&format!("properties.{name}"), "must be a string or a number");
                } else if name == EMAIL_PROPERTY && !value.as_str().is_some_and(plausible_email) {
                    // The value stays out of the message: it is personal data, and clients log it.
                    fail(&format!("properties.{name}"), "is not a valid email address");
                }
            }
            version = match properties.get(VERSION_PROPERTY) {
                None => {
                    fail(&format!("properties.{VERSION_PROPERTY}"), "is required");
                    None
                }
                Some(value) => integer(value).or_else(|| {
                    fail(&format!("properties.{VERSION_PROPERTY}"), "must be a non-negative integer");
                    None
                }),
            };
        }
        _ => fail("properties", "must be an object"),
    }
    if errors.len() > before {
        return None;
    }
    let properties = fields.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    Some(Upsert { id: id?, version: version?, properties, idempotency_key: idempotency_key? })
}

fn non_empty(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A loose check, like HubSpot's: a non-empty local part, then `@`, then a domain (after the last
/// `@`) with a `.` somewhere other than its ends, and no whitespace anywhere.
pub(super) fn plausible_email(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else { return false };
    !local.is_empty()
        && domain.char_indices().any(|(i, c)| c == '.' && i > 0 && i + 1 < domain.len())
        && !address.chars().any(char::is_whitespace)
}

/// HubSpot stores every property as text, so `"7"` is as good as `7`.
fn integer(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(version: Value) -> Value {
        json!({"idProperty": "leadflow_id", "id": "L1", "idempotencyKey": "L1:1",
               "properties": {"leadflow_version": version, "score": 7}})
    }

    fn locations(body: &Value, header: Option<&str>) -> Vec<String> {
        let errors = parse(body.to_string().as_bytes(), header).unwrap_err();
        errors.into_iter().map(|e| e.location).collect()
    }

    #[test]
    fn a_valid_input_is_read_with_its_version_as_a_number_or_text() {
        for version in [json!(3), json!("3")] {
            let upserts = parse(json!({"inputs": [input(version)]}).to_string().as_bytes(), None).unwrap();
            assert_eq!((upserts[0].id.as_str(), upserts[0].version), ("L1", 3));
            assert_eq!(upserts[0].idempotency_key, "L1:1");
            assert_eq!(upserts[0].properties["score"], 7);
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad = input(json!(1.5));
        bad["properties"]["tags"] = json!(["a"]);
        bad["extra"] = json!(1);
        let body = json!({"inputs": [input(json!(1)), bad], "limit": 1});
        assert_eq!(
            locations(&body, None),
            [
                "limit",
                "inputs[1].extra",
                "inputs[1].properties.tags",
                "inputs[1].properties.leadflow_version"
            ]
        );
        assert_eq!(locations(&json!({"inputs": []}), None), ["inputs"]);
        assert_eq!(locations(&json!({}), None), ["inputs"]);
        assert_eq!(locations(&json!([1]), None), ["body"]);
    }

    #[test]
    fn a_plausible_email_passes_and_anything_else_is_a_field_error() {
        let with_email = |email: Value| {
            let mut input = input(json!(1));
            input["properties"]["email"] = email;
            json!({"inputs": [input]})
        };
        for good in ["ada@example.com", "a.b+tag@mail.example.co.uk", "x@y.z", "zoë@bücher.de", "a@b@c.de"]
        {
            let upserts = parse(with_email(json!(good)).to_string().as_bytes(), None).unwrap();
            assert_eq!(upserts[0].properties["email"], good);
        }
        let bad = [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@.com",
            "ada@example.",
            "ada @example.com",
            "ada@exam\tple.com",
        ];
        for bad in bad {
            let body = with_email(json!(bad));
            let errors = parse(body.to_string().as_bytes(), None).unwrap_err();
            assert_eq!(
                errors,
                [FieldError {
                    message: "inputs[0].properties.email is not a valid email address".into(),
                    location: "inputs[0].properties.email".into(),
                }],
                "{bad:?}"
            );
        }
        assert_eq!(locations(&with_email(json!(42)), None), ["inputs[0].properties.email"]);
        let mut array = with_email(json!(["a@b.c"]));
        assert_eq!(locations(&array, None), ["inputs[0].properties.email"], "one error, not two");
        array["inputs"][0]["properties"].as_object_mut().unwrap().remove("email");
        assert!(parse(array.to_string().as_bytes(), None).is_ok(), "email is optional");
    }

    #[test]
    fn the_header_key_stands_in_only_for_a_lone_input() {
        let mut keyless = input(json!(1));
        keyless.as_object_mut().unwrap().remove("idempotencyKey");
        let one = json!({"inputs": [keyless.clone()]});
        assert_eq!(parse(one.to_string().as_bytes(), Some("h")).unwrap()[0].idempotency_key, "h");
        assert_eq!(locations(&one, None), ["inputs[0].idempotencyKey"]);
        let two = json!({"inputs": [keyless.clone(), input(json!(2))]});
        assert_eq!(locations(&two, Some("h")), ["inputs[0].idempotencyKey"]);
        let mut traced = keyless;
        traced["objectWriteTraceId"] = json!("L1:1");
        let traced = json!({"inputs": [traced]});
        assert_eq!(parse(traced.to_string().as_bytes(), None).unwrap()[0].idempotency_key, "L1:1");
    }
}
