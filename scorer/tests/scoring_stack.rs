//! The seeds' scenarios end to end on the real stack: events posted to the gateway, scored by
//! the scorer binary, read back from `leads.scores.v1` and from MongoDB.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{ONE_AT_A_TIME, ScorerRun, run_id};
use leadflow_core::contract::records::{DeadLetter, LeadScored, Stage};
use leadflow_core::contract::topics;
use leadflow_core::model::scoring::{self, ScoringRules};
use leadflow_testkit::kafka::{produce, producer, read_from_within};
use leadflow_testkit::poison;
use leadflow_testkit::{ServiceProcess, Stack, workspace_binary};
use serde_json::json;

struct Gateway {
    _process: ServiceProcess,
    url: String,
    /// An ingest key of the default project.
    key: String,
}

async fn gateway(stack: &Stack) -> Gateway {
    let mut env = vec![("LEADFLOW_HTTP__LISTEN", "127.0.0.1:0".to_owned())];
    env.extend(leadflow_testkit::auth::gateway_auth_env());
    let (mut process, _) =
        ServiceProcess::spawn_against(stack, &workspace_binary("ingest-gateway"), &env).await.unwrap();
    let api = process.wait_for_log_field("API listening", "addr", Duration::from_secs(30)).await.unwrap();
    let url = format!("http://{api}");
    let key = leadflow_testkit::auth::create_project_and_key(&url, "default", &["ingest"], 1_000_000)
        .await
        .unwrap();
    Gateway { _process: process, url, key }
}

