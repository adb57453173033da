//! The HTTP face: HubSpot's batch upsert for contacts, judged by [`Crm`], plus the admin endpoints
//! that steer the faults and show what the CRM holds.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header::RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::batch::{self, FieldError};
use super::conn::DropSwitch;
use super::faults::Faults;
use super::settings::Mode;
use super::state::{Admission, Crm};

pub const UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";

type Shared = Arc<Mutex<Crm>>;

/// The stand-in's routes over fresh state (no contacts, counters at zero, the burst window
/// starting now). Clones of the router share that state.
pub fn router(faults: Faults) -> Router {
    Router::new()
        .route(UPSERT_PATH, post(upsert))
        .route("/__admin/contacts", get(contacts))
        .route("/__admin/faults", put(set_faults).get(get_faults))
        .route("/__admin/stats", get(stats))
        .route("/__admin/reset", post(reset))
        .with_state(Arc::new(Mutex::new(Crm::new(faults, Instant::now()))))
}

// A panicking handler cannot leave the state half-updated in a way that matters to a test double.
fn lock(crm: &Shared) -> MutexGuard<'_, Crm> {
    crm.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn upsert(
    State(crm): State<Shared>,
    switch: Option<Extension<ConnectInfo<DropSwitch>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = lock(&crm).faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let mut crm = lock(&crm);
    match crm.admit(Instant::now()) {
        Admission::RateLimited { retry_after_s } => {
            let body = json!({"status": "error", "category": "RATE_LIMITS",
                              "message": "You have reached your burst limit."});
            let retry_after = [(RETRY_AFTER, HeaderValue::from(retry_after_s))];
            return (StatusCode::TOO_MANY_REQUESTS, retry_after, Json(body)).into_response();
        }
        Admission::Injected => {
            let body =
                json!({"status": "error", "category": "INTERNAL_ERROR", "message": "injected failure"});
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        }
        Admission::Admitted => {}
    }
    let header_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let batch = match batch::parse(&body, header_key) {
        Ok(batch) => batch,
        Err(errors) => return (StatusCode::BAD_REQUEST, Json(validation_error(&errors))).into_response(),
    };
    let (results, drop_connection) = crm.apply(batch, time::OffsetDateTime::now_utc());
    drop(crm);
    if drop_connection {
        if let Some(Extension(ConnectInfo(switch))) = switch {
            switch.trip();
        }
        // Never sent when served by `serve`; through the bare router there is no connection to drop.
        let body = json!({"status": "error", "category": "DROPPED_CONNECTION",
                          "message": "applied, then the connection would have been dropped"});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    }
    Json(json!({"status": "COMPLETE", "results": results})).into_response()
}

fn validation_error(errors: &[FieldError]) -> Value {
    let message = match errors {
        [one] => one.message.clone(),
        [first, ..] => format!("{} validation errors, the first: {}", errors.len(), first.message),
        [] => "invalid input".to_owned(),
    };
    json!({"status": "error", "message": message, "category": "VALIDATION_ERROR", "errors": errors})
}

async fn contacts(State(crm): State<Shared>) -> Json<Value> {
    Json(json!({"contacts": lock(&crm).contacts()}))
}

/// Takes the raw body so that a bad field is a 400 naming it, rather than axum's generic 422.
async fn set_faults(State(crm): State<Shared>, body: Bytes) -> Response {
    match Faults::from_json(&body, Mode::Versioned) {
        Ok(faults) => {
            lock(&crm).set_faults(faults.clone(), Instant::now());
            Json(faults).into_response()
        }
        Err(message) => {
            (StatusCode::BAD_REQUEST, Json(json!({"status": "error", "message": message}))).into_response()
        }
    }
}

async fn get_faults(State(crm): State<Shared>) -> Json<Faults> {
    Json(lock(&crm).faults().clone())
}

async fn stats(State(crm): State<Shared>) -> Json<super::Stats> {
    Json(lock(&crm).stats())
}

async fn reset(State(crm): State<Shared>) -> StatusCode {
    *lock(&crm) = Crm::new(Faults::default(), Instant::now());
    StatusCode::NO_CONTENT
}
