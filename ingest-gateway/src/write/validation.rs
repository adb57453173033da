//! The write API's input rules, pure: JSON values in, records or field errors out. The clock is a
//! parameter, so every rule (including "not more than 5 minutes in the future") is testable.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use leadflow_core::contract::project::default_project;
use leadflow_core::contract::records::{LeadEvent, LeadReviewed, NameSubmitted, ReviewDecision};
use leadflow_core::model::scoring::ScoringRules;

use crate::error::FieldError;
use crate::ids::{MAX_ID_CHARS, check_lead_id};

pub const MAX_PROPERTIES_BYTES: usize = 5 * 1024;
/// `properties` may hold containers, and those containers may hold containers, but no deeper.
pub const MAX_PROPERTIES_DEPTH: usize = 2;
pub const MAX_FUTURE_SKEW: Duration = Duration::minutes(5);
pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_EMAIL_CHARS: usize = 320;
pub const MAX_COMPANY_CHARS: usize = 256;
pub const MAX_REVIEWER_CHARS: usize = 256;
pub const MAX_NOTE_CHARS: usize = 2000;
pub const MAX_EVENTS_PER_BATCH: usize = 500;
pub const MAX_NAMES_PER_BATCH: usize = 100;

/// Reads a value that must be a JSON object, naming `what` in the error.
pub fn expect_object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, FieldError> {
    value
        .as_object()
        .ok_or_else(|| FieldError::new(what, "invalid_type", format!("{what} must be a JSON object")))
}

pub fn reject_unknown(object: &Map<String, Value>, known: &[&str], errors: &mut Vec<FieldError>) {
    for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(FieldError::new(
            key.clone(),
            "unknown_field",
            format!("unknown field {key:?}; expected one of {}", known.join(", ")),
        ));
    }
}

/// `None` when absent; an error when present as anything but a string, `null` included (the
/// OpenAPI document types these fields `string`: a client leaves a field out, it never sends null).
pub fn optional_string<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match object.get(field) {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) => {
            errors.push(FieldError::new(
                field,
                "invalid_type",
                format!("{field} must be a string, not null; leave it out instead"),
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(field, "invalid_type", format!("{field} must be a string")));
            None
        }
    }
}

pub fn required_string<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    // A required field sent as null is missing: one error, `required`.
    if matches!(object.get(field), None | Some(Value::Null)) {
        errors.push(FieldError::new(field, "required", format!("{field} is required")));
        return None;
    }
    optional_string(object, field, errors)
}

/// At most `max` characters (not bytes: a name in any script counts what a person sees).
fn check_max_chars(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.chars().count() > max {
        return Err(FieldError::new(field, "too_long", format!("{field} must be at most {max} characters")));
    }
    Ok(())
}

/// `eventType`: `^[a-z][a-z0-9_]{0,63}$`.
pub fn check_event_type(event_type: &str) -> Result<(), FieldError> {
    let mut chars = event_type.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && event_type.len() <= 64 {
        Ok(())
    } else {
        Err(FieldError::new(
            "eventType",
            "invalid_format",
            "eventType must match ^[a-z][a-z0-9_]{0,63}$ (e.g. page_view)",
        ))
    }
}

