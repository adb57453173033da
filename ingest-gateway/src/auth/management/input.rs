//! The management API's bodies, checked field by field, pure: every broken rule is a
//! [`FieldError`] naming its field, and any of them makes the request a 400 before any write.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use leadflow_core::contract::project::check_project_id;

use crate::auth::MAX_EVENTS_PER_MINUTE;
use crate::auth::scope::Scope;
use crate::auth::store::ProjectChanges;
use crate::error::FieldError;
use crate::write::validation::{expect_object, optional_string, reject_unknown, required_string};

pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_ORIGINS: usize = 50;
pub const MAX_ORIGIN_CHARS: usize = 256;
/// `eventTypes`: at most this many event names, each 1..=256 characters.
pub const MAX_EVENT_TYPES: usize = 200;
pub const MAX_EVENT_NAME_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProject {
    pub id: String,
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub events_per_minute: Option<u32>,
    pub event_types: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKeyRequest {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub events_per_minute: Option<u32>,
}

pub fn checked_project_id(field: &str, id: &str) -> Result<(), FieldError> {
    check_project_id(id).map_err(|e| FieldError::new(field, e.reason(), format!("{field}: {e}")))
}

fn name(object: &Map<String, Value>, required: bool, errors: &mut Vec<FieldError>) -> Option<String> {
    let text = if required {
        required_string(object, "name", errors)
    } else {
        optional_string(object, "name", errors)
    }?;
    if text.trim().is_empty() {
        errors.push(FieldError::new("name", "empty", "name must not be blank"));
        return None;
    }
    if text.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            "name",
            "too_long",
            format!("name must be at most {MAX_NAME_CHARS} characters"),
        ));
        return None;
    }
    Some(text.to_owned())
}

