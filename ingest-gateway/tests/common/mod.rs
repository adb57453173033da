//! Shared by the gateway's stack tests: the gateway binary as a child process (with the test
//! admin token and JWT secret, and a key of the default project holding every scope, which
//! every request here is sent with), and a reader of what it published.

#![allow(dead_code)] // each test binary uses part of this

use std::time::Duration;

use leadflow_testkit::auth::{TEST_EVENTS_PER_MINUTE, create_project_and_key, gateway_auth_env};
use leadflow_testkit::{ServiceProcess, Stack, unique};

pub struct Gateway {
    pub process: ServiceProcess,
    pub base_url: String,
    pub ops_url: String,
    /// A key of the default project with every scope and a high limit.
    pub key: String,
}

impl Gateway {
    pub async fn start(stack: &Stack) -> Gateway {
        Self::start_with(stack, &[]).await
    }

    /// With more environment, e.g. the MongoDB database of the read model (it wins over the
    /// test credentials: a test may start a gateway with an admin token of its own).
    pub async fn start_with(stack: &Stack, extra_env: &[(&'static str, String)]) -> Gateway {
        // Webhook receivers in tests are stand-ins on 127.0.0.1, over http.
        let mut env = vec![
            ("LEADFLOW_HTTP__LISTEN", "127.0.0.1:0".to_owned()),
            ("LEADFLOW_WEBHOOKS__ALLOW_LOOPBACK_HTTP", "true".to_owned()),
        ];
        env.extend(gateway_auth_env());
        env.extend(extra_env.iter().cloned());
        let own_admin_token = extra_env.iter().any(|(k, _)| *k == "LEADFLOW_AUTH__ADMIN_TOKEN");
        let (mut process, ops) =
            ServiceProcess::spawn_against(stack, env!("CARGO_BIN_EXE_ingest-gateway"), &env).await.unwrap();
        process.wait_http_ok(&format!("http://{ops}/readyz"), Duration::from_secs(60)).await.unwrap();
        let api = process.wait_for_log_field("API listening", "addr", Duration::from_secs(30)).await.unwrap();
        let base_url = format!("http://{api}");
        let key = if own_admin_token {
            String::new()
        } else {
            create_project_and_key(&base_url, "default", &["ingest", "read", "admin"], TEST_EVENTS_PER_MINUTE)
                .await
                .unwrap()
        };
        Gateway { process, base_url, ops_url: format!("http://{ops}"), key }
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.key)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }
}

#[allow(unused_imports)] // each test binary uses part of these
pub use leadflow_testkit::kafka::{codec, end_offsets, read_from};

pub fn run_id() -> String {
    unique("gw").replace('-', "_")
}

/// A request with a key of the test's choosing: (status, headers, body).
pub async fn send_as(
    base_url: &str,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{base_url}{path}"))
        .bearer_auth(key)
        .timeout(Duration::from_secs(30));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// One SSE event: its id, name and JSON data.
#[derive(Debug)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: serde_json::Value,
}

/// What one read of an open stream brought.
pub enum Chunk {
    Events(Vec<SseEvent>),
    /// The server ended the stream.
    Ended,
}

/// Reads the next chunk of `response` (within `deadline`) into complete events; `pending` keeps
/// a frame cut in two between calls.
pub async fn next_events(
    response: &mut reqwest::Response,
    pending: &mut String,
    deadline: tokio::time::Instant,
) -> Option<Chunk> {
    let chunk = tokio::time::timeout_at(deadline, response.chunk()).await.ok()?;
    let Some(chunk) = chunk.ok().flatten() else { return Some(Chunk::Ended) };
    pending.push_str(&String::from_utf8_lossy(&chunk));
    let mut events = Vec::new();
    while let Some(end) = pending.find("\n\n") {
        let frame: String = pending.drain(..end + 2).collect();
        let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = v.to_owned();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        if !data.is_empty() {
            events.push(SseEvent { id, event, data: serde_json::from_str(&data).unwrap() });
        }
    }
    Some(Chunk::Events(events))
}

/// Reads events from an open stream until `done` holds, failing after 30 s.
pub async fn read_events(
    response: &mut reqwest::Response,
    pending: &mut String,
    done: impl Fn(&[SseEvent]) -> bool,
) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(&events) {
        match next_events(response, pending, deadline).await {
            Some(Chunk::Events(more)) => events.extend(more),
            Some(Chunk::Ended) => panic!("the stream ended; got {events:?}"),
            None => panic!("no more events within 30 s; got {events:?}"),
        }
    }
    events
}
