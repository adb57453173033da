//! Helpers for tests that run against the real local stack (`deploy/local/stack up`): where the
//! stack is, polling with a deadline instead of sleeping, and service binaries as child
//! processes that can be signalled.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod auth;
pub mod fault_proxy;
pub mod kafka;
pub mod poison;
pub mod scorer_state;
pub mod stand_in;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the testkit sits in the workspace").to_owned()
}

/// Another workspace package's binary, e.g. the gateway for a scorer test that posts through
/// it. `cargo test --workspace` builds every binary first; a test run for one package may not,
/// so a missing binary fails with the command that builds it.
pub fn workspace_binary(name: &str) -> String {
    let path = repo_root().join("target/debug").join(name);
    assert!(path.exists(), "{} is not built; run `cargo build --bins` first", path.display());
    path.to_string_lossy().into_owned()
}

/// The running stack's addresses, from the environment or from `.local/stack.env`.
#[derive(Debug, Clone)]
pub struct Stack {
    pub kafka_bootstrap: String,
    pub schema_registry_url: String,
    pub mongodb_uri: String,
    /// `deploy/local/bin`, where the Kafka CLI wrappers are.
    pub kafka_bin: PathBuf,
}

impl Stack {
    /// Panics with the fix when the stack has not been started: a test that needs the stack
    /// must fail, not pass quietly, when it is missing.
    pub fn get() -> Stack {
        Self::load().unwrap_or_else(|e| {
            panic!("the local stack is not running ({e:#}); start it with `deploy/local/stack up` or run `scripts/test`")
        })
    }

    fn load() -> anyhow::Result<Stack> {
        let env_file = repo_root().join(".local/stack.env");
        let mut vars: HashMap<String, String> = match std::fs::read_to_string(&env_file) {
            Ok(text) => parse_env_file(&text),
            Err(_) => HashMap::new(),
        };
        for key in ["KAFKA_BOOTSTRAP", "SCHEMA_REGISTRY_URL", "MONGODB_URI", "KAFKA_BIN"] {
            if let Ok(value) = std::env::var(key) {
                vars.insert(key.to_owned(), value);
            }
        }
        let mut take = |key: &str| {
            vars.remove(key).with_context(|| format!("{key} is neither set nor in {}", env_file.display()))
        };
        Ok(Stack {
            kafka_bootstrap: take("KAFKA_BOOTSTRAP")?,
            schema_registry_url: take("SCHEMA_REGISTRY_URL")?,
            mongodb_uri: take("MONGODB_URI")?,
            kafka_bin: take("KAFKA_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|_| repo_root().join("deploy/local/bin")),
        })
    }

    /// A Kafka CLI wrapper, e.g. `kafka-console-producer`.
    pub fn kafka_tool(&self, name: &str) -> Command {
        Command::new(self.kafka_bin.join(name))
    }
}

fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.trim_start_matches("export ").split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').trim_matches('\'').to_owned()))
        .collect()
}

