//! Identity merges through crashes, on the real stack: 200 anonymous leads with events merge into
//! 200 known leads (the records a Segment `identify` with both ids makes), some anonymous events
//! arrive after their merge, and the scorer is killed three times on the way. Every known lead
//! ends with exactly the points of its own and its anonymous events, each eventId is scored once
//! per lead on `leads.scores.v1` (read_committed), and every anonymous lead is closed once.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::{ONE_AT_A_TIME, ScorerRun, decode_all, event, produce_events, run_id};
use leadflow_core::contract::records::{LeadEvent, LeadScored};
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::{read_at_least, read_from_within};
use leadflow_testkit::{ServiceProcess, Stack};
use time::macros::datetime;

const LEADS: usize = 200;
const ANONYMOUS_EVENTS: usize = 4;
const OWN_EVENTS: usize = 2;

/// The seeds' points, written out here rather than taken from the model under test.
fn points(event_type: &str) -> f64 {
    match event_type {
        "page_view" => 5.0,
        "signup" => 20.0,
        "download" => 10.0,
        _ => 0.0,
    }
}

struct Input {
    /// In the order produced: anonymous and own events, then the merges, then anonymous events
    /// sent after the merge.
    records: Vec<LeadEvent>,
    /// Per known lead, the events whose points it must end with (its own and its anonymous
    /// lead's).
    expected: HashMap<String, Vec<LeadEvent>>,
    /// Per anonymous lead, the events applied to it before it merged.
    before_merge: HashMap<String, Vec<LeadEvent>>,
}

fn input(run: &str) -> Input {
    let start = datetime!(2026-01-16 00:00 UTC);
    let at = |n: usize| start + time::Duration::seconds(n as i64);
    let types = ["page_view", "download", "signup", "webinar"];
    let (mut early, mut merges, mut late) = (Vec::new(), Vec::new(), Vec::new());
    let mut expected: HashMap<String, Vec<LeadEvent>> = HashMap::new();
    let mut before_merge: HashMap<String, Vec<LeadEvent>> = HashMap::new();
    for i in 0..LEADS {
        let (anonymous, known) = (format!("{run}-A{i}"), format!("{run}-K{i}"));
        for j in 0..ANONYMOUS_EVENTS {
            let e = event(&format!("{run}-a{i}-{j}"), &anonymous, types[(i + j) % 4], at(i * 10 + j));
            expected.entry(known.clone()).or_default().push(e.clone());
            before_merge.entry(anonymous.clone()).or_default().push(e.clone());
            early.push(e);
        }
        for j in 0..OWN_EVENTS {
            let e = event(&format!("{run}-k{i}-{j}"), &known, types[(i + j + 1) % 4], at(i * 10 + 5 + j));
            expected.entry(known.clone()).or_default().push(e.clone());
            early.push(e);
        }
        let mut merge = event(&format!("{run}-m{i}"), &anonymous, "identify", at(i * 10 + 8));
        merge.merge_into = Some(known.clone());
        merges.push(merge);
        // Sent under the anonymous id after the merge: it lands on the known lead.
        let after = event(&format!("{run}-z{i}"), &anonymous, "page_view", at(5_000 + i));
        expected.entry(known.clone()).or_default().push(after.clone());
        late.push(after);
    }
    let records = early.into_iter().chain(merges).chain(late).collect();
    Input { records, expected, before_merge }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_merges_through_three_kill_9s_count_every_event_once_on_the_known_lead() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let id = run_id();
    let input = input(&id);
    produce_events(&stack, &input.records).await;
    // The anonymous leads' own records and closings, and every known lead's events.
    let total: usize = input.before_merge.values().map(|e| e.len() + 1).sum::<usize>()
        + input.expected.values().map(Vec::len).sum::<usize>();
    let small_batches = [("LEADFLOW_CONSUMER__MAX_BATCH_RECORDS", "50".to_owned())];

    let mut scorer: ServiceProcess = run.start(&stack, "a", &small_batches).await;
    for (kill, quarters) in [(1, 1), (2, 2), (3, 3)] {
        let at_least = total * quarters / 4;
        let so_far =
            read_from_within(&stack, topics::SCORES, &run.scores_from, Duration::from_secs(240), |records| {
                records.iter().filter(|r| r.key.starts_with(&id)).count() >= at_least
            })
            .await;
        let scored = so_far.iter().filter(|r| r.key.starts_with(&id)).count();
        assert!(
            scored < total,
            "kill {kill} must land while events are still being scored ({scored} of {total})"
        );
        scorer.signal(libc::SIGKILL).unwrap();
        assert_eq!(scorer.wait_exit(Duration::from_secs(10)).await.unwrap().code(), None);
        scorer = run.start(&stack, "a", &small_batches).await;
    }

    // Every record, then whatever else is committed: a repeat would be among them. (The group's
    // committed offsets cannot say "done": the scorer's own forwards end the events topic with a
    // transaction marker, which no committed offset passes.)
    let records =
        read_at_least(&stack, topics::SCORES, &run.scores_from, &id, total, Duration::from_secs(300)).await;
    let scores: Vec<LeadScored> = decode_all(&stack, records.iter().filter(|r| r.key.starts_with(&id))).await;

    let mut per_lead_event: HashMap<(&str, &str), usize> = HashMap::new();
    for s in &scores {
        *per_lead_event.entry((s.lead_id.as_str(), s.event_id.as_str())).or_default() += 1;
    }
    let repeated: Vec<_> = per_lead_event.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(repeated.is_empty(), "(lead, eventId) scored more than once: {repeated:?}");
    assert_eq!(scores.len(), total, "every event scored once on its lead, every anonymous lead closed once");

    let store = run.store(&stack).await;
    let keys: Vec<String> = input.expected.keys().chain(input.before_merge.keys()).cloned().collect();
    let state = store.load(&keys).await.unwrap();
    for (known, events) in &input.expected {
        let sum: f64 = events.iter().map(|e| points(&e.event_type)).sum();
        let doc = state.get(known).unwrap_or_else(|| panic!("{known} has no state"));
        assert!(
            (doc.score - sum).abs() < 1e-6,
            "{known}: stored score {} but its events sum to {sum}",
            doc.score
        );
        assert_eq!(doc.version, events.len() as u64, "{known}: each of its events applied once");
        let scored: BTreeSet<&str> =
            scores.iter().filter(|s| &s.lead_id == known).map(|s| s.event_id.as_str()).collect();
        let wanted: BTreeSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(scored, wanted, "{known}: the eventIds scored are its own and its anonymous lead's");
    }
    for (anonymous, events) in &input.before_merge {
        let doc = state.get(anonymous).unwrap_or_else(|| panic!("{anonymous} has no state"));
        let merge = doc.merged.as_ref().unwrap_or_else(|| panic!("{anonymous} is not marked merged"));
        assert_eq!(merge.into, anonymous.replace("-A", "-K"));
        assert_eq!((doc.score, doc.version), (0.0, events.len() as u64 + 1));
        let closing: Vec<&LeadScored> =
            scores.iter().filter(|s| &s.lead_id == anonymous && s.merged_into.is_some()).collect();
        assert_eq!(closing.len(), 1, "{anonymous}: closed once");
        assert_eq!(closing[0].score, 0.0);
    }
}