/// `scheme://host[:port]` with scheme http or https, no path, query, fragment or user: what a
/// browser sends as `Origin`. Returned lowercased, as browsers send it.
pub fn check_origin(field: &str, origin: &str) -> Result<String, FieldError> {
    let bad = |why: &str| {
        FieldError::new(
            field,
            "invalid_format",
            format!("{field} must be scheme://host[:port] ({why}), e.g. https://app.example.com"),
        )
    };
    if origin.chars().count() > MAX_ORIGIN_CHARS {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("{field} must be at most {MAX_ORIGIN_CHARS} characters"),
        ));
    }
    let lower = origin.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(bad("the scheme must be http or https"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (inside, after) = v6.split_once(']').ok_or_else(|| bad("an unclosed IPv6 address"))?;
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err(bad("not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or_else(|| bad("only a port may follow the host"))?),
        };
        (inside, port)
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let host_ok = !host.is_empty()
        && (rest.starts_with('[') || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    if !host_ok {
        return Err(bad("no path, query, user or other characters; just the host"));
    }
    if let Some(port) = port
        && !(port.chars().all(|c| c.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err(bad("the port must be 1-65535"));
    }
    Ok(lower)
}

fn origins(object: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Vec<String>> {
    let value = object.get("allowedOrigins")?;
    let Some(items) = value.as_array() else {
        errors.push(FieldError::new(
            "allowedOrigins",
            "invalid_type",
            "allowedOrigins must be an array of origins",
        ));
        return None;
    };
    if items.len() > MAX_ORIGINS {
        errors.push(FieldError::new(
            "allowedOrigins",
            "too_many",
            format!("allowedOrigins may hold at most {MAX_ORIGINS} origins"),
        ));
        return None;
    }
    let mut found = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("allowedOrigins[{i}]");
        match item.as_str() {
            None => errors.push(FieldError::new(&field, "invalid_type", format!("{field} must be a string"))),
            Some(text) => match check_origin(&field, text) {
                Ok(origin) if !found.contains(&origin) => found.push(origin),
                Ok(_) => {}
                Err(e) => errors.push(e),
            },
        }
    }
    Some(found)
}

/// `eventsPerMinute`: absent is `None`; `null` is `Some(None)` where `nullable` (PATCH clears).
fn events_per_minute(
    object: &Map<String, Value>,
    nullable: bool,
    errors: &mut Vec<FieldError>,
) -> Option<Option<u32>> {
    let field = "eventsPerMinute";
    match object.get(field)? {
        Value::Null if nullable => Some(None),
        // JSON Schema's `integer` is any number without a fraction: `600.0` is 600.
        value => {
            match value.as_u64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as u64)) {
                Some(n) if (1..=u64::from(MAX_EVENTS_PER_MINUTE)).contains(&n) => Some(Some(n as u32)),
                _ => {
                    let reason = if value.is_number() { "invalid_value" } else { "invalid_type" };
                    errors.push(FieldError::new(
                        field,
                        reason,
                        format!("{field} must be a whole number 1..={MAX_EVENTS_PER_MINUTE}"),
                    ));
                    None
                }
            }
        }
    }
}

/// An event type as the write API takes it (`^[a-z][a-z0-9_]{0,63}$`).
fn is_event_type(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && text.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `eventTypes`: `{ "<Segment event name>": "<eventType>" }`; absent is `None`, and `null` is an
/// empty map where `nullable` (PATCH clears). Each broken entry names `eventTypes.<name>`.
fn event_types(
    object: &Map<String, Value>,
    nullable: bool,
    errors: &mut Vec<FieldError>,
) -> Option<BTreeMap<String, String>> {
    let field = "eventTypes";
    let entries = match object.get(field)? {
        Value::Null if nullable => return Some(BTreeMap::new()),
        Value::Object(entries) => entries,
        _ => {
            errors.push(FieldError::new(
                field,
                "invalid_type",
                "eventTypes must be an object of event names to event types",
            ));
            return None;
        }
    };
    if entries.len() > MAX_EVENT_TYPES {
        errors.push(FieldError::new(
            field,
            "too_many",
            format!("eventTypes may hold at most {MAX_EVENT_TYPES} event names"),
        ));
        return None;
    }
    let before = errors.len();
    let mut map = BTreeMap::new();
    for (name, value) in entries {
        let entry = format!("{field}.{name}");
        let length = name.chars().count();
        if length == 0 {
            errors.push(FieldError::new(&entry, "empty", "an event name in eventTypes must not be empty"));
            continue;
        }
        if length > MAX_EVENT_NAME_CHARS {
            errors.push(FieldError::new(
                &entry,
                "too_long",
                format!("an event name in eventTypes must be at most {MAX_EVENT_NAME_CHARS} characters"),
            ));
            continue;
        }
        match value.as_str() {
            Some(event_type) if is_event_type(event_type) => {
                map.insert(name.clone(), event_type.to_owned());
            }
            Some(_) => errors.push(FieldError::new(
                &entry,
                "invalid_format",
                format!("{entry} must match ^[a-z][a-z0-9_]{{0,63}}$"),
            )),
            None => errors.push(FieldError::new(&entry, "invalid_type", format!("{entry} must be a string"))),
        }
    }
    (errors.len() == before).then_some(map)
}

fn done<T>(value: T, errors: Vec<FieldError>) -> Result<T, Vec<FieldError>> {
    if errors.is_empty() { Ok(value) } else { Err(errors) }
}

/// `POST /api/projects`: `{id, name?, allowedOrigins?, eventsPerMinute?, eventTypes?}`.
pub fn new_project(body: &Value) -> Result<NewProject, Vec<FieldError>> {
    let object = expect_object(body, "body").map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    reject_unknown(object, &["id", "name", "allowedOrigins", "eventsPerMinute", "eventTypes"], &mut errors);
    let id = required_string(object, "id", &mut errors).map(str::to_owned);
    if let Some(id) = &id {
        errors.extend(checked_project_id("id", id).err());
    }
    let name = name(object, false, &mut errors);
    let allowed_origins = origins(object, &mut errors).unwrap_or_default();
    let events_per_minute = events_per_minute(object, false, &mut errors).flatten();
    let event_types = event_types(object, false, &mut errors).unwrap_or_default();
    let id = id.unwrap_or_default();
    done(
        NewProject {
            name: name.unwrap_or_else(|| id.clone()),
            id,
            allowed_origins,
            events_per_minute,
            event_types,
        },
        errors,
    )
}

/// `PATCH /api/projects/{id}`: `{name?, allowedOrigins?, eventsPerMinute? (null clears),
/// eventTypes? (replaces the map; null clears)}`.
pub fn project_changes(body: &Value) -> Result<ProjectChanges, Vec<FieldError>> {
    let object = expect_object(body, "body").map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    reject_unknown(object, &["name", "allowedOrigins", "eventsPerMinute", "eventTypes"], &mut errors);
    let changes = ProjectChanges {
        name: name(object, false, &mut errors),
        allowed_origins: origins(object, &mut errors),
        events_per_minute: events_per_minute(object, true, &mut errors),
        event_types: event_types(object, true, &mut errors),
    };
    done(changes, errors)
}

/// `POST /api/projects/{id}/keys`: `{name, scopes: [..] non-empty, eventsPerMinute?}`.
pub fn new_key(body: &Value) -> Result<NewKeyRequest, Vec<FieldError>> {
    let object = expect_object(body, "body").map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    reject_unknown(object, &["name", "scopes", "eventsPerMinute"], &mut errors);
    let name = name(object, true, &mut errors);
    let mut scopes = Vec::new();
    match object.get("scopes") {
        None | Some(Value::Null) => errors.push(FieldError::new("scopes", "required", "scopes is required")),
        Some(Value::Array(items)) if items.is_empty() => errors.push(FieldError::new(
            "scopes",
            "empty",
            "scopes must name at least one of ingest, read, admin",
        )),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str().and_then(Scope::parse) {
                    Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
                    Some(_) => {}
                    None => errors.push(FieldError::new(
                        format!("scopes[{i}]"),
                        "invalid_value",
                        format!("scopes[{i}] must be one of ingest, read, admin"),
                    )),
                }
            }
        }
        Some(_) => errors.push(FieldError::new("scopes", "invalid_type", "scopes must be an array")),
    }
    scopes.sort();
    let events_per_minute = events_per_minute(object, false, &mut errors).flatten();
    done(NewKeyRequest { name: name.unwrap_or_default(), scopes, events_per_minute }, errors)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(errors: Vec<FieldError>) -> Vec<(String, &'static str)> {
        errors.into_iter().map(|e| (e.field, e.reason)).collect()
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in
            ["https://app.example.com", "http://localhost:5173", "HTTPS://A.example", "http://[::1]:8080"]
        {
            assert!(check_origin("o", good).is_ok(), "{good}");
        }
        assert_eq!(check_origin("o", "HTTPS://A.example").unwrap(), "https://a.example");
        for bad in [
            "app.example.com",
            "ftp://x.example",
            "https://x.example/",
            "https://x.example/path",
            "https://x.example?q",
            "https://user@x.example",
            "https://x.example:0",
            "https://x.example:99999",
            "https://",
            "*",
        ] {
            assert!(check_origin("o", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_project_names_every_broken_field() {
        let project = new_project(&json!({"id": "acme"})).unwrap();
        assert_eq!((project.name.as_str(), project.events_per_minute), ("acme", None));
        let errors = new_project(&json!({
            "id": "Acme", "name": " ", "allowedOrigins": ["https://ok.example", "nope"],
            "eventsPerMinute": 0, "colour": "red",
        }))
        .unwrap_err();
        assert_eq!(
            fields(errors),
            vec![
                ("colour".into(), "unknown_field"),
                ("id".into(), "invalid_format"),
                ("name".into(), "empty"),
                ("allowedOrigins[1]".into(), "invalid_format"),
                ("eventsPerMinute".into(), "invalid_value"),
            ]
        );
        let many: Vec<String> = (0..51).map(|i| format!("https://h{i}.example")).collect();
        assert_eq!(
            fields(new_project(&json!({"id": "a", "allowedOrigins": many})).unwrap_err()),
            vec![("allowedOrigins".into(), "too_many")]
        );
        assert_eq!(fields(new_project(&json!({})).unwrap_err()), vec![("id".into(), "required")]);
    }

    #[test]
    fn event_types_map_names_to_event_types_and_name_each_broken_entry() {
        let project =
            new_project(&json!({"id": "a", "eventTypes": {"Demo Requested": "demo_request"}})).unwrap();
        assert_eq!(project.event_types.get("Demo Requested").map(String::as_str), Some("demo_request"));
        let errors = new_project(&json!({"id": "a", "eventTypes": {
            "Bad Type": "Demo", "Number": 3, "": "x", "ok": "signup", "Long": format!("a{}", "b".repeat(64)),
        }}))
        .unwrap_err();
        assert_eq!(
            fields(errors),
            vec![
                ("eventTypes.Bad Type".into(), "invalid_format"),
                ("eventTypes.Number".into(), "invalid_type"),
                ("eventTypes.".into(), "empty"),
                ("eventTypes.Long".into(), "invalid_format"),
            ]
        );
        let long_name = json!({"id": "a", "eventTypes": {"n".repeat(257): "x"}});
        assert_eq!(
            fields(new_project(&long_name).unwrap_err()),
            vec![(format!("eventTypes.{}", "n".repeat(257)), "too_long")]
        );
        let many: Map<String, Value> = (0..201).map(|i| (format!("e{i}"), json!("x"))).collect();
        assert_eq!(
            fields(new_project(&json!({"id": "a", "eventTypes": many})).unwrap_err()),
            vec![("eventTypes".into(), "too_many")]
        );
        assert_eq!(
            fields(new_project(&json!({"id": "a", "eventTypes": ["x"]})).unwrap_err()),
            vec![("eventTypes".into(), "invalid_type")]
        );
        assert_eq!(project_changes(&json!({"eventTypes": null})).unwrap().event_types, Some(BTreeMap::new()));
        assert!(new_project(&json!({"id": "a", "eventTypes": null})).is_err());
    }

    #[test]
    fn a_patch_may_clear_the_limit_and_a_key_needs_scopes() {
        let changes = project_changes(&json!({"eventsPerMinute": null})).unwrap();
        assert_eq!(changes.events_per_minute, Some(None));
        assert_eq!(project_changes(&json!({})).unwrap(), ProjectChanges::default());
        let key = new_key(
            &json!({"name": "ci", "scopes": ["read", "ingest", "read"], "eventsPerMinute": 10000000}),
        )
        .unwrap();
        assert_eq!(key.scopes, vec![Scope::Ingest, Scope::Read]);
        assert_eq!(
            fields(new_key(&json!({"name": "ci", "scopes": []})).unwrap_err()),
            vec![("scopes".into(), "empty")]
        );
        assert_eq!(
            fields(new_key(&json!({"scopes": ["write"], "eventsPerMinute": 10000001})).unwrap_err()),
            vec![
                ("name".into(), "required"),
                ("scopes[0]".into(), "invalid_value"),
                ("eventsPerMinute".into(), "invalid_value")
            ]
        );
    }
}
