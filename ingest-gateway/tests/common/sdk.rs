//! What the SDK stack tests share (`sdk_stack.rs`, `sdk_browser.rs`): a project of the test's
//! own (its allowed origins, an ingest key as the SDKs' write key, its scoring rules), the
//! gateway and the scorer on a MongoDB database of the run's, the lead id the gateway makes of an
//! SDK's user id (computed here from the contract's rule, not by the code under test), the scored
//! records of a lead, and the `RESULT {json}` line a driver of `tests/browser/` prints.

#![allow(dead_code)] // each test binary uses part of this

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine as _;
use leadflow_core::contract::project::lead_key;
use leadflow_core::contract::records::{LeadEvent, LeadScored};
use leadflow_core::contract::topics;
use leadflow_core::model::scoring::ScoringRules;
use leadflow_testkit::auth::{TEST_ADMIN_TOKEN, TEST_EVENTS_PER_MINUTE, create_key};
use leadflow_testkit::kafka::{decode_all, end_offsets, new_group_at_end, read_to_end};
use leadflow_testkit::{ServiceProcess, Stack, eventually, unique, workspace_binary};
use serde_json::{Value, json};

use crate::common::Gateway;

/// One `SdkStack` at a time in a test binary: each scorer starts in a consumer group of its own,
/// so two at once would both score every new event, and each lead's records would be doubled on
/// `leads.scores.v1`. (Test binaries run one after another.)
static ONE_SCORER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A gateway and a scorer for one project of the test's.
pub struct SdkStack {
    pub stack: Stack,
    pub gateway: Gateway,
    pub scorer: ServiceProcess,
    pub project: String,
    /// An ingest key of `project`: the SDKs' write key.
    pub write_key: String,
    /// Where `leads.events.v1` and `leads.scores.v1` ended before anything was sent.
    pub events_from: HashMap<i32, i64>,
    pub scores_from: HashMap<i32, i64>,
    /// Last, so that it is released after the scorer is stopped (fields drop in order).
    _one_scorer: tokio::sync::MutexGuard<'static, ()>,
}

impl SdkStack {
    /// Starts the gateway, creates the project (`allowed_origins` for the browser tests) with
    /// rules giving `points` (every other type scores 0), then starts the scorer, which reads the
    /// rules topic to its end before it consumes, so it scores with these rules from the first
    /// event.
    pub async fn start(prefix: &str, allowed_origins: &[String], points: &[(&str, f64)]) -> SdkStack {
        let one_scorer = ONE_SCORER.lock().await;
        let stack = Stack::get();
        let database = unique(prefix).replace('-', "_");
        let mongo = [
            ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
            ("LEADFLOW_MONGO__DATABASE", database.clone()),
        ];
        let gateway = Gateway::start_with(&stack, &mongo).await;
        let project = unique(prefix).replace('_', "-");
        let (status, answer) = admin_post(
            &gateway.base_url,
            "/api/projects",
            json!({"id": project, "allowedOrigins": allowed_origins}),
        )
        .await;
        assert_eq!(status, 201, "POST /api/projects: {answer}");
        let write_key = key_text(&gateway.base_url, &project, &["ingest"]).await;
        let rules_key = key_text(&gateway.base_url, &project, &["read", "admin"]).await;
        put_rules(&gateway.base_url, &rules_key, points).await;

        let events_from = end_offsets(&stack, topics::EVENTS);
        let scores_from = end_offsets(&stack, topics::SCORES);
        let group = new_group_at_end(&stack, &format!("{prefix}-scorer"), topics::EVENTS);
        let (mut scorer, _) = ServiceProcess::spawn_against(
            &stack,
            &workspace_binary("scorer"),
            &[mongo[0].clone(), mongo[1].clone(), ("LEADFLOW_CONSUMER__GROUP_ID", group)],
        )
        .await
        .unwrap();
        scorer.wait_for_log("consuming", Duration::from_secs(60)).await.unwrap();
        SdkStack {
            _one_scorer: one_scorer,
            stack,
            gateway,
            scorer,
            project,
            write_key,
            events_from,
            scores_from,
        }
    }

    /// The key of `lead`'s records (`project/lead`).
    pub fn key_of(&self, lead: &str) -> String {
        lead_key(&self.project, lead).into_owned()
    }

