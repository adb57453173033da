//! Exactly once through crashes and handovers, on the real stack: the final score of every lead
//! equals the sum computed here from the input, and `leads.scores.v1` under `read_committed`
//! holds exactly one record per eventId.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{ONE_AT_A_TIME, ScorerRun, event, produce_events, run_id};
use leadflow_core::contract::records::{LeadEvent, LeadScored};
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::{committed_offsets, end_offsets, read_from_within};
use leadflow_testkit::{ServiceProcess, Stack, eventually};
use time::macros::datetime;

/// The seeds' points, written out here rather than taken from the model under test.
fn points(event_type: &str) -> f64 {
    match event_type {
        "page_view" => 5.0,
        "signup" => 20.0,
        "download" => 10.0,
        "demo_request" => 50.0,
        "contract_signed" => 100.0,
        _ => 0.0,
    }
}

const TYPES: [&str; 6] = ["page_view", "signup", "download", "demo_request", "contract_signed", "webinar"];

/// `n` events over `leads` leads, all on one day (so no decay), in timestamp order.
fn events(run: &str, n: usize, leads: usize) -> Vec<LeadEvent> {
    let start = datetime!(2026-01-16 00:00 UTC);
    (0..n)
        .map(|i| {
            let lead = format!("{run}-L{}", (i * 7919) % leads);
            let kind = TYPES[(i * 31 + i / 7) % TYPES.len()];
            event(&format!("{run}-e{i}"), &lead, kind, start + time::Duration::seconds(i as i64))
        })
        .collect()
}

fn expected_scores(events: &[LeadEvent]) -> HashMap<String, f64> {
    let mut sums = HashMap::new();
    for e in events {
        *sums.entry(e.lead_id.clone()).or_insert(0.0) += points(&e.event_type);
    }
    sums
}

/// Waits until the group has committed everything produced, then checks the topic and MongoDB.
async fn check_exactly_once(stack: &Stack, run: &ScorerRun, id: &str, input: &[LeadEvent]) {
    let events_end = end_offsets(stack, topics::EVENTS);
    eventually("the group commits every produced event", Duration::from_secs(300), || {
        let committed = committed_offsets(stack, &run.group, topics::EVENTS);
        let done = events_end.iter().all(|(p, end)| committed.get(p).is_some_and(|c| c >= end));
        async move { Ok::<_, String>(done.then_some(())) }
    })
    .await
    .unwrap();
    let scores: Vec<LeadScored> =
        run.read_scores(stack, &format!("{id}-L"), input.len(), Duration::from_secs(60)).await;
    let mut per_event: HashMap<&str, usize> = HashMap::new();
    for s in &scores {
        *per_event.entry(s.event_id.as_str()).or_default() += 1;
    }
    let repeated: Vec<_> = per_event.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(repeated.is_empty(), "eventIds with more than one LeadScored: {repeated:?}");
    assert_eq!(scores.len(), input.len(), "one LeadScored per event, none missing");

    let expected = expected_scores(input);
    let store = run.store(stack).await;
    let leads: Vec<String> = expected.keys().cloned().collect();
    let state = store.load(&leads).await.unwrap();
    for (lead, sum) in &expected {
        let doc = state.get(lead).unwrap_or_else(|| panic!("{lead} has no state"));
        assert!(
            (doc.score - sum).abs() < 1e-6,
            "{lead}: stored score {} but the input sums to {sum}",
            doc.score
        );
        let applied = input.iter().filter(|e| &e.lead_id == lead).count() as u64;
        assert_eq!(doc.version, applied, "{lead}: every event applied once");
    }
    // The last record of each lead carries its final score.
    let mut last: HashMap<&str, f64> = HashMap::new();
    for s in &scores {
        last.insert(&s.lead_id, s.score);
    }
    for (lead, sum) in &expected {
        assert!((last[lead.as_str()] - sum).abs() < 1e-6, "{lead}: last record says {}", last[lead.as_str()]);
    }
}

async fn wait_for_scores(stack: &Stack, run: &ScorerRun, prefix: &str, at_least: usize) {
    read_from_within(stack, topics::SCORES, &run.scores_from, Duration::from_secs(180), |records| {
        records.iter().filter(|r| r.key.starts_with(prefix)).count() >= at_least
    })
    .await;
}

fn remaining(stack: &Stack, run: &ScorerRun, end: &HashMap<i32, i64>) -> i64 {
    let committed = committed_offsets(stack, &run.group, topics::EVENTS);
    end.iter().map(|(p, e)| e - committed.get(p).copied().unwrap_or(0)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_through_two_kill_9s_score_exactly_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let id = run_id();
    let input = events(&id, 10_000, 200);
    produce_events(&stack, &input).await;
    let end = end_offsets(&stack, topics::EVENTS);
    let small_batches = [("LEADFLOW_CONSUMER__MAX_BATCH_RECORDS", "200".to_owned())];

    let mut scorer: ServiceProcess = run.start(&stack, "a", &small_batches).await;
    for (kill, after) in [(1, 2_000), (2, 6_000)] {
        wait_for_scores(&stack, &run, &format!("{id}-L"), after).await;
        assert!(
            remaining(&stack, &run, &end) > 0,
            "kill {kill} must land while events are still being scored"
        );
        scorer.signal(libc::SIGKILL).unwrap();
        assert_eq!(scorer.wait_exit(Duration::from_secs(10)).await.unwrap().code(), None);
        scorer = run.start(&stack, "a", &small_batches).await;
    }
    check_exactly_once(&stack, &run, &id, &input).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_work_and_one_stopping_hands_it_over() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let id = run_id();
    let input = events(&id, 2_000, 50);
    let small_batches = [("LEADFLOW_CONSUMER__MAX_BATCH_RECORDS", "100".to_owned())];
    let mut a = run.start(&stack, "a", &small_batches).await;
    let mut b = run.start(&stack, "b", &small_batches).await;
    for instance in [&mut a, &mut b] {
        instance.wait_for_log("partitions assigned", Duration::from_secs(30)).await.unwrap();
    }
    produce_events(&stack, &input).await;

    wait_for_scores(&stack, &run, &format!("{id}-L"), 400).await;
    a.signal(libc::SIGTERM).unwrap();
    assert_eq!(a.wait_exit(Duration::from_secs(30)).await.unwrap().code(), Some(0), "{}", a.logs());
    check_exactly_once(&stack, &run, &id, &input).await;
    assert!(b.logs().contains("partitions assigned"), "b took part");
}
