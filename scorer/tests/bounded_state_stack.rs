//! A lead's `lead_scores` document stays bounded however many events it gets, on the real
//! stack: more events than the tail keeps, in order, late within the window and too late, and a
//! version 1 document (every event in `events`) converted at its next event.

mod common;

use std::time::Duration;

use common::{ONE_AT_A_TIME, ScorerRun, event, produce_events, run_id};
use leadflow_core::contract::records::{LeadEvent, LeadScored};
use leadflow_core::model::scoring::{self, REASON_TOO_LATE, ScoringEvent, ScoringRules};
use leadflow_core::store::documents::{AppliedEvent, LEAD_SCORES, LeadDoc};
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::Stack;
use mongodb::bson::{self, Document, doc};
use time::OffsetDateTime;
use time::macros::datetime;

const TAIL_EVENTS: usize = 4;
const START: OffsetDateTime = datetime!(2026-01-16 10:00 UTC);

fn at(minutes: i64) -> OffsetDateTime {
    START + time::Duration::minutes(minutes)
}

fn scoring_event(event: &LeadEvent) -> ScoringEvent {
    ScoringEvent {
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        timestamp: event.timestamp,
    }
}

/// The run's `lead_scores` collection as plain documents, to see fields the types hide.
async fn raw_lead_scores(stack: &Stack, run: &ScorerRun) -> mongodb::Collection<Document> {
    let config = MongoConfig { uri: stack.mongodb_uri.clone(), database: run.database.clone() };
    let client = leadflow_core::store::mongo::client(&config, "test").await.unwrap();
    client.database(&run.database).collection(LEAD_SCORES)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_events_than_the_tail_keeps_leave_a_bounded_document_with_the_whole_fold_s_score() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let k = ("LEADFLOW_SCORING__TAIL_EVENTS", TAIL_EVENTS.to_string());
    let (_scorer, ops) = run.start_with_ops(&stack, "a", &[k]).await;
    let lead = format!("{}-long", run_id());
    let kinds = ["page_view", "signup", "download", "page_view"];
    // Eight in order, 10 minutes apart: the tail keeps e4..e7, the checkpoint is after e3 (30).
    let mut events: Vec<LeadEvent> =
        (0..8).map(|i| event(&format!("e{i}"), &lead, kinds[i % kinds.len()], at(10 * i as i64))).collect();
    // Late but newer than the checkpoint: lands between e5 (50) and e6 (60).
    events.push(event("late", &lead, "demo_request", at(55)));
    // Older than the checkpoint: too late.
    events.push(event("too-late", &lead, "contract_signed", at(5)));
    produce_events(&stack, &events).await;
    let scores = run.read_scores(&stack, &lead, events.len(), Duration::from_secs(60)).await;

    // The same too-late event posted again, then a marker: the repeat emits nothing.
    let marker = event("marker", &lead, "page_view", at(80));
    produce_events(&stack, &[events[9].clone(), marker.clone()]).await;
    let scores_after = run.read_scores(&stack, &lead, events.len() + 1, Duration::from_secs(60)).await;

    let accepted: Vec<ScoringEvent> = events[..9].iter().chain([&marker]).map(scoring_event).collect();
    let rules = ScoringRules::seeds();
    let expected = scoring::score(&rules, &accepted);
    let late = scores.iter().find(|s| s.event_id == "late").unwrap();
    assert!(late.late && late.reason.is_none(), "{late:?}");
    assert_eq!(late.delta, 50.0, "within the window, refolded in place: {late:?}");
    let too_late: &LeadScored = scores.iter().find(|s| s.event_id == "too-late").unwrap();
    assert_eq!(
        (too_late.reason.as_deref(), too_late.delta, too_late.late, too_late.score),
        (Some(REASON_TOO_LATE), 0.0, true, late.score),
        "recorded, scoring nothing"
    );
    assert_eq!(scores_after.len(), events.len() + 1, "the repeat emitted nothing: {scores_after:?}");
    assert_eq!(
        (scores_after.last().unwrap().event_id.as_str(), scores_after.last().unwrap().score),
        ("marker", expected)
    );

    let raw = raw_lead_scores(&stack, &run).await.find_one(doc! { "_id": &lead }).await.unwrap().unwrap();
    assert!(!raw.contains_key("events"), "no event list: {raw}");
    assert!(raw.get_array("tail").unwrap().len() <= TAIL_EVENTS, "{raw}");
    let document: LeadDoc = bson::from_document(raw).unwrap();
    assert_eq!(
        (document.score, document.version),
        (expected, 11),
        "the whole fold; every applied event counted once"
    );
    let history = run.store(&stack).await.history(&lead).await.unwrap();
    assert_eq!(history.len(), 11);
    assert!(history.iter().all(|h| h.ts.is_some()), "every entry has its ts");
    assert_eq!(common::counter(&ops, "events_too_late_total", 1).await, 1);
    assert_eq!(common::counter(&ops, "events_duplicate_total", 1).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_document_is_converted_at_its_next_event_with_the_same_score() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let lead = format!("{}-v1", run_id());
    let old: Vec<LeadEvent> = [("o1", "page_view", 0), ("o2", "signup", 5), ("o3", "demo_request", 10)]
        .iter()
        .map(|(id, kind, minute)| event(id, &lead, kind, at(*minute)))
        .collect();
    let rules = ScoringRules::seeds();
    let old_events: Vec<ScoringEvent> = old.iter().map(scoring_event).collect();
    // A document as the scorer wrote it before the bounded state: every event in `events`.
    let mut v1 = bson::to_document(&LeadDoc::new(&lead, 0)).unwrap();
    v1.remove("schema");
    v1.remove("tail");
    let applied: Vec<AppliedEvent> = old_events.iter().map(AppliedEvent::from_scoring).collect();
    v1.insert("events", bson::to_bson(&applied).unwrap());
    v1.insert("version", 3i64);
    v1.insert("score", scoring::score(&rules, &old_events));
    v1.insert("stage", "hot");
    v1.insert("asOf", "2026-01-16T10:10:00Z");
    v1.insert("rulesVersion", "v1");
    let leads = raw_lead_scores(&stack, &run).await;
    leads.insert_one(v1).await.unwrap();
    let _scorer = run.start(&stack, "a", &[("LEADFLOW_SCORING__TAIL_EVENTS", "2".to_owned())]).await;

    let next = event("o4", &lead, "page_view", at(20));
    produce_events(&stack, std::slice::from_ref(&next)).await;
    let scores = run.read_scores(&stack, &lead, 1, Duration::from_secs(60)).await;

    let all: Vec<ScoringEvent> = old_events.iter().cloned().chain([scoring_event(&next)]).collect();
    assert_eq!(
        (scores[0].score, scores[0].delta, scores[0].lead_version),
        (scoring::score(&rules, &all), 5.0, Some(4)),
        "the score of the whole fold"
    );
    let raw = leads.find_one(doc! { "_id": &lead }).await.unwrap().unwrap();
    assert!(!raw.contains_key("events"), "the v1 list is dropped: {raw}");
    assert_eq!(raw.get_array("tail").unwrap().len(), 2, "{raw}");
    let document: LeadDoc = bson::from_document(raw).unwrap();
    assert_eq!(document.base.map(|b| b.event.event_id), Some("o2".to_owned()));
    assert_eq!((document.score, document.version, document.schema), (80.0, 4, 2));
}
