//! The API's router, from its three parts (the write API, the read API, the live stream) and
//! the dashboard, and the management API (projects, keys), with what every request goes through:
//! CORS, the server-side timeout, the request metrics, and JSON answers for unknown routes and
//! methods.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt;

use crate::auth;
use crate::automations;
use crate::dashboard;
use crate::error::AppError;
use crate::live::sse;
use crate::read;
use crate::segment;
use crate::state::AppState;
use crate::users;
use crate::webhooks;
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
    ("post", "/api/projects"),
    ("get", "/api/projects"),
    ("get", "/api/projects/{id}"),
    ("patch", "/api/projects/{id}"),
    ("post", "/api/projects/{id}/keys"),
    ("get", "/api/projects/{id}/keys"),
    ("delete", "/api/projects/{id}/keys/{keyId}"),
    ("post", "/api/projects/{id}/keys/{keyId}/rotate"),
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("get", "/api/auth/me"),
    ("post", "/api/auth/logout"),
    ("get", "/api/automations"),
    ("post", "/api/automations"),
    ("get", "/api/automations/executions"),
    ("get", "/api/automations/{id}"),
    ("put", "/api/automations/{id}"),
    ("delete", "/api/automations/{id}"),
    ("get", "/api/webhooks"),
    ("post", "/api/webhooks"),
    ("get", "/api/webhooks/{id}"),
    ("delete", "/api/webhooks/{id}"),
    ("post", "/api/webhooks/{id}/test"),
    ("get", "/api/webhooks/{id}/deliveries"),
    ("post", "/api/webhooks/{id}/replay"),
    // The Segment-compatible API (crate::segment::handlers), and the browser tracker.
    ("post", "/v1/track"),
    ("post", "/v1/identify"),
    ("post", "/v1/page"),
    ("post", "/v1/screen"),
    ("post", "/v1/group"),
    ("post", "/v1/alias"),
    ("post", "/v1/t"),
    ("post", "/v1/i"),
    ("post", "/v1/p"),
    ("post", "/v1/s"),
    ("post", "/v1/g"),
    ("post", "/v1/a"),
    ("post", "/v1/batch"),
    ("post", "/v1/import"),
    ("post", "/v1/b"),
    ("post", "/beacon/v1/batch"),
    ("get", "/v1/projects/{writeKey}/settings"),
    ("get", "/sdk/ls.js"),
    ("get", "/sdk/test.html"),
];

pub fn router<P: Publisher>(state: AppState<P>) -> Router {
    let cors = auth::cors::layer(state.auth.clone());
    let segment_cors = middleware::from_fn_with_state(state.auth.clone(), segment::cors::middleware);
    let app = api(state);
    // tower-http answers every OPTIONS as a preflight. Only a real one (with Origin and
    // Access-Control-Request-Method) goes to it; any other OPTIONS is a method the route does not
    // take, answered 405 with Allow like every unlisted method.
    let with_cors = app.clone().layer(cors);
    // The Segment API's CORS needs the caller that only its handlers know (the body's writeKey).
    let with_segment_cors = app.clone().layer(segment_cors);
    Router::new().fallback_service(tower::service_fn(move |request: Request| {
        let (app, with_cors, with_segment_cors) = (app.clone(), with_cors.clone(), with_segment_cors.clone());
        async move {
            if segment::handlers::is_segment_path(request.uri().path()) {
                with_segment_cors.oneshot(request).await
            } else if request.method() == Method::OPTIONS && !is_preflight(&request) {
                app.oneshot(request).await
            } else {
                with_cors.oneshot(request).await
            }
        }
    }))
}

fn is_preflight(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::ORIGIN) && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn api<P: Publisher>(state: AppState<P>) -> Router {
    Router::new()
        .merge(write::handlers::routes::<P, _>())
        .merge(read::handlers::routes())
        .merge(sse::routes())
        .merge(auth::management::routes())
        .merge(users::handlers::routes())
        .merge(automations::handlers::routes::<P, _>())
        .merge(webhooks::handlers::routes())
        .merge(segment::handlers::routes::<P, _>())
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
