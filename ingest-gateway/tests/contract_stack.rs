//! The contract holds: Schemathesis fuzzes the gateway binary, running against the real stack,
//! from `docs/openapi.yaml` with every check (`--checks all`), and finds no failure: no 5xx, no
//! status, header or body the document does not state, nothing accepted that the document
//! refuses and nothing refused that it accepts, 405 with `Allow` for an unlisted method.
//!
//! Schemathesis is installed by `scripts/install-schemathesis` (pinned) into a cached venv; when
//! it is missing the test fails pointing there, it never skips. What JSON Schema cannot state,
//! the document gives as extensions and `tests/contract/` teaches generation (see hooks.py and
//! schemathesis.toml there).
//!
//! The fuzzer also PUTs rule sets. Whatever it leaves, the test then restores the seeds' rules
//! under a fresh version, before asserting anything, as other tests expect them in force.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Gateway;
use leadflow_core::model::scoring::ScoringRules;
use leadflow_testkit::{Stack, eventually, unique};
use serde_json::json;

/// The version `scripts/install-schemathesis` pins.
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// Schemathesis's time budget: every phase (examples, coverage, fuzzing, stateful) within it.
const MAX_TIME_SECONDS: &str = "75";
/// Test cases per operation and phase, within that budget.
const MAX_EXAMPLES: &str = "20";

fn schemathesis_binary() -> PathBuf {
    let cache = std::env::var_os("LF_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/leadflow")
    });
    let binary = cache.join("schemathesis-venv/bin/schemathesis");
    let version = std::process::Command::new(&binary).arg("--version").output();
    match version {
        Ok(out)
            if out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains(SCHEMATHESIS_VERSION) =>
        {
            binary
        }
        other => panic!(
            "schemathesis {SCHEMATHESIS_VERSION} is not installed at {} ({}): run scripts/install-schemathesis",
            binary.display(),
            match other {
                Ok(out) => format!("`--version` said {:?}", String::from_utf8_lossy(&out.stdout).trim()),
                Err(e) => e.to_string(),
            }
        ),
    }
}

/// From the line of `=`s around "SUMMARY" to the end: the counts and the final line.
fn summary(output: &str) -> &str {
    output
        .find(" SUMMARY ")
        .and_then(|at| output[..at].rfind('\n').map(|line| &output[line + 1..]))
        .unwrap_or(output)
}

#[tokio::test]
async fn schemathesis_finds_no_contract_failure() {
    let schemathesis = schemathesis_binary();
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let document = crate_dir.join("../docs/openapi.yaml").canonicalize().expect("docs/openapi.yaml");
    let contract = crate_dir.join("tests/contract");

    let args = [
        "--config-file",
        &contract.join("schemathesis.toml").display().to_string(),
        "run",
        &document.display().to_string(),
        "--url",
        &gateway.base_url,
        "--checks",
        "all",
        "--max-examples",
        MAX_EXAMPLES,
        "--max-time",
        MAX_TIME_SECONDS,
        // The stream stays open: its answer is what arrived within this.
        "--request-timeout",
        "5",
        "--generation-database",
        "none",
        "--no-color",
    ]
    .map(str::to_owned);
    println!("running: schemathesis {}", args.join(" "));
    let run = tokio::process::Command::new(&schemathesis)
        .args(&args)
        .env("SCHEMATHESIS_HOOKS", contract.join("hooks.py"))
        // Its working files (.schemathesis/) go to the target directory, not the source tree.
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(Duration::from_secs(180), run).await;

    // Before asserting anything: leave the seeds' rules in force under a version no run has used.
    let restore = ScoringRules { version: unique("test-contract-restore"), ..ScoringRules::seeds() };
    let (status, body) = gateway.put("/api/scoring-rules", &json!(restore)).await;
    assert_eq!(status, 202, "restoring the seeds' rules: {body}");
    eventually("the restored seeds' rules are in force", Duration::from_secs(30), || async {
        let (status, body) = gateway.get("/api/scoring-rules").await;
        if status == 200 && body["rules"]["version"] == restore.version {
            Ok(Some(()))
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await
    .unwrap();

    let output = run.expect("schemathesis finished within 180 s").expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let passed = output.status.success() && !stdout.contains("unique failure");
    if passed {
        println!("{}", summary(&stdout));
    } else {
        println!("{stdout}\n{stderr}");
    }
    assert!(passed, "schemathesis reported contract failures ({}); its output is above", output.status);
}
