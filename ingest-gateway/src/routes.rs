//! The API's router, from its three parts (the write API, the read API, the live stream) and
//! the dashboard, with what every request goes through: the server-side timeout, the request
//! metrics, and JSON answers for unknown routes and methods.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::dashboard;
use crate::error::AppError;
use crate::live::sse;
use crate::read;
use crate::state::AppState;
use crate::write;
use crate::write::publisher::Publisher;

/// Every route of the API, as (method, path); the OpenAPI document is checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/events"),
    ("post", "/api/events/batch"),
    ("post", "/api/leads"),
    ("get", "/api/leads"),
    ("get", "/api/leads/{id}"),
    ("get", "/api/leads/{id}/history"),
    ("get", "/api/leads/{id}/intelligence"),
    ("post", "/api/leads/{id}/review"),
    ("get", "/api/leaderboard"),
    ("get", "/api/stream"),
    ("get", "/api/scoring-rules"),
    ("put", "/api/scoring-rules"),
];

pub fn router<P: Publisher>(state: AppState<P>) -> Router {
    Router::new()
        .merge(write::handlers::routes::<P, _>())
        .merge(read::handlers::routes())
        .merge(sse::routes())
        .route("/", get(dashboard::index))
        .route("/dashboard/{file}", get(dashboard::asset))
        .fallback(|| async { AppError::not_found() })
        // After the merges: it applies to the routes registered so far.
        .method_not_allowed_fallback(|| async { AppError::method_not_allowed() })
        .layer(middleware::from_fn_with_state(state.clone(), track::<P>))
        .with_state(state)
}

/// Bounds every request by the server-side timeout and records its route, status and latency.
async fn track<P: Publisher>(State(state): State<AppState<P>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let started = Instant::now();
    let write = &state.write;
    let response = match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::timeout(state.request_timeout, write.retry_after).into_response(),
    };
    let metrics = &write.metrics;
    metrics.requests.with_label_values(&[&route, response.status().as_str()]).inc();
    metrics.request_duration.with_label_values(&[&route]).observe(started.elapsed().as_secs_f64());
    metrics.producer_queue_depth.set(write.publisher.queue_depth() as i64);
    response
}

#[cfg(test)]
mod tests;
