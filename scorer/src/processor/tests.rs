//! The processor's batch work against the stack's MongoDB (a database of each test's own), with
//! plain values in: no broker, no registry.

use std::sync::Arc;

use leadflow_core::contract::records::{LeadEvent, LeadScored, RecordPosition, Stage};
use leadflow_core::contract::topics;
use leadflow_core::model::scoring::ScoringRules;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::rules_feed::{RuleBook, RulesInForce};
use leadflow_core::stage::typed::{Decoded, Emit, Transform};
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::{Stack, unique};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;

use super::ScoreProcessor;
use crate::metrics::ScorerMetrics;
use crate::store::LeadStore;

/// A processor with its own database, and the sender of the rules it reads.
async fn processor() -> (ScoreProcessor, watch::Sender<RuleBook>) {
    let stack = Stack::get();
    let database = unique("scorer_unit").replace('-', "_");
    let mongo = MongoConfig { uri: stack.mongodb_uri.clone(), database: database.clone() };
    let store = LeadStore::new(leadflow_core::store::mongo::client(&mongo, "test").await.unwrap(), &database);
    store.ensure_indexes().await.unwrap();
    let (rules, receiver) = watch::channel(RuleBook::default());
    let metrics = ScorerMetrics::register(&prometheus::Registry::new()).unwrap();
    (ScoreProcessor { store, rules: receiver, metrics, tail_events: 32, max_moved_events: 100 }, rules)
}

/// The event `event_id` of `lead` read at `offset`, `minute` minutes into the lead's history.
fn event(lead: &str, event_id: &str, event_type: &str, minute: i64, offset: i64) -> Decoded<LeadEvent> {
    project_event("default", lead, event_id, event_type, minute, offset)
}

/// [`event`], in `project`.
fn project_event(
    project: &str,
    lead: &str,
    event_id: &str,
    event_type: &str,
    minute: i64,
    offset: i64,
) -> Decoded<LeadEvent> {
    let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    Decoded {
        position: RecordPosition { topic: topics::EVENTS.into(), partition: 0, offset },
        key: Some(leadflow_core::contract::project::lead_key(project, lead).as_bytes().to_vec()),
        record: LeadEvent {
            project_id: project.to_owned(),
            event_id: event_id.to_owned(),
            lead_id: lead.to_owned(),
            event_type: event_type.to_owned(),
            timestamp: start + Duration::minutes(minute),
            properties: Default::default(),
            merge_into: None,
            forwarded_from: None,
            hops: 0,
        },
    }
}

/// The seeds' page_view (5), signup (20) and demo_request (50) for `lead`, at offsets 0, 1, 2.
fn journey(lead: &str) -> Vec<Decoded<LeadEvent>> {
    vec![
        event(lead, "e1", "page_view", 0, 0),
        event(lead, "e2", "signup", 1, 1),
        event(lead, "e3", "demo_request", 2, 2),
    ]
}

