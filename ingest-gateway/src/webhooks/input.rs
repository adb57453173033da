//! The checks of a posted subscription, before its URL is: `{"url", "eventKinds",
//! "description"?}`, every broken field named. Pure.

use serde_json::Value;

use leadflow_core::model::webhook::payload::EventKind;

use crate::error::FieldError;

/// The most event kinds a subscription names.
pub const MAX_EVENT_KINDS: usize = 5;
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// Longer than any URL a receiver needs, short enough to keep every listing small.
pub const MAX_URL_CHARS: usize = 2048;

const FIELDS: &[&str] = &["url", "eventKinds", "description"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInput {
    pub url: String,
    /// Distinct names, in the order given.
    pub event_kinds: Vec<String>,
    pub description: Option<String>,
}

fn error(field: &str, reason: &'static str, message: impl Into<String>) -> FieldError {
    FieldError::new(field, reason, message)
}

pub fn subscription(body: &Value) -> Result<SubscriptionInput, Vec<FieldError>> {
    let Some(object) = body.as_object() else {
        return Err(vec![error("subscription", "invalid_type", "the body must be a JSON object")]);
    };
    let mut errors: Vec<FieldError> = object
        .keys()
        .filter(|k| !FIELDS.contains(&k.as_str()))
        .map(|k| error(k, "unknown_field", format!("unknown field {k:?}; known: {}", FIELDS.join(", "))))
        .collect();
    let url = match object.get("url") {
        None | Some(Value::Null) => {
            errors.push(error("url", "required", "url is required"));
            None
        }
        Some(Value::String(url)) if url.chars().count() > MAX_URL_CHARS => {
            errors.push(error("url", "too_long", format!("url must be at most {MAX_URL_CHARS} characters")));
            None
        }
        Some(Value::String(url)) if !url.chars().all(is_uri_char) => {
            errors.push(error(
                "url",
                "invalid_format",
                "url must be an absolute URI, written in RFC 3986's characters (percent-encode the others)",
            ));
            None
        }
        Some(Value::String(url)) => Some(url.clone()),
        Some(_) => {
            errors.push(error("url", "invalid_type", "url must be a string"));
            None
        }
    };
    let event_kinds = event_kinds(object.get("eventKinds"), &mut errors);
    let description = match object.get("description") {
        None => None,
        Some(Value::String(text)) if text.is_empty() => {
            errors.push(error("description", "empty", "description must not be empty; leave it out"));
            None
        }
        Some(Value::String(text)) if text.chars().count() > MAX_DESCRIPTION_CHARS => {
            errors.push(error(
                "description",
                "too_long",
                format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
            None
        }
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(error("description", "invalid_type", "description must be a string"));
            None
        }
    };
    match (url, event_kinds) {
        (Some(url), Some(event_kinds)) if errors.is_empty() => {
            Ok(SubscriptionInput { url, event_kinds, description })
        }
        _ => Err(errors),
    }
}

/// What RFC 3986 lets a URI hold: its unreserved and reserved characters and `%`. No space, no
/// control or non-ASCII character: a URL the WHATWG parser would quietly repair is refused
/// instead, so the URL stored is the one the client wrote.
fn is_uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// 1 to [`MAX_EVENT_KINDS`] distinct [`EventKind`] names, `webhook.test` excepted (every
/// subscription takes it).
fn event_kinds(value: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<Vec<String>> {
    let known: Vec<&str> =
        EventKind::ALL.iter().filter(|k| **k != EventKind::WebhookTest).map(|k| k.name()).collect();
    let items = match value {
        None | Some(Value::Null) => {
            errors.push(error("eventKinds", "required", "eventKinds is required"));
            return None;
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(error(
                "eventKinds",
                "invalid_type",
                "eventKinds must be an array of event kind names",
            ));
            return None;
        }
    };
    if items.is_empty() {
        errors.push(error(
            "eventKinds",
            "empty",
            format!("eventKinds must name at least one of {}", known.join(", ")),
        ));
        return None;
    }
    if items.len() > MAX_EVENT_KINDS {
        errors.push(error(
            "eventKinds",
            "too_many",
            format!("eventKinds names at most {MAX_EVENT_KINDS} kinds"),
        ));
        return None;
    }
    let before = errors.len();
    let mut kinds: Vec<String> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let field = format!("eventKinds[{index}]");
        match item.as_str() {
            None => errors.push(error(&field, "invalid_type", format!("{field} must be a string"))),
            Some(name) if !known.contains(&name) => errors.push(error(
                &field,
                "invalid_value",
                format!(
                    "{field} must be one of {}; got {name:?} (webhook.test goes to every subscription)",
                    known.join(", ")
                ),
            )),
            Some(name) if kinds.iter().any(|k| k == name) => {
                errors.push(error(&field, "invalid_value", format!("{field} repeats {name:?}")))
            }
            Some(name) => kinds.push(name.to_owned()),
        }
    }
    (errors.len() == before).then_some(kinds)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(body: Value) -> Vec<String> {
        subscription(&body).unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_subscription_takes_a_url_distinct_kinds_and_a_description() {
        let input = subscription(&json!({
            "url": "https://hooks.example.com/lf?a=1&b=%20", "eventKinds": ["lead.verified", "lead.entered_stage"],
            "description": "CRM bridge",
        }))
        .unwrap();
        assert_eq!(input.url, "https://hooks.example.com/lf?a=1&b=%20");
        assert_eq!(input.event_kinds, ["lead.verified", "lead.entered_stage"]);
        assert_eq!(input.description.as_deref(), Some("CRM bridge"));
    }

    #[test]
    fn every_broken_field_is_named() {
        assert_eq!(fields(json!({})), ["url", "eventKinds"]);
        assert_eq!(
            fields(json!({"url": 7, "eventKinds": "lead.verified", "secret": "x"})),
            ["secret", "url", "eventKinds"]
        );
        assert_eq!(fields(json!({"url": "https://a.example", "eventKinds": []})), ["eventKinds"]);
        assert_eq!(
            fields(
                json!({"url": "https://a.example", "eventKinds": ["lead.hot", "webhook.test", 3, "lead.verified", "lead.verified"]})
            ),
            ["eventKinds[0]", "eventKinds[1]", "eventKinds[2]", "eventKinds[4]"]
        );
        let six = json!({"url": "https://a.example", "eventKinds": vec!["lead.verified"; 6]});
        assert_eq!(subscription(&six).unwrap_err()[0].reason, "too_many");
        assert_eq!(
            fields(json!({"url": "https://a.example", "eventKinds": ["lead.verified"], "description": ""})),
            ["description"]
        );
        assert_eq!(fields(json!(["https://a.example"])), ["subscription"]);
        for url in [
            " https://a.example",
            "https://a.example/a b",
            "https://a.example/\u{e9}",
            "https://a.example/<x>",
        ] {
            assert_eq!(fields(json!({"url": url, "eventKinds": ["lead.verified"]})), ["url"], "{url:?}");
        }
        let null_description =
            json!({"url": "https://a.example", "eventKinds": ["lead.verified"], "description": null});
        assert_eq!(subscription(&null_description).unwrap_err()[0].reason, "invalid_type");
    }
}
