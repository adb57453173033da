//! The HubSpot mode's admin routes: what the CRM holds (and a person's edits and deletes), the
//! counters, the faults, the properties to precreate, and resets.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::super::faults::Faults;
use super::super::settings::Mode;
use super::contacts::Contact;
use super::properties::PropertySpec;
use super::state::HubSpotStats;
use super::{Shared, lock};

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"status": "error", "message": message}))).into_response()
}

/// Keyed by `leadflow_id` (internal id when it has none); an archived contact shows only when
/// no live one has its key.
pub async fn contacts(State(crm): State<Shared>) -> Json<Value> {
    let crm = lock(&crm);
    let mut keyed: BTreeMap<String, &Contact> = BTreeMap::new();
    for contact in crm.contacts.all() {
        let key = contact.properties.get("leadflow_id").unwrap_or(&contact.id).clone();
        if !contact.archived || !keyed.contains_key(&key) {
            keyed.insert(key, contact);
        }
    }
    Json(json!({ "contacts": keyed }))
}

pub async fn delete_contact(State(crm): State<Shared>, Path(key): Path<String>) -> StatusCode {
    match lock(&crm).contacts.archive(&key, OffsetDateTime::now_utc()) {
        true => StatusCode::NO_CONTENT,
        false => StatusCode::NOT_FOUND,
    }
}

/// `{"properties":{...}}`, merged as text (`null` or `""` clears), with no check but that the
/// contact exists.
pub async fn patch_contact(State(crm): State<Shared>, Path(key): Path<String>, body: Bytes) -> Response {
    let properties = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut body)) => match body.remove("properties") {
            Some(Value::Object(properties)) => properties,
            _ => return bad_request("the body must be {\"properties\": {...}}"),
        },
        _ => return bad_request("the body must be {\"properties\": {...}}"),
    };
    let values: Vec<(String, Option<String>)> = properties
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                Value::Null => None,
                Value::String(s) => Some(s).filter(|s| !s.is_empty()),
                other => Some(other.to_string()),
            };
            (name, text)
        })
        .collect();
    match lock(&crm).contacts.patch(&key, &values, OffsetDateTime::now_utc()) {
        Some(contact) => Json(json!(contact)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn stats(State(crm): State<Shared>) -> Json<HubSpotStats> {
    Json(lock(&crm).stats)
}

pub async fn get_faults(State(crm): State<Shared>) -> Json<Faults> {
    Json(lock(&crm).faults().clone())
}

pub async fn set_faults(State(crm): State<Shared>, body: Bytes) -> Response {
    match Faults::from_json(&body, Mode::HubSpot) {
        Ok(faults) => {
            lock(&crm).set_faults(faults.clone());
            Json(faults).into_response()
        }
        Err(message) => bad_request(&message),
    }
}

/// A JSON array of `{"name","type"?,"hasUniqueValue"?}`; names that exist are left as they are.
pub async fn precreate_properties(State(crm): State<Shared>, body: Bytes) -> Response {
    match serde_json::from_slice::<Vec<PropertySpec>>(&body) {
        Ok(specs) => {
            if let Some(problem) = specs.iter().find_map(|spec| spec.check().err()) {
                return bad_request(&problem);
            }
            let created = lock(&crm).precreate(&specs, OffsetDateTime::now_utc());
            Json(json!({ "created": created })).into_response()
        }
        Err(e) => bad_request(&e.to_string()),
    }
}

pub async fn reset(State(crm): State<Shared>) -> StatusCode {
    lock(&crm).reset(OffsetDateTime::now_utc());
    StatusCode::NO_CONTENT
}

pub async fn reset_daily(State(crm): State<Shared>) -> StatusCode {
    lock(&crm).limits.reset_daily();
    StatusCode::NO_CONTENT
}
