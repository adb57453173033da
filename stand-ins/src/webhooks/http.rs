//! The HTTP face: a `POST` on any path is a delivery, judged by the [`Inbox`]; the admin
//! endpoints read it and steer the faults and secrets between test phases.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::Settings;
use super::faults::Faults;
use super::inbox::{Inbox, Received, Stats};
use super::signature::{Secrets, SignedHeaders};

type Shared = Arc<Mutex<Inbox>>;

/// The receiver's routes over fresh state (nothing recorded). Clones of the router share it.
pub fn router(settings: Settings) -> Router {
    Router::new()
        .route("/__admin/deliveries", get(deliveries))
        .route("/__admin/stats", get(stats))
        .route("/__admin/faults", put(set_faults).get(get_faults))
        .route("/__admin/secrets", put(set_secrets))
        .route("/__admin/reset", post(reset))
        .fallback(receive)
        .with_state(Arc::new(Mutex::new(Inbox::new(settings))))
}

// A panicking handler cannot leave the inbox half-updated in a way that matters to a test double.
fn lock(inbox: &Shared) -> MutexGuard<'_, Inbox> {
    inbox.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn receive(
    State(inbox): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path().starts_with("/__admin/") {
        return (StatusCode::NOT_FOUND, "no such admin endpoint").into_response();
    }
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")], "webhooks are POSTed")
            .into_response();
    }
    // A header that is not visible ASCII is recorded as absent.
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request = Received {
        path: uri.path(),
        query: uri.query(),
        headers: SignedHeaders {
            id: text("webhook-id"),
            timestamp: text("webhook-timestamp"),
            signature: text("webhook-signature"),
        },
        content_type: text("content-type"),
        body: &body,
    };
    let answer = lock(&inbox).receive(request, OffsetDateTime::now_utc());
    if !answer.latency.is_zero() {
        tokio::time::sleep(answer.latency).await;
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status {
        StatusCode::NO_CONTENT | StatusCode::RESET_CONTENT => status.into_response(),
        s if s.is_success() => (s, "ok").into_response(),
        s => (s, "injected failure").into_response(),
    }
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    path: Option<String>,
}

async fn deliveries(State(inbox): State<Shared>, Query(query): Query<DeliveriesQuery>) -> Json<Value> {
    Json(json!({ "deliveries": lock(&inbox).deliveries(query.path.as_deref()) }))
}

async fn stats(State(inbox): State<Shared>) -> Json<Stats> {
    Json(lock(&inbox).stats().clone())
}

/// A JSON body, or what is wrong with it, for a 400 that names it (rather than axum's generic
/// 422).
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

async fn set_faults(State(inbox): State<Shared>, body: Bytes) -> Response {
    let faults = match parse::<Faults>(&body).and_then(|faults| faults.validate().map(|()| faults)) {
        Ok(faults) => faults,
        Err(message) => return bad_request(&message),
    };
    lock(&inbox).set_faults(faults.clone());
    Json(faults).into_response()
}

async fn get_faults(State(inbox): State<Shared>) -> Json<Faults> {
    Json(lock(&inbox).faults().clone())
}

/// Answers 204 without echoing the secrets.
async fn set_secrets(State(inbox): State<Shared>, body: Bytes) -> Response {
    match parse::<Secrets>(&body) {
        Ok(secrets) => {
            lock(&inbox).set_secrets(secrets);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(message) => bad_request(&message),
    }
}

async fn reset(State(inbox): State<Shared>) -> StatusCode {
    lock(&inbox).reset();
    StatusCode::NO_CONTENT
}
