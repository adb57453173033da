//! The HTTP face: nationalize.io's one endpoint, answered through the [`Gate`], plus the admin
//! endpoints that steer the faults between test phases.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State, rejection::QueryRejection};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::faults::Faults;
use super::gate::{Gate, RateLimit, Verdict};
use super::predict::predict;

/// nationalize.io's batch limit.
pub const MAX_BATCH: usize = 10;

const MISSING_NAME: &str = "Missing 'name' parameter";
const INVALID_NAME: &str = "Invalid 'name' parameter";

type Shared = Arc<Mutex<Gate>>;

/// The stand-in's routes over fresh state (counters at zero, the window starting now). Clones of
/// the router share that state.
pub fn router(faults: Faults) -> Router {
    Router::new()
        .route("/", get(nationalize))
        .route("/__admin/faults", put(set_faults).get(get_faults))
        .route("/__admin/stats", get(stats))
        .route("/__admin/reset", post(reset))
        .with_state(Arc::new(Mutex::new(Gate::new(faults, Instant::now()))))
}

// A panicking handler cannot leave the gate half-updated in a way that matters to a test double.
fn lock(gate: &Shared) -> MutexGuard<'_, Gate> {
    gate.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Names {
    One(String),
    Batch(Vec<String>),
}

/// `name[]` (either spelling; the query decoder unescapes `%5B%5D`) makes a batch and wins over
/// `name`, whose first occurrence is used.
fn names(pairs: &[(String, String)]) -> Result<Names, &'static str> {
    let batch: Vec<String> = pairs.iter().filter(|(k, _)| k == "name[]").map(|(_, v)| v.clone()).collect();
    match (batch.len(), pairs.iter().find(|(k, _)| k == "name")) {
        (n, _) if n > MAX_BATCH => Err(INVALID_NAME),
        (0, Some((_, name))) => Ok(Names::One(name.clone())),
        (0, None) => Err(MISSING_NAME),
        _ => Ok(Names::Batch(batch)),
    }
}

async fn nationalize(
    State(gate): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let pairs = query.map(|Query(pairs)| pairs);
    let names = pairs.as_ref().map_err(|_| INVALID_NAME).and_then(|pairs| names(pairs));
    let api_key = pairs.as_ref().ok().and_then(|p| p.iter().find(|(k, _)| k == "apikey")).map(|(_, v)| v);

    let latency = lock(&gate).faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let mut gate = lock(&gate);
    let (verdict, rate) = gate.judge(Instant::now(), api_key.map(String::as_str));
    let (status, body) = match verdict {
        Verdict::Unauthorized => (StatusCode::UNAUTHORIZED, error("Invalid API key")),
        Verdict::RateLimited => (StatusCode::TOO_MANY_REQUESTS, error("Request limit reached")),
        Verdict::Injected => (StatusCode::SERVICE_UNAVAILABLE, error("injected failure")),
        Verdict::Admitted => match names {
            Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, error(message)),
            Ok(Names::One(name)) => {
                gate.record_success(1);
                (StatusCode::OK, json!(predict(&name)))
            }
            Ok(Names::Batch(names)) => {
                gate.record_success(names.len());
                (StatusCode::OK, json!(names.iter().map(|n| predict(n)).collect::<Vec<_>>()))
            }
        },
    };
    drop(gate);
    with_rate_headers((status, Json(body)).into_response(), rate)
}

fn error(message: &str) -> Value {
    json!({ "error": message })
}

fn with_rate_headers(mut response: Response, rate: RateLimit) -> Response {
    let mut headers = vec![
        ("x-rate-limit-limit", rate.limit),
        ("x-rate-limit-remaining", rate.remaining),
        ("x-rate-limit-reset", rate.reset_s),
    ];
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        headers.push(("retry-after", rate.reset_s));
    }
    for (name, value) in headers {
        response.headers_mut().insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    response
}

/// Takes the raw body so that a bad field is a 400 naming it, rather than axum's generic 422.
async fn set_faults(State(gate): State<Shared>, body: Bytes) -> Response {
    let faults = match serde_json::from_slice::<Faults>(&body).map_err(|e| e.to_string()) {
        Ok(faults) => faults.validate().map(|()| faults),
        Err(e) => Err(e),
    };
    match faults {
        Ok(faults) => {
            lock(&gate).set_faults(faults.clone(), Instant::now());
            Json(faults).into_response()
        }
        Err(message) => (StatusCode::BAD_REQUEST, Json(error(&message))).into_response(),
    }
}

async fn get_faults(State(gate): State<Shared>) -> Json<Faults> {
    Json(lock(&gate).faults().clone())
}

async fn stats(State(gate): State<Shared>) -> Json<super::Stats> {
    Json(lock(&gate).stats())
}

async fn reset(State(gate): State<Shared>) -> StatusCode {
    *lock(&gate) = Gate::new(Faults::default(), Instant::now());
    StatusCode::NO_CONTENT
}