/// How deeply containers nest inside `value`: 0 for a scalar, 1 for a flat object or array.
fn container_depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(container_depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(container_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// `properties`: an object of at most 5 KB serialised, with containers nested at most 2 deep
/// inside it (`{"a":{"b":{"c":1}}}` is the deepest allowed).
pub fn check_properties(value: &Value) -> Result<Map<String, Value>, FieldError> {
    let object = expect_object(value, "properties")?;
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_PROPERTIES_BYTES {
        return Err(FieldError::new(
            "properties",
            "too_large",
            format!("properties is {size} bytes serialised; the limit is {MAX_PROPERTIES_BYTES}"),
        ));
    }
    let depth = object.values().map(container_depth).max().unwrap_or(0);
    if depth > MAX_PROPERTIES_DEPTH {
        return Err(FieldError::new(
            "properties",
            "too_deep",
            format!("properties nests {depth} levels deep; the limit is {MAX_PROPERTIES_DEPTH}"),
        ));
    }
    Ok(object.clone())
}

/// `timestamp`: RFC 3339, not more than 5 minutes after `now`.
pub fn check_timestamp(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, FieldError> {
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        FieldError::new(
            "timestamp",
            "invalid_format",
            format!("timestamp must be RFC 3339, e.g. 2026-01-16T10:00:00Z ({e})"),
        )
    })?;
    if at > now + MAX_FUTURE_SKEW {
        return Err(FieldError::new(
            "timestamp",
            "in_future",
            format!("timestamp is more than {} minutes in the future", MAX_FUTURE_SKEW.whole_minutes()),
        ));
    }
    Ok(at)
}

const EVENT_FIELDS: &[&str] = &["eventId", "leadId", "eventType", "timestamp", "properties"];

/// Validates one posted event. A missing `eventId` becomes a new UUIDv7, a missing `timestamp`
/// becomes `now`. Every broken rule is reported, not just the first.
pub fn validate_event(value: &Value, now: OffsetDateTime) -> Result<LeadEvent, Vec<FieldError>> {
    let object = expect_object(value, "event").map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    reject_unknown(object, EVENT_FIELDS, &mut errors);

    let lead_id = required_string(object, "leadId", &mut errors);
    if let Some(id) = lead_id {
        errors.extend(check_lead_id("leadId", id).err());
    }
    let event_type = required_string(object, "eventType", &mut errors);
    if let Some(t) = event_type {
        errors.extend(check_event_type(t).err());
    }
    let event_id = optional_string(object, "eventId", &mut errors);
    if let Some(id) = event_id {
        if id.is_empty() {
            errors.push(FieldError::new(
                "eventId",
                "empty",
                "eventId must not be empty; omit it to have one generated",
            ));
        } else {
            errors.extend(check_max_chars("eventId", id, MAX_ID_CHARS).err());
        }
    }
    let timestamp = match optional_string(object, "timestamp", &mut errors) {
        Some(text) => check_timestamp(text, now).map_err(|e| errors.push(e)).ok(),
        None => Some(now),
    };
    let properties = match object.get("properties") {
        None => Some(Map::new()),
        Some(Value::Null) => {
            errors.push(FieldError::new(
                "properties",
                "invalid_type",
                "properties must be a JSON object, not null; leave it out instead",
            ));
            None
        }
        Some(p) => check_properties(p).map_err(|e| errors.push(e)).ok(),
    };

    match (errors.is_empty(), lead_id, event_type, timestamp, properties) {
        (true, Some(lead_id), Some(event_type), Some(timestamp), Some(properties)) => Ok(LeadEvent {
            // The handler stamps the caller's project.
            project_id: default_project(),
            event_id: event_id.map_or_else(|| Uuid::now_v7().to_string(), str::to_owned),
            lead_id: lead_id.to_owned(),
            event_type: event_type.to_owned(),
            timestamp,
            properties,
            merge_into: None,
            forwarded_from: None,
            hops: 0,
        }),
        _ => Err(errors),
    }
}

const LEAD_FIELDS: &[&str] = &["name", "email", "company", "leadId"];

/// Validates one submitted lead: `{"name", "email"?, "company"?, "leadId"?}`, or a bare name
/// string as an item of a `names` batch. Names are trimmed; a missing lead id is generated.
pub fn validate_lead(value: &Value, now: OffsetDateTime) -> Result<NameSubmitted, Vec<FieldError>> {
    if let Value::String(name) = value {
        return lead_from_parts(name, None, None, None, now).map_err(|e| vec![e]);
    }
    let object = expect_object(value, "lead").map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    reject_unknown(object, LEAD_FIELDS, &mut errors);
    let name = required_string(object, "name", &mut errors);
    let email = optional_string(object, "email", &mut errors);
    let company = optional_string(object, "company", &mut errors);
    let lead_id = optional_string(object, "leadId", &mut errors);
    match (errors.is_empty(), name) {
        (true, Some(name)) => lead_from_parts(name, email, company, lead_id, now).map_err(|e| vec![e]),
        _ => Err(errors),
    }
}

fn lead_from_parts(
    name: &str,
    email: Option<&str>,
    company: Option<&str>,
    lead_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<NameSubmitted, FieldError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(FieldError::new("name", "empty", "name must not be empty or blank"));
    }
    check_max_chars("name", name, MAX_NAME_CHARS)?;
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    if let Some(email) = email {
        let well_formed =
            email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !well_formed || email.chars().any(char::is_whitespace) {
            return Err(FieldError::new("email", "invalid_format", "email must look like name@example.com"));
        }
        check_max_chars("email", email, MAX_EMAIL_CHARS)?;
    }
    let company = company.map(str::trim).filter(|c| !c.is_empty());
    if let Some(company) = company {
        check_max_chars("company", company, MAX_COMPANY_CHARS)?;
    }

    if let Some(id) = lead_id {
        check_lead_id("leadId", id)?;
    }
    Ok(NameSubmitted {
        // The handler stamps the caller's project.
        project_id: default_project(),
        lead_id: lead_id.map_or_else(|| Uuid::now_v7().to_string(), str::to_owned),
        name: name.to_owned(),
        email: email.map(str::to_owned),
        company: company.map(str::to_owned),
        submitted_at: now,
    })
}

