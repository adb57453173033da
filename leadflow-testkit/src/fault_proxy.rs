//! An HTTP proxy for fault injection in front of a real service (the schema registry): it
//! forwards every request to the service as it is, until told to answer failures instead. It
//! imitates nothing: what it forwards, the real service answers.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Stopped when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`: put the service's path after it.
    pub base_url: String,
    state: Arc<ProxyState>,
    stop: CancellationToken,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    /// The statuses to answer in turn while failing; empty means forward.
    failures: Mutex<Vec<u16>>,
    failed: AtomicU64,
    forwarded: AtomicU64,
}

impl FaultProxy {
    /// A proxy to `upstream` (scheme, host and port, e.g. `http://127.0.0.1:8081`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            failures: Mutex::new(Vec::new()),
            failed: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
        });
        let app = axum::Router::new().fallback(forward).with_state(state.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned()).await
        });
        FaultProxy { base_url, state, stop }
    }

    /// From now on, answer each request with the next of `statuses`, in turn, with a JSON body
    /// that carries no registry error code.
    pub fn fail_with(&self, statuses: &[u16]) {
        *self.state.failures.lock().unwrap() = statuses.to_vec();
    }

    /// Forward everything again.
    pub fn heal(&self) {
        self.state.failures.lock().unwrap().clear();
    }

    /// Requests answered with an injected failure so far.
    pub fn failed(&self) -> u64 {
        self.state.failed.load(Ordering::SeqCst)
    }

    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let injected = {
        let failures = state.failures.lock().unwrap();
        (!failures.is_empty()).then(|| {
            let n = state.failed.fetch_add(1, Ordering::SeqCst) as usize;
            failures[n % failures.len()]
        })
    };
    if let Some(status) = injected {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"message":"injected by the test's proxy"}"#,
        )
            .into_response();
    }
    state.forwarded.fetch_add(1, Ordering::SeqCst);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = state.client.request(method, format!("{}{path}", state.upstream)).body(body);
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    match request.send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
            let body = answer.bytes().await.unwrap_or_default();
            let mut response = (status, body).into_response();
            if let Some(content_type) = content_type {
                response.headers_mut().insert(header::CONTENT_TYPE, content_type);
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
