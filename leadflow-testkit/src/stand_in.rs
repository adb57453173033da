//! A project stand-in (`stand-ins/`) served inside the test process, on a port of the OS's
//! choosing, with its admin endpoints at hand. Every stand-in shares the admin shape:
//! `GET /__admin/stats`, `PUT /__admin/faults`.

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A stand-in binary (`--listen 127.0.0.1:0`) in a process of its own, and the address it
/// announced, for tests that run the services as the demo does. Killed when dropped.
pub struct StandInProcess {
    child: Child,
    /// Where it listens, `127.0.0.1:<port>`.
    pub addr: String,
}

impl StandInProcess {
    /// Starts the stand-in binary `name` (e.g. `crm-standin`) and waits for its address.
    pub async fn start(name: &str) -> StandInProcess {
        Self::start_binary(&crate::workspace_binary(name), name).await
    }

    /// Starts the stand-in binary at `path` (e.g. a release build, for benchmarks), logging
    /// under `name`, and waits for its address.
    pub async fn start_binary(path: &str, name: &str) -> StandInProcess {
        let log_path =
            crate::repo_root().join("target/test-logs").join(format!("{}.log", crate::unique(name)));
        std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(path)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        // Owned at once, so that a failed start still kills the child (Drop).
        let mut stand_in = StandInProcess { child, addr: String::new() };
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let addr = text.lines().filter(|l| l.contains("listening")).find_map(|l| {
                let at = l.find("addr=")? + 5;
                l[at..].split_whitespace().next().map(|a| a.trim_matches('"').to_owned())
            });
            if let Some(addr) = addr {
                stand_in.addr = addr;
                return stand_in;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{name} did not announce its address:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops it with SIGTERM (a graceful stop, unlike Drop's kill) and waits for it to exit.
    pub fn terminate(&mut self) -> std::io::Result<std::process::ExitStatus> {
        // SAFETY: kill(2) with a pid we own; it touches no memory of ours.
        if unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.child.wait()
    }
}

impl Drop for StandInProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `crm-sink setup` (the binary at `crm_sink`) with the sink's `env`, and returns what it
/// printed, failing if it fails. The CRM stand-in binary plays HubSpot by default, which refuses
/// writes to properties not created first: a test that runs it as the demo does sets it up the
/// same way before starting the sink.
pub fn crm_sink_setup(crm_sink: &str, env: &[(&'static str, String)]) -> std::process::Output {
    let output = Command::new(crm_sink).arg("setup").envs(env.iter().cloned()).output().unwrap();
    assert!(output.status.success(), "crm-sink setup failed: {output:?}");
    output
}