impl Gateway {
    async fn post_events(&self, events: serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/events/batch", self.url))
            .bearer_auth(&self.key)
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["rejected"], 0, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_burst_scores_75_hot_and_an_event_posted_three_times_is_scored_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let (mut scorer, ops) = run.start_with_ops(&stack, "a", &[]).await;
    let in_force =
        scorer.wait_for_log_field("scoring rules loaded", "version", Duration::from_secs(10)).await.unwrap();
    let gateway = gateway(&stack).await;
    let lead = format!("{}-ada", run_id());
    gateway
        .post_events(json!([
            {"eventId": "evt1", "leadId": lead, "eventType": "page_view", "timestamp": "2026-01-16T10:00:00Z"},
            {"eventId": "evt2", "leadId": lead, "eventType": "signup", "timestamp": "2026-01-16T10:05:00Z"},
            {"eventId": "evt3", "leadId": lead, "eventType": "demo_request", "timestamp": "2026-01-16T10:10:00Z"},
        ]))
        .await;
    let scores = run.read_scores(&stack, &lead, 3, Duration::from_secs(60)).await;
    let trail: Vec<(&str, f64, Stage)> =
        scores.iter().map(|s| (s.event_id.as_str(), s.score, s.stage)).collect();
    assert_eq!(
        trail,
        vec![("evt1", 5.0, Stage::Cold), ("evt2", 25.0, Stage::Warm), ("evt3", 75.0, Stage::Hot)]
    );
    assert!(scores.iter().all(|s| s.rules_version == in_force), "every record names the rules in force");
    assert_eq!(scores[2].previous_stage, Some(Stage::Warm));
    let versions: Vec<Option<u64>> = scores.iter().map(|s| s.lead_version).collect();
    assert_eq!(versions, vec![Some(1), Some(2), Some(3)], "each new event raises the lead's version");

    // The same signup posted twice more, as a client's retries do, one request apart and twice
    // in one batch, then a new event as a marker: the repeats emit nothing.
    let signup = json!({"eventId": "evt2", "leadId": lead, "eventType": "signup", "timestamp": "2026-01-16T10:05:00Z"});
    gateway.post_events(json!([signup])).await;
    gateway
        .post_events(json!([signup, {"eventId": "evt4", "leadId": lead, "eventType": "page_view", "timestamp": "2026-01-16T10:15:00Z"}]))
        .await;
    let scores = run.read_scores(&stack, &lead, 4, Duration::from_secs(60)).await;
    assert_eq!(scores[3].event_id, "evt4");
    let duplicates = common::counter(&ops, "events_duplicate_total", 2).await;
    assert_eq!(duplicates, 2);
    let all = leadflow_testkit::kafka::read_to_end(
        &stack,
        topics::SCORES,
        &run.scores_from,
        Duration::from_secs(30),
    )
    .await;
    let signups = all.iter().filter(|r| r.key == lead).count();
    assert_eq!(signups, 4, "one LeadScored per eventId on the topic (read_committed), the repeats none");
    let state = run.store(&stack).await.lead(&lead).await.unwrap().unwrap();
    assert_eq!((state.score, state.stage, state.version), (80.0, Stage::Hot, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_event_is_scored_flagged_late_and_the_history_is_chronological() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let _scorer = run.start(&stack, "a", &[]).await;
    let gateway = gateway(&stack).await;
    let lead = format!("{}-ooo", run_id());
    gateway
        .post_events(json!([{"eventId": "t3", "leadId": lead, "eventType": "demo_request", "timestamp": "2026-01-16T10:10:00Z"}]))
        .await;
    gateway
        .post_events(json!([{"eventId": "t1", "leadId": lead, "eventType": "page_view", "timestamp": "2026-01-16T10:00:00Z"}]))
        .await;
    let scores = run.read_scores(&stack, &lead, 2, Duration::from_secs(60)).await;
    assert_eq!((scores[0].score, scores[0].late), (50.0, false));
    assert_eq!((scores[1].delta, scores[1].score, scores[1].late), (5.0, 55.0, true));

    let state = run.store(&stack).await.lead(&lead).await.unwrap().unwrap();
    let tail = state.state(&ScoringRules::seeds(), 32).tail;
    let history = scoring::history(&ScoringRules::seeds(), &tail);
    let served: Vec<(&str, f64)> = history.iter().map(|h| (h.event_type.as_str(), h.score)).collect();
    assert_eq!(served, vec![("page_view", 5.0), ("demo_request", 55.0)]);
    let audit = run.store(&stack).await.history(&lead).await.unwrap();
    let processing_order: Vec<&str> = audit.iter().map(|h| h.event_id.as_str()).collect();
    assert_eq!(processing_order, vec!["t3", "t1"], "the audit trail keeps the order of processing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_typed_into_the_kafka_cli_is_scored() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let _scorer = run.start(&stack, "a", &[]).await;
    let lead = format!("{}-cli", run_id());
    let line = format!(
        "{lead}|{{\"eventId\":\"cli1\",\"leadId\":\"{lead}\",\"eventType\":\"download\",\"timestamp\":\"2026-01-16T12:00:00Z\"}}\n"
    );
    let mut cli = stack
        .kafka_tool("kafka-console-producer")
        .args(["--bootstrap-server", &stack.kafka_bootstrap, "--topic", topics::EVENTS])
        .args(["--reader-property", "parse.key=true", "--reader-property", "key.separator=|"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    cli.stdin.take().unwrap().write_all(line.as_bytes()).unwrap();
    assert!(cli.wait().unwrap().success());

    let scores = run.read_scores(&stack, &lead, 1, Duration::from_secs(60)).await;
    assert_eq!((scores[0].event_id.as_str(), scores[0].score, scores[0].stage), ("cli1", 10.0, Stage::Cold));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_goes_to_the_dlq_and_the_partition_keeps_moving() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let _scorer = run.start(&stack, "a", &[]).await;
    let lead = format!("{}-poison", run_id());
    let impossible = json!({"eventId": "p1", "leadId": lead, "eventType": "Page View", "timestamp": "2026-01-16T12:00:00Z"});
    produce(&producer(&stack), topics::EVENTS, &lead, impossible.to_string().as_bytes()).await;
    common::produce_events(
        &stack,
        &[common::event("p2", &lead, "signup", time::macros::datetime!(2026-01-16 12:01 UTC))],
    )
    .await;

    let scores: Vec<LeadScored> = run.read_scores(&stack, &lead, 1, Duration::from_secs(60)).await;
    assert_eq!(scores[0].event_id, "p2", "the event after the poison one is scored");
    let letters = read_from_within(&stack, topics::DLQ, &run.dlq_from, Duration::from_secs(30), |r| {
        r.iter().any(|r| r.key == lead)
    })
    .await;
    let letters: Vec<DeadLetter> = common::decode_all(&stack, letters.iter().filter(|r| r.key == lead)).await;
    assert_eq!(letters[0].error_kind, "schema_violation");
    assert!(letters[0].error.contains("/eventType"), "the error names the field: {}", letters[0].error);
    assert!(!letters[0].error.contains("Page View"), "and never the value: {}", letters[0].error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_poison_events_typed_into_the_cli_are_dead_lettered_whole_and_the_next_event_is_scored() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let _scorer = run.start(&stack, "a", &[]).await;
    let lead = format!("{}-huge", run_id());
    let valid =
        json!({"eventId": "h1", "leadId": lead, "eventType": "signup", "timestamp": "2026-01-16T12:00:00Z"});
    let (not_json, violation) = (poison::huge_non_json(), poison::huge_schema_violation(&valid));
    let valid_line = valid.to_string().into_bytes();
    // One key, so one partition: the valid event waits behind both poison ones.
    poison::produce_with_cli(
        &stack,
        topics::EVENTS,
        &[(&lead, &not_json), (&lead, &violation), (&lead, &valid_line)],
    );

    let scores = run.read_scores(&stack, &lead, 1, Duration::from_secs(90)).await;
    assert_eq!(
        (scores[0].event_id.as_str(), scores[0].score),
        ("h1", 20.0),
        "the event after the poison is scored"
    );
    let letters = poison::dead_letters_for(&stack, &run.dlq_from, &lead, 2, Duration::from_secs(30)).await;
    poison::assert_bounded_letter(&letters[0].0, &letters[0].1, &not_json, "malformed", topics::EVENTS);
    poison::assert_bounded_letter(
        &letters[1].0,
        &letters[1].1,
        &violation,
        "schema_violation",
        topics::EVENTS,
    );
    assert!(letters[1].0.error.contains("padding"), "the unknown field is named: {}", letters[1].0.error);
    poison::wait_until_committed_to_end(&stack, &run.group, topics::EVENTS, Duration::from_secs(30)).await;
}
