//! Shared by the gateway's stack tests: the gateway binary as a child process, and a reader of
//! what it published.

#![allow(dead_code)] // each test binary uses part of this

use std::time::Duration;

use leadflow_testkit::{ServiceProcess, Stack, unique};

pub struct Gateway {
    pub process: ServiceProcess,
    pub base_url: String,
    pub ops_url: String,
}

impl Gateway {
    pub async fn start(stack: &Stack) -> Gateway {
        Self::start_with(stack, &[]).await
    }

    /// With more environment, e.g. the MongoDB database of the read model.
    pub async fn start_with(stack: &Stack, extra_env: &[(&'static str, String)]) -> Gateway {
        let mut env = vec![("LEADFLOW_HTTP__LISTEN", "127.0.0.1:0".to_owned())];
        env.extend(extra_env.iter().cloned());
        let (mut process, ops) =
            ServiceProcess::spawn_against(stack, env!("CARGO_BIN_EXE_ingest-gateway"), &env).await.unwrap();
        process.wait_http_ok(&format!("http://{ops}/readyz"), Duration::from_secs(60)).await.unwrap();
        let api = process.wait_for_log_field("API listening", "addr", Duration::from_secs(30)).await.unwrap();
        Gateway { process, base_url: format!("http://{api}"), ops_url: format!("http://{ops}") }
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
