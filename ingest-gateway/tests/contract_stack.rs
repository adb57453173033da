//! The contract holds: Schemathesis fuzzes the gateway binary, running against the real stack,
//! from `docs/openapi.yaml` with every check (`--checks all`), authenticated, and finds no
//! failure: no 5xx, no status, header or body the document does not state, nothing accepted that
//! the document refuses and nothing refused that it accepts, 405 with `Allow` for an unlisted
//! method, and no operation that declares a credential answering 2xx without one or with a bad
//! one (`ignored_auth`).
//!
//! The gateway runs with the tests' admin token and JWT secret and a MongoDB database of its own
//! (the fuzzer creates projects, keys and users there). The test makes a project and one
//! key with all three scopes and a limit high enough that the fuzzer never meets it, and a
//! dashboard user, and gives Schemathesis the credentials per security scheme
//! (`schemathesis.toml`): the key for the lead API, the admin token for the management API, and
//! the user's session (it logs in) for `GET /api/auth/me`. Whatever rules the fuzzer PUTs are that
//! project's own, so no other project (and no other test) sees them.
//!
//! Schemathesis is installed by `scripts/install-schemathesis` (pinned) into a cached venv; when
//! it is missing the test fails pointing there, it never skips. What JSON Schema cannot state,
//! the document gives as extensions and `tests/contract/` teaches generation (see hooks.py and
//! schemathesis.toml there).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Gateway;
use leadflow_core::contract::project::lead_key;
use leadflow_core::contract::records::{LeadEnriched, LeadScored};
use leadflow_core::model::read_model::LeadView;
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::auth::{TEST_ADMIN_TOKEN, TEST_EVENTS_PER_MINUTE, create_key, create_project};
use leadflow_testkit::{Stack, unique};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The version `scripts/install-schemathesis` pins.
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// Schemathesis's time budget: every phase (examples, coverage, fuzzing, stateful) within it.
const MAX_TIME_SECONDS: &str = "120";
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

/// The document's example lead, `lead-ada`, enriched and scored in the project's read model (as
/// the crm-sink's own store writes it), so that the reads of one lead answer 200 with a body to
/// check against the document, not only 404s.
async fn seed_example_lead(stack: &Stack, database: &str, project: &str) {
    let mongo = MongoConfig { uri: stack.mongodb_uri.clone(), database: database.to_owned() };
    let client = leadflow_core::store::mongo::client(&mongo, "contract-test").await.unwrap();
    let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    let (lead, key) = ("lead-ada", lead_key(project, "lead-ada").into_owned());
    // As the wire has them: what the enricher and the scorer would have written.
    let enriched: LeadEnriched = serde_json::from_value(json!({
        "projectId": project, "leadId": lead, "name": "Ada Lovelace", "email": "ada@example.com",
        "countryCode": "GB", "countryName": "United Kingdom", "probability": 0.9, "status": "Verified",
        "provider": "nationalize", "enrichedAt": now,
    }))
    .unwrap();
    let scored: LeadScored = serde_json::from_value(json!({
        "projectId": project, "leadId": lead, "eventId": "evt1", "eventType": "signup", "delta": 20.0,
        "score": 20.0, "stage": "warm", "previousStage": null, "eventTimestamp": now,
        "rulesVersion": "v1", "processedAt": now, "leadVersion": 1,
    }))
    .unwrap();
    let mut view = LeadView::new(&key, 0);
    view.apply_enriched(&enriched);
    view.apply_scored(&scored);
    let store = crm_sink::store::LeadStore::new(client, database);
    store.ensure_indexes().await.unwrap();
    store.save(vec![(view, 0)]).await.unwrap();
}

#[tokio::test]
async fn schemathesis_finds_no_contract_failure() {
    let schemathesis = schemathesis_binary();
    let stack = Stack::get();
    let database = unique("contract").replace('-', "_");
    let gateway = Gateway::start_with(&stack, &[("LEADFLOW_MONGO__DATABASE", database.clone())]).await;
    // A project of this run's, and a key with every scope whose limit the fuzzer never meets.
    let project = unique("contract");
    seed_example_lead(&stack, &database, &project).await;
    create_project(&gateway.base_url, &project, None).await.unwrap();
    let made = create_key(&gateway.base_url, &project, &["ingest", "read", "admin"], TEST_EVENTS_PER_MINUTE)
        .await
        .unwrap();
    let (key, key_id) = (made["key"].as_str().expect("key"), made["id"].as_str().expect("id"));
    // A dashboard user of the project, whose session Schemathesis logs in for (GET /api/auth/me).
    let (email, password) = (format!("{project}@contract.example"), unique("contract-password"));
    let registered = reqwest::Client::new()
        .post(format!("{}/api/auth/register", gateway.base_url))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .json(&serde_json::json!({"email": email, "password": password, "projects": [project]}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201, "registering the user: {}", registered.text().await.unwrap());
    // A webhook subscription of the project, for the rules' `webhook` actions to name (hooks.py).
    // Nothing listens on its port: a test delivery the fuzzer sends it is answered `unreachable`.
    let subscribed = reqwest::Client::new()
        .post(format!("{}/api/webhooks", gateway.base_url))
        .bearer_auth(key)
        .json(&json!({"url": "http://127.0.0.1:9/contract", "eventKinds": ["lead.entered_stage"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status(), 201);
    let subscription: serde_json::Value = subscribed.json().await.unwrap();
    let subscription = subscription["id"].as_str().expect("id").to_owned();
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
        // schemathesis.toml reads the credentials from these.
        .env("LEADFLOW_CONTRACT_KEY", key)
        // hooks.py: the key the fuzzer must not revoke or rotate under the run.
        .env("LEADFLOW_CONTRACT_KEY_ID", key_id)
        .env("LEADFLOW_CONTRACT_ADMIN_TOKEN", TEST_ADMIN_TOKEN)
        .env("LEADFLOW_CONTRACT_EMAIL", &email)
        .env("LEADFLOW_CONTRACT_PASSWORD", &password)
        // hooks.py: the project a registration names.
        .env("LEADFLOW_CONTRACT_PROJECT", &project)
        // hooks.py: the subscription a rule's webhook action names.
        .env("LEADFLOW_CONTRACT_SUBSCRIPTION", &subscription)
        // Its working files (.schemathesis/) go to the target directory, not the source tree.
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(Duration::from_secs(240), run).await;

    let output = run.expect("schemathesis finished within 240 s").expect("schemathesis runs");
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
