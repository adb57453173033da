//! Checks shared by the batch upsert and batch read bodies: HubSpot's JSON parsing is strict, so
//! a field it does not know is an error naming it, and an `idProperty` must be unique.

use serde_json::{Map, Value, json};

use super::properties::{EMAIL_PROPERTY, Properties};

/// HubSpot's batch limit.
pub const MAX_INPUTS: usize = 100;

/// A 400 `VALIDATION_ERROR`: its `message` and its `errors`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub message: String,
    pub errors: Vec<Value>,
    /// Whether it is about property values (`PROPERTY_DOESNT_EXIST` and the like), which the
    /// stats count apart: that is a configuration problem, not a bad lead.
    pub property_errors: bool,
}

impl Rejection {
    /// A malformed body: "Invalid input JSON" and one error per bad field.
    pub fn malformed(errors: Vec<(String, String)>) -> Rejection {
        let first = errors.first().map(|(at, problem)| format!("{at} {problem}")).unwrap_or_default();
        let errors = errors
            .into_iter()
            .map(|(at, problem)| json!({"message": format!("{at} {problem}"), "in": at}))
            .collect();
        Rejection { message: format!("Invalid input JSON: {first}"), errors, property_errors: false }
    }
}

/// Pushes an error for every key of `fields` not in `known`.
pub fn unknown_fields(
    fields: &Map<String, Value>,
    known: &[&str],
    at: &str,
    errors: &mut Vec<(String, String)>,
) {
    for key in fields.keys().filter(|k| !known.contains(&k.as_str())) {
        let location = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
        errors.push((location, "is not a recognized field".to_owned()));
    }
}

/// The `inputs` array, 1 to [`MAX_INPUTS`] long, or an empty slice and an error.
pub fn inputs<'a>(top: &'a Map<String, Value>, errors: &mut Vec<(String, String)>) -> &'a [Value] {
    let problem = match top.get("inputs") {
        Some(Value::Array(inputs)) if (1..=MAX_INPUTS).contains(&inputs.len()) => return inputs,
        Some(Value::Array(inputs)) => format!("must hold 1 to {MAX_INPUTS} items, got {}", inputs.len()),
        Some(_) => "must be an array".to_owned(),
        None => "is required".to_owned(),
    };
    errors.push(("inputs".to_owned(), problem));
    &[]
}

/// The body as a JSON object, or the error saying why not.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(top)) => Ok(top),
        Ok(_) => Err(Rejection::malformed(vec![("body".into(), "must be a JSON object".into())])),
        Err(e) => Err(Rejection::malformed(vec![("body".into(), format!("is not valid JSON: {e}"))])),
    }
}

/// Why `name` cannot be an `idProperty`, in HubSpot's words.
pub fn id_property_problem(properties: &Properties, name: &str) -> Option<String> {
    match properties.get(name) {
        None => Some(format!("Property {name} does not exist")),
        Some(p) if !p.has_unique_value && p.name != EMAIL_PROPERTY => {
            Some(format!("Unable to perform update/upsert by non-unique property: {name}"))
        }
        Some(_) => None,
    }
}