const REVIEW_FIELDS: &[&str] = &["decision", "reviewer", "note"];
/// A review's `decision`, as the record spells it.
const REVIEW_DECISIONS: &[(&str, ReviewDecision)] =
    &[("Verified", ReviewDecision::Verified), ("Rejected", ReviewDecision::Rejected)];

/// `decision`: exactly one of [`REVIEW_DECISIONS`] (case-sensitive). Every error lists them.
fn review_decision(object: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<ReviewDecision> {
    let allowed = REVIEW_DECISIONS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
    let (reason, message) = match object.get("decision") {
        Some(Value::String(given)) => {
            if let Some((_, decision)) = REVIEW_DECISIONS.iter().find(|(name, _)| name == given) {
                return Some(*decision);
            }
            ("invalid_value", format!("decision {given:?} is not one of {allowed}"))
        }
        None | Some(Value::Null) => ("required", format!("decision is required: one of {allowed}")),
        Some(_) => ("invalid_type", format!("decision must be a string: one of {allowed}")),
    };
    errors.push(FieldError::new("decision", reason, message));
    None
}

/// Validates `POST /api/leads/{id}/review`: the path's lead id (named `id`, checked as every
/// `leadId` is) and the body `{"decision", "reviewer"?, "note"?}`. `reviewer` is trimmed, and
/// blank means absent; `note` is kept as written. `now` becomes `reviewedAt`. Every broken rule
/// is reported, the path's id first.
pub fn validate_review(
    lead_id: &str,
    value: &Value,
    now: OffsetDateTime,
) -> Result<LeadReviewed, Vec<FieldError>> {
    let mut errors: Vec<FieldError> = check_lead_id("id", lead_id).err().into_iter().collect();
    let object = match expect_object(value, "review") {
        Ok(object) => object,
        Err(e) => {
            errors.push(e);
            return Err(errors);
        }
    };
    reject_unknown(object, REVIEW_FIELDS, &mut errors);
    let decision = review_decision(object, &mut errors);
    // The bound is on the value as sent, as the schema states it; then it is trimmed.
    let reviewer = optional_string(object, "reviewer", &mut errors);
    if let Some(reviewer) = reviewer {
        errors.extend(check_max_chars("reviewer", reviewer, MAX_REVIEWER_CHARS).err());
    }
    let reviewer = reviewer.map(str::trim).filter(|r| !r.is_empty());
    let note = optional_string(object, "note", &mut errors);
    if let Some(note) = note {
        errors.extend(check_max_chars("note", note, MAX_NOTE_CHARS).err());
    }
    match (errors.is_empty(), decision) {
        (true, Some(decision)) => Ok(LeadReviewed {
            // The handler stamps the caller's project.
            project_id: default_project(),
            lead_id: lead_id.to_owned(),
            decision,
            reviewer: reviewer.map(str::to_owned),
            note: note.map(str::to_owned),
            reviewed_at: now,
        }),
        _ => Err(errors),
    }
}

const RULES_FIELDS: &[&str] = &["version", "points", "stages", "decay", "dailyCaps"];
const STAGES_FIELDS: &[&str] = &["warm", "hot", "qualified"];
const DECAY_FIELDS: &[&str] = &["graceDays", "ratePerDay"];

/// `Some` when present as an object; an error when absent, null or of another type.
fn required_object<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a Map<String, Value>> {
    match object.get(field) {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(field, "required", format!("{field} is required")));
            None
        }
        Some(value) => expect_object(value, field).map_err(|e| errors.push(e)).ok(),
    }
}

