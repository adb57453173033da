//! The HubSpot mode's API routes: batch upsert, batch read and the properties API, each behind
//! the same gate (auth, latency, limits, injected 503) and answered with the rate-limit headers.

use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header::AUTHORIZATION};
use axum::response::Response;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::super::conn::DropSwitch;
use super::errors::{self, error_body, reply};
use super::limits::Budget;
use super::properties::{CreateError, problems_json};
use super::state::Call;
use super::{Shared, lock, read, upsert as body};

/// Auth, then (data calls) latency, then limits and (data calls) the injected 503. `Err` is the
/// answer that ends the request.
async fn gate(crm: &Shared, headers: &HeaderMap, call: Call) -> Result<Budget, Response> {
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let latency = {
        let mut crm = lock(crm);
        if let Err(status) = crm.authorize(call, authorization) {
            let budget = crm.peek_budget(Instant::now(), OffsetDateTime::now_utc().date());
            let refusal = match status {
                StatusCode::UNAUTHORIZED => errors::unauthorized(),
                _ => errors::missing_scopes(),
            };
            return Err(with_budget(refusal, budget));
        }
        crm.faults().latency_ms
    };
    if call != Call::Properties && latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let (budget, refusal) = lock(crm).admit(call, Instant::now(), OffsetDateTime::now_utc().date());
    match refusal {
        Some((status, body)) => Err(with_budget(reply(status, body), budget)),
        None => Ok(budget),
    }
}

fn with_budget(mut response: Response, budget: Budget) -> Response {
    for (name, value) in budget.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(HeaderName::from_static(name), value);
        }
    }
    response
}

pub async fn upsert(
    State(crm): State<Shared>,
    switch: Option<Extension<ConnectInfo<DropSwitch>>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let budget = match gate(&crm, &headers, Call::Upsert).await {
        Ok(budget) => budget,
        Err(refusal) => return refusal,
    };
    let (writes, late) = {
        let mut state = lock(&crm);
        match body::parse(&bytes, &state.properties) {
            Ok(writes) => (writes, state.late_delay()),
            Err(rejection) => {
                state.rejected(rejection.property_errors);
                return with_budget(errors::validation_error(&rejection.message, rejection.errors), budget);
            }
        }
    };
    let shared = crm.clone();
    let apply = move || lock(&shared).apply(&writes, OffsetDateTime::now_utc(), late.is_some());
    let ((status, answer), drop_connection) = match late {
        // hyper drops this handler when the client gives up; the held write must happen anyway.
        Some(delay) => match tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            apply()
        })
        .await
        {
            Ok(applied) => applied,
            Err(e) => (
                (StatusCode::INTERNAL_SERVER_ERROR, error_body("INTERNAL_ERROR", &e.to_string(), json!({}))),
                false,
            ),
        },
        None => apply(),
    };
    if drop_connection {
        if let Some(Extension(ConnectInfo(switch))) = switch {
            switch.trip();
        }
        // Never sent when served by `serve`; through the bare router there is no connection to drop.
        let body = error_body(
            "DROPPED_CONNECTION",
            "applied, then the connection would have been dropped",
            json!({}),
        );
        return with_budget(reply(StatusCode::INTERNAL_SERVER_ERROR, body), budget);
    }
    with_budget(reply(status, answer), budget)
}

pub async fn batch_read(State(crm): State<Shared>, headers: HeaderMap, bytes: Bytes) -> Response {
    let budget = match gate(&crm, &headers, Call::Read).await {
        Ok(budget) => budget,
        Err(refusal) => return refusal,
    };
    let mut state = lock(&crm);
    let answer = match read::parse(&bytes, &state.properties) {
        Ok(request) => {
            let (body, partial) = read::answer(&request, &state.contacts, &state.properties);
            state.stats.multi_status += u64::from(partial);
            reply(if partial { StatusCode::MULTI_STATUS } else { StatusCode::OK }, body)
        }
        Err(rejection) => {
            state.rejected(rejection.property_errors);
            errors::validation_error(&rejection.message, rejection.errors)
        }
    };
    with_budget(answer, budget)
}

pub async fn create_property(State(crm): State<Shared>, headers: HeaderMap, bytes: Bytes) -> Response {
    let budget = match gate(&crm, &headers, Call::Properties).await {
        Ok(budget) => budget,
        Err(refusal) => return refusal,
    };
    let body = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
    let mut state = lock(&crm);
    let answer = match state.properties.create(&body, OffsetDateTime::now_utc()) {
        Ok(property) => {
            let (json, unique) = (json!(property), property.has_unique_value.then(|| property.name.clone()));
            if let Some(name) = unique {
                state.contacts.add_unique(&name);
            }
            reply(StatusCode::CREATED, json)
        }
        Err(CreateError::Invalid(message, problems)) => {
            state.rejected(false);
            reply(
                StatusCode::BAD_REQUEST,
                error_body("VALIDATION_ERROR", &message, json!({"errors": problems_json(&problems)})),
            )
        }
        Err(CreateError::Exists(name)) => {
            let message = format!("Property named '{name}' already exists.");
            reply(StatusCode::CONFLICT, error_body("OBJECT_ALREADY_EXISTS", &message, json!({})))
        }
    };
    with_budget(answer, budget)
}

pub async fn list_properties(State(crm): State<Shared>, headers: HeaderMap) -> Response {
    let budget = match gate(&crm, &headers, Call::Properties).await {
        Ok(budget) => budget,
        Err(refusal) => return refusal,
    };
    let results: Vec<Value> = lock(&crm).properties.list().map(|p| json!(p)).collect();
    with_budget(reply(StatusCode::OK, json!({ "results": results })), budget)
}

pub async fn get_property(
    State(crm): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let budget = match gate(&crm, &headers, Call::Properties).await {
        Ok(budget) => budget,
        Err(refusal) => return refusal,
    };
    let answer = match lock(&crm).properties.get(&name) {
        Some(property) => reply(StatusCode::OK, json!(property)),
        None => {
            let message = format!("Unable to find property {name} for object type CONTACT");
            reply(StatusCode::NOT_FOUND, error_body("OBJECT_NOT_FOUND", &message, json!({})))
        }
    };
    with_budget(answer, budget)
}