async fn apply(processor: &ScoreProcessor, batch: &[Decoded<LeadEvent>]) -> Vec<Emit> {
    processor.apply(batch.to_vec(), &PauseSignal::default()).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Each emitted LeadScored with the position of the input that caused it.
fn scored(outputs: &[Emit]) -> Vec<(RecordPosition, LeadScored)> {
    outputs
        .iter()
        .map(|emit| match emit {
            Emit::Record { cause, record } => (cause.clone(), record.decode::<LeadScored>().unwrap()),
            Emit::DeadLetter(spec) => panic!("unexpected dead letter: {spec:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_leads_events_each_emit_the_cumulative_score_and_stage_caused_by_their_input() {
    let (processor, _rules) = processor().await;
    let batch = journey("ada");

    let outputs = scored(&apply(&processor, &batch).await);

    let causes: Vec<_> = outputs.iter().map(|(cause, _)| cause.clone()).collect();
    assert_eq!(causes, batch.iter().map(|input| input.position.clone()).collect::<Vec<_>>());
    let scores: Vec<_> = outputs.iter().map(|(_, r)| (r.event_id.as_str(), r.score, r.stage)).collect();
    assert_eq!(scores, [("e1", 5.0, Stage::Cold), ("e2", 25.0, Stage::Warm), ("e3", 75.0, Stage::Hot)]);
    assert!(outputs.iter().all(|(_, r)| r.lead_id == "ada" && r.rules_version == "v1"));
    assert_eq!(processor.metrics.events_scored.get(), 3);
}

#[tokio::test]
async fn a_batch_redone_at_the_same_positions_re_emits_identical_records() {
    let (processor, _rules) = processor().await;
    let batch = journey("grace");
    let first = apply(&processor, &batch).await;

    let redo = apply(&processor, &batch).await;

    assert_eq!(redo, first, "the same records for the same causes");
    assert_eq!(processor.metrics.events_repeated.get(), 3);
    assert_eq!(processor.metrics.events_duplicate.get(), 0);
}

#[tokio::test]
async fn an_event_id_repeated_at_another_offset_emits_nothing_and_counts_a_duplicate() {
    let (processor, _rules) = processor().await;
    apply(&processor, &journey("alan")).await;

    let later = [event("alan", "e2", "signup", 1, 10), event("alan", "e4", "download", 3, 11)];
    let outputs = scored(&apply(&processor, &later).await);

    assert_eq!(outputs.len(), 1, "only the new event: {outputs:?}");
    let (cause, record) = &outputs[0];
    assert_eq!((cause, record.event_id.as_str(), record.score), (&later[1].position, "e4", 85.0));
    assert_eq!(processor.metrics.events_duplicate.get(), 1);
}

#[tokio::test]
async fn an_event_id_twice_in_one_batch_emits_once() {
    let (processor, _rules) = processor().await;
    let batch = [event("ken", "e1", "signup", 0, 0), event("ken", "e1", "signup", 0, 1)];

    let outputs = scored(&apply(&processor, &batch).await);

    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!((&outputs[0].0, outputs[0].1.score), (&batch[0].position, 20.0));
    assert_eq!(processor.metrics.events_duplicate.get(), 1);
}

#[tokio::test]
async fn rules_changed_on_the_channel_score_the_next_batch() {
    let (processor, rules) = processor().await;
    let before = scored(&apply(&processor, &[event("tim", "e1", "page_view", 0, 0)]).await);
    assert_eq!((before[0].1.rules_version.as_str(), before[0].1.score), ("v1", 5.0));

    let mut changed = ScoringRules::seeds();
    changed.version = "v2".to_owned();
    changed.points.insert("page_view".to_owned(), 7.0);
    rules.send_modify(|book| book.set(RulesInForce { rules: Arc::new(changed), offset: Some(1) }));
    let after = scored(&apply(&processor, &[event("tim", "e2", "page_view", 1, 1)]).await);

    assert_eq!((after[0].1.rules_version.as_str(), after[0].1.delta), ("v2", 7.0));
}

#[tokio::test]
async fn two_projects_with_one_lead_id_keep_apart_and_each_is_scored_by_its_own_rules() {
    let (processor, rules) = processor().await;
    let mut acme = ScoringRules::seeds_for("acme");
    acme.version = "acme_v2".to_owned();
    acme.points.insert("page_view".to_owned(), 30.0);
    rules.send_modify(|book| book.set(RulesInForce { rules: Arc::new(acme), offset: Some(9) }));

    let batch = vec![
        project_event("acme", "ada", "e1", "page_view", 0, 0),
        event("ada", "e1", "page_view", 0, 1),
        project_event("globex", "ada", "e1", "page_view", 0, 2),
    ];
    let outputs = scored(&apply(&processor, &batch).await);

    let seen: Vec<(&str, &str, &str, f64, Stage)> = outputs
        .iter()
        .map(|(_, s)| (s.project_id.as_str(), s.lead_id.as_str(), s.rules_version.as_str(), s.score, s.stage))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("acme", "ada", "acme_v2", 30.0, Stage::Warm),
            ("default", "ada", "v1", 5.0, Stage::Cold),
            ("globex", "ada", "v1", 5.0, Stage::Cold),
        ],
        "one eventId in three projects is three events; a project without rules gets the seeds"
    );
    let keys: Vec<String> = ["acme/ada", "ada", "globex/ada"].map(String::from).to_vec();
    let stored = processor.store.load(&keys).await.unwrap();
    assert_eq!(stored.len(), 3, "three lead documents");
    assert_eq!(stored["acme/ada"].project_id, "acme");
    assert_eq!(stored["ada"].project_id, "default");
    assert_eq!(processor.store.history("acme/ada").await.unwrap().len(), 1);
    assert_eq!(processor.metrics.events_duplicate.get(), 0, "no project's event is another's repeat");
}

#[tokio::test]
async fn an_event_older_than_the_tail_is_recorded_too_late_and_a_redo_re_emits_its_record() {
    let (mut processor, _rules) = processor().await;
    processor.tail_events = 1;
    apply(&processor, &[event("lin", "e1", "signup", 10, 0), event("lin", "e2", "page_view", 20, 1)]).await;
    let batch = [event("lin", "old", "demo_request", 0, 2)];

    let first = apply(&processor, &batch).await;

    let records = scored(&first);
    let record = &records[0].1;
    assert_eq!(
        (record.reason.as_deref(), record.delta, record.score, record.late, record.lead_version),
        (Some("too_late"), 0.0, 25.0, true, Some(3))
    );
    assert_eq!(apply(&processor, &batch).await, first, "a redo re-emits the stored record");
    let lead = processor.store.lead("lin").await.unwrap().unwrap();
    assert_eq!((lead.version, lead.score, lead.tail.len()), (3, 25.0, 1));
    assert!(lead.events.is_empty());
    assert_eq!((processor.metrics.events_too_late.get(), processor.metrics.events_repeated.get()), (1, 1));
}

#[tokio::test]
async fn an_event_id_that_left_the_tail_and_comes_again_later_is_a_duplicate_not_a_stall() {
    let (mut processor, _rules) = processor().await;
    processor.tail_events = 1;
    apply(&processor, &[event("kai", "e1", "signup", 10, 0), event("kai", "e2", "page_view", 20, 1)]).await;
    // e1 left the one-event tail; the client sends it again with a newer timestamp, so the first
    // attempt does not ask the history about it and the unique index refuses the save.
    let again =
        apply(&processor, &[event("kai", "e1", "signup", 30, 2), event("kai", "e3", "page_view", 40, 3)])
            .await;

    let records = scored(&again);
    assert_eq!(records.iter().map(|(_, r)| r.event_id.as_str()).collect::<Vec<_>>(), ["e3"]);
    assert_eq!(processor.metrics.events_duplicate.get(), 1);
    let lead = processor.store.lead("kai").await.unwrap().unwrap();
    assert_eq!((lead.version, lead.score), (3, 30.0), "e1 counted once: 20 + 5 + 5");
}

/// Identity merges (`processor/merge.rs`).
mod merges {
    use super::*;
    use leadflow_core::contract::records::TopicRecord;

    /// The merge record of `lead` into `into`, read at `offset`, `minute` minutes in.
    fn merge_record(lead: &str, into: &str, id: &str, minute: i64, offset: i64) -> Decoded<LeadEvent> {
        let mut merge = event(lead, id, "identify", minute, offset);
        merge.record.merge_into = Some(into.to_owned());
        merge
    }

    /// `decoded` read again at `offset` of partition 1 (the known lead's, say).
    fn at(record: LeadEvent, offset: i64) -> Decoded<LeadEvent> {
        Decoded {
            position: RecordPosition { topic: topics::EVENTS.into(), partition: 1, offset },
            key: Some(record.key().as_bytes().to_vec()),
            record,
        }
    }

    enum Out {
        Scored(LeadScored),
        Event(LeadEvent),
        Dead(&'static str),
    }

    fn outs(outputs: &[Emit]) -> Vec<Out> {
        outputs
            .iter()
            .map(|emit| match emit {
                Emit::Record { record, .. } => match record.decode::<LeadScored>() {
                    Some(scored) => Out::Scored(scored),
                    None => Out::Event(record.decode::<LeadEvent>().expect("a LeadScored or a LeadEvent")),
                },
                Emit::DeadLetter(spec) => Out::Dead(spec.error_kind),
            })
            .collect()
    }

    fn forwarded(outputs: &[Emit]) -> Vec<LeadEvent> {
        outs(outputs)
            .into_iter()
            .filter_map(|out| match out {
                Out::Event(event) => Some(event),
                _ => None,
            })
            .collect()
    }

    fn closing(outputs: &[Emit]) -> Vec<LeadScored> {
        outs(outputs)
            .into_iter()
            .filter_map(|out| match out {
                Out::Scored(scored) if scored.merged_into.is_some() => Some(scored),
                _ => None,
            })
            .collect()
    }

    fn dead(outputs: &[Emit]) -> Vec<&'static str> {
        outs(outputs)
            .into_iter()
            .filter_map(|out| match out {
                Out::Dead(kind) => Some(kind),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_merge_re_sends_the_leads_applied_events_to_the_known_lead_and_closes_it_at_zero() {
        let (processor, _rules) = processor().await;
        let batch = vec![
            event("anon-1", "e1", "page_view", 0, 0),
            event("anon-1", "e2", "signup", 1, 1),
            merge_record("anon-1", "ada", "m1", 2, 2),
        ];

        let outputs = apply(&processor, &batch).await;

        let moved = forwarded(&outputs);
        let ids: Vec<_> = moved.iter().map(|e| (e.lead_id.as_str(), e.event_id.as_str(), e.hops)).collect();
        assert_eq!(ids, [("ada", "e1", 1), ("ada", "e2", 1)]);
        assert!(
            moved.iter().all(|e| e.forwarded_from.as_deref() == Some("anon-1") && e.merge_into.is_none())
        );
        let closed = closing(&outputs);
        assert_eq!(closed.len(), 1);
        let close = &closed[0];
        assert_eq!(
            (close.lead_id.as_str(), close.merged_into.as_deref(), close.score, close.delta, close.stage),
            ("anon-1", Some("ada"), 0.0, -25.0, Stage::Cold)
        );
        assert_eq!(close.previous_stage, Some(Stage::Warm));
        assert_eq!(processor.metrics.merges.with_label_values(&["merged"]).get(), 1);

        // The known lead's scorer applies them as any events, with its own: 5 + 20 + 50.
        let known =
            [event("ada", "own", "demo_request", 3, 5), at(moved[0].clone(), 6), at(moved[1].clone(), 7)];
        let scores = scored(&apply(&processor, &known).await);
        assert_eq!(scores.last().map(|(_, r)| r.score), Some(75.0));
    }

    #[tokio::test]
    async fn events_after_the_merge_are_forwarded_in_its_batch_and_after() {
        let (processor, _rules) = processor().await;
        let batch = vec![
            event("anon-2", "e1", "page_view", 0, 0),
            merge_record("anon-2", "bob", "m1", 1, 1),
            event("anon-2", "e2", "page_view", 2, 2),
        ];
        let outputs = apply(&processor, &batch).await;
        let moved = forwarded(&outputs);
        assert_eq!(moved.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["e1", "e2"]);

        let later = apply(&processor, &[event("anon-2", "e3", "signup", 3, 3)]).await;
        let later = forwarded(&later);
        assert_eq!(later.len(), 1);
        assert_eq!((later[0].lead_id.as_str(), later[0].hops), ("bob", 1));
        assert_eq!(processor.metrics.events_forwarded.get(), 2);
    }

    #[tokio::test]
    async fn a_merge_batch_redone_emits_the_same_records_and_a_repeat_emits_nothing() {
        let (processor, _rules) = processor().await;
        let batch = vec![
            event("anon-3", "e1", "page_view", 0, 0),
            merge_record("anon-3", "cy", "m1", 1, 1),
            event("anon-3", "e2", "page_view", 2, 2),
        ];
        let first = apply(&processor, &batch).await;

        let redo = apply(&processor, &batch).await;
        assert_eq!(redo, first, "the records of the merge, as the first attempt emitted them");

        let repeat = apply(&processor, &[merge_record("anon-3", "cy", "m1", 1, 9)]).await;
        assert!(repeat.is_empty(), "an SDK's resent identify changes nothing");
        assert_eq!(processor.metrics.merges.with_label_values(&["repeat"]).get(), 1);
    }

    #[tokio::test]
    async fn a_lead_merges_once_and_a_merge_closing_a_cycle_is_refused() {
        let (processor, _rules) = processor().await;
        apply(&processor, &[merge_record("anon-4", "dee", "m1", 0, 0)]).await;

        let elsewhere = apply(&processor, &[merge_record("anon-4", "eve", "m2", 1, 1)]).await;
        assert_eq!(dead(&elsewhere), ["merge_conflict"]);

        let back = apply(&processor, &[merge_record("dee", "anon-4", "m3", 2, 2)]).await;
        assert_eq!(dead(&back), ["merge_cycle"]);
        assert_eq!(processor.metrics.merges.with_label_values(&["refused"]).get(), 2);
    }

    #[tokio::test]
    async fn a_chain_moves_the_first_leads_events_on_and_forwards_hop_by_hop() {
        let (processor, _rules) = processor().await;
        let first =
            apply(&processor, &[event("a", "e1", "page_view", 0, 0), merge_record("a", "b", "m1", 1, 1)])
                .await;
        let moved = forwarded(&first);
        apply(&processor, &[at(moved[0].clone(), 0)]).await;

        let second = apply(&processor, &[merge_record("b", "c", "m2", 2, 1)]).await;
        let to_c = forwarded(&second);
        assert_eq!(
            to_c.iter().map(|e| (e.lead_id.as_str(), e.event_id.as_str())).collect::<Vec<_>>(),
            [("c", "e1")]
        );

        // A later event sent as `a` goes to `b`, which sends it on to `c`.
        let via_a = forwarded(&apply(&processor, &[event("a", "e2", "signup", 3, 2)]).await);
        let via_b = forwarded(&apply(&processor, &[at(via_a[0].clone(), 3)]).await);
        assert_eq!((via_b[0].lead_id.as_str(), via_b[0].hops), ("c", 2));
    }

    #[tokio::test]
    async fn a_merge_moves_the_newest_events_only_up_to_its_bound_and_redoes_the_same() {
        let (mut processor, _rules) = processor().await;
        processor.max_moved_events = 2;
        apply(&processor, &[event("long", "e1", "page_view", 0, 0), event("long", "e2", "signup", 1, 1)])
            .await;
        let batch = [event("long", "e3", "download", 2, 2), merge_record("long", "kim", "m1", 3, 3)];

        let first = apply(&processor, &batch).await;

        let ids: Vec<_> = forwarded(&first).iter().map(|e| e.event_id.clone()).collect();
        assert_eq!(ids, ["e2", "e3"], "the newest two, stored and of this batch");
        assert_eq!(processor.metrics.merge_events_left.get(), 1);
        assert_eq!(apply(&processor, &batch).await, first, "a redo moves the same events");
    }

    #[tokio::test]
    async fn an_event_forwarded_past_the_hop_limit_is_a_dead_letter() {
        let (processor, _rules) = processor().await;
        apply(&processor, &[merge_record("loop-a", "loop-b", "m1", 0, 0)]).await;
        let mut circling = event("loop-a", "e1", "page_view", 1, 1);
        circling.record.hops = leadflow_core::contract::records::MAX_FORWARD_HOPS;

        let outputs = apply(&processor, &[circling]).await;

        assert_eq!(dead(&outputs), ["merge_cycle"]);
    }
}
