//! A project stand-in (`stand-ins/`) served inside the test process, on a port of the OS's
//! choosing, with its admin endpoints at hand. Every stand-in shares the admin shape:
//! `GET /__admin/stats`, `PUT /__admin/faults`.

use std::future::Future;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// First names for leads in end-to-end tests. Against the nationalize stand-in's deterministic
/// predictions they give both outcomes, Verified and To Check, and the first seven already do.
pub const FIRST_NAMES: [&str; 16] = [
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
    "Margaret",
    "Linus",
    "Hedy",
    "Dennis",
    "Anita",
];

/// Stopped when dropped.
pub struct StandInServer {
    pub base_url: String,
    stop: CancellationToken,
}

impl StandInServer {
    /// Serves with `serve(listener, shutdown)`, e.g. `|l, s| stand_ins::crm::serve(l, faults, s)`.
    pub async fn start<F, Fut>(serve: F) -> StandInServer
    where
        F: FnOnce(TcpListener, WaitForCancellationFutureOwned) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, stop.clone().cancelled_owned()));
        StandInServer { base_url, stop }
    }

    /// `GET {base_url}{path}` as JSON.
    pub async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.base_url)).await.unwrap().json().await.unwrap()
    }

    pub async fn stats(&self) -> Value {
        self.get("/__admin/stats").await
    }

    /// Replaces the faults; the stand-in must accept them.
    pub async fn set_faults(&self, faults: Value) {
        let response = reqwest::Client::new()
            .put(format!("{}/__admin/faults", self.base_url))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    }
}

impl Drop for StandInServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