    /// Posts `body` to the gateway's `/v1{path}` as an SDK would (the write key as Basic auth).
    pub async fn post_v1(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/v1{path}", self.gateway.base_url))
            .basic_auth(&self.write_key, Some(""))
            .json(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `lead`'s records on `leads.scores.v1` (in their order) once one has been written for
    /// each of `event_ids`; fails after `deadline` with what was there.
    pub async fn scored(&self, lead: &str, event_ids: &[&str], deadline: Duration) -> Vec<LeadScored> {
        let key = self.key_of(lead);
        eventually(&format!("{key} scored for {event_ids:?}"), deadline, || async {
            let scored = self.records_of::<LeadScored>(topics::SCORES, &self.scores_from, &key).await;
            let missing: Vec<&&str> =
                event_ids.iter().filter(|id| !scored.iter().any(|s| s.event_id == **id)).collect();
            if missing.is_empty() {
                Ok(Some(scored))
            } else {
                Err(format!("not yet scored: {missing:?}; scored: {:?}", summary(&scored)))
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n--- scorer log ---\n{}", self.scorer.logs()))
    }

    /// `lead`'s records on `leads.events.v1`, as the gateway published them.
    pub async fn published(&self, lead: &str) -> Vec<LeadEvent> {
        self.records_of::<LeadEvent>(topics::EVENTS, &self.events_from, &self.key_of(lead)).await
    }

    async fn records_of<R: leadflow_core::contract::records::TopicRecord>(
        &self,
        topic: &str,
        from: &HashMap<i32, i64>,
        key: &str,
    ) -> Vec<R> {
        let records = read_to_end(&self.stack, topic, from, Duration::from_secs(30)).await;
        decode_all::<R>(&self.stack, records.iter().filter(|r| r.key == key)).await
    }

    /// Stops the scorer and the gateway with SIGTERM: both must exit cleanly.
    pub async fn stop(mut self) {
        for process in [&mut self.scorer, &mut self.gateway.process] {
            process.signal(libc::SIGTERM).unwrap();
            let status = process.wait_exit(Duration::from_secs(30)).await.unwrap();
            assert_eq!(status.code(), Some(0), "{}", process.logs());
        }
    }
}

/// The lead id the gateway gives an SDK's id (the contract's rule, written out here): the id
/// itself when it matches `[A-Za-z0-9._:@-]{1,128}` and does not start with "b64.", else "b64."
/// and the base64url (no padding) of its UTF-8 bytes.
pub fn lead_id_of(sdk_id: &str) -> String {
    let plain = (1..=128).contains(&sdk_id.len())
        && !sdk_id.starts_with("b64.")
        && sdk_id.chars().all(|c| c.is_ascii_alphanumeric() || "._:@-".contains(c));
    if plain {
        sdk_id.to_owned()
    } else {
        format!("b64.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sdk_id.as_bytes()))
    }
}

/// The JSON a driver printed as its `RESULT` line.
pub fn driver_result(printed: &str) -> Value {
    let line = printed
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("the driver printed no RESULT line:\n{printed}"));
    serde_json::from_str(line).unwrap()
}

/// How many of `scored` are for `event_id`.
pub fn times_scored(scored: &[LeadScored], event_id: &str) -> usize {
    scored.iter().filter(|s| s.event_id == event_id).count()
}

/// The lead's score after its last record.
pub fn final_score(scored: &[LeadScored]) -> f64 {
    scored.last().expect("no scored record").score
}

fn summary(scored: &[LeadScored]) -> Vec<String> {
    scored
        .iter()
        .map(|s| format!("{}:{}:{}+{}={}", s.event_id, s.event_type, s.lead_id, s.delta, s.score))
        .collect()
}

async fn admin_post(base_url: &str, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}{path}"))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn key_text(base_url: &str, project: &str, scopes: &[&str]) -> String {
    let made = create_key(base_url, project, scopes, TEST_EVENTS_PER_MINUTE).await.unwrap();
    made["key"].as_str().unwrap().to_owned()
}

/// Puts rules with `points` for the project of `admin_key` and waits until the gateway reads them back from the
/// rules topic (so the scorer, started after, reads them too).
async fn put_rules(base_url: &str, admin_key: &str, points: &[(&str, f64)]) {
    let rules = ScoringRules {
        version: unique("sdk-rules"),
        points: points.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect::<BTreeMap<_, _>>(),
        // The project is the key's: the body names none (the default project's is left out).
        ..ScoringRules::seeds()
    };
    let http = reqwest::Client::new();
    let response = http
        .put(format!("{base_url}/api/scoring-rules"))
        .bearer_auth(admin_key)
        .json(&rules)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "PUT /api/scoring-rules: {}", response.text().await.unwrap());
    eventually("the project's rules in force", Duration::from_secs(30), || async {
        let response = http
            .get(format!("{base_url}/api/scoring-rules"))
            .bearer_auth(admin_key)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        let ours = body["rules"]["version"] == rules.version.as_str() && body["source"] == "topic";
        if ours { Ok(Some(())) } else { Err(body.to_string()) }
    })
    .await
    .unwrap();
}