/// The fields of the object at `path` (e.g. `decay`): only `known` ones, each a number. Errors
/// name the whole path (`decay.ratePerDay`) in `field` and in `message`.
fn check_numbers_object(
    object: &Map<String, Value>,
    path: &str,
    known: &[&str],
    errors: &mut Vec<FieldError>,
) {
    for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(FieldError::new(
            format!("{path}.{key}"),
            "unknown_field",
            format!("unknown field {path}.{key}; expected one of {}", known.join(", ")),
        ));
    }
    for name in known {
        let field = format!("{path}.{name}");
        match object.get(*name) {
            None | Some(Value::Null) => {
                let message = format!("{field} is required");
                errors.push(FieldError::new(field, "required", message));
            }
            Some(Value::Number(_)) => {}
            Some(_) => {
                let message = format!("{field} must be a number");
                errors.push(FieldError::new(field, "invalid_type", message));
            }
        }
    }
}

/// Validates a rule set for `PUT /api/scoring-rules`: first its shape (unknown, missing and
/// mistyped fields, each named by its JSON path such as `decay.ratePerDay`), then
/// [`ScoringRules::validate`], whose error names the field the same way. Map entries are named
/// as `validate` names them: `points."page_view"`.
pub fn validate_scoring_rules(value: &Value) -> Result<ScoringRules, Vec<FieldError>> {
    let object = expect_object(value, "rules").map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    reject_unknown(object, RULES_FIELDS, &mut errors);
    required_string(object, "version", &mut errors);
    if let Some(points) = required_object(object, "points", &mut errors) {
        for (event_type, points) in points {
            if !points.is_number() {
                let field = format!("points.{event_type:?}");
                let message = format!("{field} must be a number");
                errors.push(FieldError::new(field, "invalid_type", message));
            }
        }
    }
    for (field, known) in [("stages", STAGES_FIELDS), ("decay", DECAY_FIELDS)] {
        if let Some(inner) = required_object(object, field, &mut errors) {
            check_numbers_object(inner, field, known, &mut errors);
        }
    }
    // JSON Schema's `integer` is any number with no fractional part: `302.0` is one. Such caps
    // are read as the whole numbers they are.
    let mut whole_caps = Map::new();
    match object.get("dailyCaps") {
        None => {}
        Some(Value::Object(caps)) => {
            for (event_type, cap) in caps {
                let whole = cap.as_u64().or_else(|| {
                    cap.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
                        .map(|f| f as u64)
                });
                whole_caps.insert(event_type.clone(), whole.map_or(Value::Null, Value::from));
                if whole.is_none_or(|cap| cap > u64::from(u32::MAX)) {
                    let field = format!("dailyCaps.{event_type:?}");
                    let message = format!("{field} must be a whole number from 0 to {}", u32::MAX);
                    errors.push(FieldError::new(field, "invalid_type", message));
                }
            }
        }
        Some(_) => errors.push(FieldError::new(
            "dailyCaps",
            "invalid_type",
            "dailyCaps must be an object; omit it for no caps",
        )),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut value = value.clone();
    if object.contains_key("dailyCaps") {
        value["dailyCaps"] = Value::Object(whole_caps);
    }
    // The shape was checked above, so this only fails if the two disagree.
    let rules: ScoringRules = serde_json::from_value(value)
        .map_err(|e| vec![FieldError::new("rules", "invalid_type", e.to_string())])?;
    rules.validate().map_err(|e| vec![FieldError::new(e.field.clone(), "invalid_value", e.to_string())])?;
    Ok(rules)
}

/// A batch body: `{"<key>": [...]}` with at most `max` items.
pub fn batch_items<'a>(value: &'a Value, key: &str, max: usize) -> Result<&'a Vec<Value>, FieldError> {
    let object = expect_object(value, "body")?;
    if let Some(unknown) = object.keys().find(|k| *k != key) {
        return Err(FieldError::new(
            unknown.clone(),
            "unknown_field",
            format!("unknown field {unknown:?}; expected {key}"),
        ));
    }
    let items = match object.get(key) {
        None => {
            return Err(FieldError::new(key, "required", format!("{key} is required")));
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(FieldError::new(key, "invalid_type", format!("{key} must be an array")));
        }
    };
    if items.is_empty() {
        return Err(FieldError::new(key, "empty", format!("{key} must hold at least one item")));
    }
    if items.len() > max {
        return Err(FieldError::new(
            key,
            "too_many",
            format!("{key} holds {} items; the limit is {max}", items.len()),
        ));
    }
    Ok(items)
}

#[cfg(test)]
mod tests;