/// Polls `probe` until it yields `Some`, or fails after `deadline` naming `what` and the last
/// state seen. Tests wait for conditions this way, never with a bare sleep.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = e,
        }
        if start.elapsed() > deadline {
            bail!("{what}: not reached within {deadline:?}; last: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A unique suffix for names a test creates (topics, subjects, groups), so runs never collide.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A service binary running as a child process.
pub struct ServiceProcess {
    child: Child,
    name: String,
    /// The process's stderr (its logs), kept under `target/test-logs/` for the test to read.
    log_path: PathBuf,
}

impl ServiceProcess {
    /// Starts `binary` with `env` added to the environment. Its logs go to a file under
    /// `target/test-logs/`, named in any failure.
    pub fn spawn(binary: &str, env: &[(&str, String)]) -> anyhow::Result<ServiceProcess> {
        ServiceProcess::spawn_with_args(binary, &[], env)
    }

    /// [`ServiceProcess::spawn`] with command-line arguments.
    pub fn spawn_with_args(
        binary: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> anyhow::Result<ServiceProcess> {
        let log_dir = repo_root().join("target/test-logs");
        std::fs::create_dir_all(&log_dir)?;
        let stem = Path::new(binary).file_name().unwrap_or_default().to_string_lossy();
        let log_path = log_dir.join(format!("{}.log", unique(&stem)));
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(binary);
        command.args(args);
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        // Plain text logs, whatever the test's terminal, so tests can look for messages.
        command.env("LEADFLOW_TELEMETRY__LOG_FORMAT", "text");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().with_context(|| format!("spawn {binary}"))?;
        Ok(ServiceProcess { child, name: binary.to_owned(), log_path })
    }

    /// What the process has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits for a log line holding `message`, and returns the value of its `key=` field, e.g.
    /// the address a listener bound: `wait_for_log_field("API listening", "addr")`.
    pub async fn wait_for_log_field(
        &mut self,
        message: &str,
        key: &str,
        deadline: Duration,
    ) -> anyhow::Result<String> {
        let what = format!("{} logs {message:?} with {key}= (see {})", self.name, self.log_path.display());
        let prefix = format!("{key}=");
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit_status() {
                bail!(
                    "{} exited with {status} before it logged {message:?}; its logs:\n{}",
                    self.name,
                    self.logs()
                );
            }
            let found = self.logs().lines().filter(|l| l.contains(message)).find_map(|line| {
                let at = line.find(&prefix)? + prefix.len();
                line[at..].split_whitespace().next().map(|v| v.trim_matches('"').to_owned())
            });
            if let Some(value) = found {
                return Ok(value);
            }
            if start.elapsed() > deadline {
                bail!("{what}: not within {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts `binary` against `stack` with its ops endpoints on a port of the OS's choosing, and
    /// returns it with the address they bound.
    pub async fn spawn_against(
        stack: &Stack,
        binary: &str,
        extra_env: &[(&'static str, String)],
    ) -> anyhow::Result<(ServiceProcess, String)> {
        let mut env = service_env(stack, "127.0.0.1:0");
        env.extend(extra_env.iter().cloned());
        let mut process = ServiceProcess::spawn(binary, &env)?;
        let ops =
            process.wait_for_log_field("ops endpoints listening", "addr", Duration::from_secs(30)).await?;
        Ok((process, ops))
    }

    /// Waits until the process has logged `needle`, up to `deadline`.
    pub async fn wait_for_log(&mut self, needle: &str, deadline: Duration) -> anyhow::Result<()> {
        let what = format!("{} logs {needle:?} (see {})", self.name, self.log_path.display());
        eventually(&what, deadline, || {
            let found = self.logs().contains(needle);
            async move { Ok(found.then_some(())) }
        })
        .await
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) -> anyhow::Result<()> {
        // SAFETY: kill(2) with a pid we own; it touches no memory of ours.
        if unsafe { libc::kill(self.pid(), signal) } != 0 {
            bail!("kill({}, {signal}): {}", self.pid(), std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for the process to exit, up to `deadline`.
    pub async fn wait_exit(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        let name = self.name.clone();
        eventually(&format!("{name} exits"), deadline, || {
            let status = self.child.try_wait().map_err(|e| e.to_string());
            async move { status }
        })
        .await
    }

    /// Has the process exited already?
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// GETs `url` until it answers 200, up to `deadline`; fails at once if the process exits.
    pub async fn wait_http_ok(&mut self, url: &str, deadline: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit_status() {
                bail!(
                    "{} exited with {status} before {url} answered 200; its logs:\n{}",
                    self.name,
                    self.logs()
                );
            }
            let last = match client.get(url).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => format!("status {}", r.status()),
                Err(e) => e.to_string(),
            };
            if start.elapsed() > deadline {
                bail!("GET {url}: no 200 within {deadline:?}; last: {last}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        // A failed test must not leave a service running and holding its ports.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago. Only for addresses nothing should answer
/// on: a listener should bind port 0 instead, since an outgoing connection may take this port
/// before the listener does.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The environment that points a service at the running stack, with its ops endpoints on `ops`.
pub fn service_env(stack: &Stack, ops: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LEADFLOW_TELEMETRY__OPS_LISTEN", ops.to_owned()),
        ("LEADFLOW_KAFKA__BOOTSTRAP_SERVERS", stack.kafka_bootstrap.clone()),
        ("LEADFLOW_SCHEMA_REGISTRY__URL", stack.schema_registry_url.clone()),
    ]
}

/// Starts `binary` against the stack, waits until `/readyz` says ready and `/metrics` serves,
/// sends `signal`, and checks that the process exits 0 promptly.
pub async fn check_service_lifecycle(binary: &str, signal: i32) -> anyhow::Result<()> {
    check_service_lifecycle_with(binary, signal, &[]).await
}

/// [`check_service_lifecycle`] with `extra_env` added, e.g. a consumer group of the test's own.
pub async fn check_service_lifecycle_with(
    binary: &str,
    signal: i32,
    extra_env: &[(&'static str, String)],
) -> anyhow::Result<()> {
    let stack = Stack::get();
    let (mut service, ops) = ServiceProcess::spawn_against(&stack, binary, extra_env).await?;
    service.wait_http_ok(&format!("http://{ops}/readyz"), Duration::from_secs(60)).await?;
    let metrics = reqwest::get(format!("http://{ops}/metrics")).await?.text().await?;
    anyhow::ensure!(metrics.contains("leadflow_build_info"), "no build info in /metrics:\n{metrics}");
    service.wait_for_log("record schemas registered", Duration::from_secs(30)).await?;
    anyhow::ensure!(service.try_exit_status().is_none(), "{binary} exited before it was signalled");
    service.signal(signal)?;
    let status = service.wait_exit(Duration::from_secs(20)).await?;
    anyhow::ensure!(
        status.code() == Some(0),
        "{binary} exited with {status} after signal {signal}; its logs:\n{}",
        service.logs()
    );
    anyhow::ensure!(
        service.logs().contains("stopped cleanly"),
        "{binary} exited 0 without its clean-stop log line:\n{}",
        service.logs()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_parse_with_or_without_export_and_quotes() {
        let vars =
            parse_env_file("# c\nKAFKA_BOOTSTRAP=127.0.0.1:9092\nexport MONGODB_URI=\"mongodb://x\"\n\n");
        assert_eq!(vars["KAFKA_BOOTSTRAP"], "127.0.0.1:9092");
        assert_eq!(vars["MONGODB_URI"], "mongodb://x");
    }

    #[tokio::test]
    async fn eventually_fails_after_the_deadline_with_the_last_state() {
        let err = eventually::<(), _, _>("never", Duration::from_millis(250), || async {
            Err("still 3".to_owned())
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("still 3"), "{err}");
    }
}
