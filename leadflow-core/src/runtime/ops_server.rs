//! The operations endpoints every service serves on its own port, apart from any public API:
//! `/metrics` (Prometheus text), `/healthz` (the process is alive) and `/readyz` (its
//! dependencies answer, so it can do useful work).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// Named dependency checks behind `/readyz`. Each runs with a deadline on every probe.
#[derive(Clone, Default)]
pub struct ReadinessChecks {
    checks: Vec<(&'static str, CheckFn)>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

impl ReadinessChecks {
    pub fn add<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((name, Arc::new(move || Box::pin(check()))));
        self
    }

    /// Runs every check; the failures, by name.
    pub async fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (name, check) in &self.checks {
            match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                Err(_) => failures.push(format!("{name}: no answer within {CHECK_TIMEOUT:?}")),
            }
        }
        failures
    }
}

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    readiness: ReadinessChecks,
}

pub fn router(registry: Registry, readiness: ReadinessChecks) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(OpsState { registry, readiness })
}

async fn metrics(State(state): State<OpsState>) -> Response {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&state.registry.gather(), &mut body) {
        Ok(()) => ([(header::CONTENT_TYPE, encoder.format_type().to_owned())], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn ready(State(state): State<OpsState>) -> Response {
    let failures = state.readiness.failures().await;
    if failures.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{}\n", failures.join("\n"))).into_response()
    }
}

/// Binds `addr` and serves the ops endpoints until `shutdown` fires.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    readiness: ReadinessChecks,
    shutdown: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The bound address, not the configured one: port 0 means "any free port".
    tracing::info!(addr = %listener.local_addr()?, "ops endpoints listening");
    let app = router(registry, readiness);
    Ok(tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_status(app: Router, path: &str) -> (StatusCode, String) {
        let response = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_names_the_failing_dependency() {
        let checks = ReadinessChecks::default()
            .add("kafka", || async { Ok(()) })
            .add("schema_registry", || async { Err("connection refused".to_owned()) });
        let (status, body) = get_status(router(Registry::new(), checks), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("schema_registry: connection refused"), "{body}");
        assert!(!body.contains("kafka:"), "{body}");
    }

    #[tokio::test]
    async fn readyz_is_ok_when_every_check_passes_and_healthz_always() {
        let checks = ReadinessChecks::default().add("kafka", || async { Ok(()) });
        let app = router(Registry::new(), checks);
        assert_eq!(get_status(app.clone(), "/readyz").await.0, StatusCode::OK);
        assert_eq!(get_status(app, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_serves_the_registry_in_text_format() {
        let registry = crate::runtime::telemetry::metrics_registry("scorer");
        let (status, body) = get_status(router(registry, ReadinessChecks::default()), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("leadflow_build_info"), "{body}");
    }
}
