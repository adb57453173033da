//! Rules replaced at run time through `scoring.rules.v1`, and the decay pass, on the real stack.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ONE_AT_A_TIME, ScorerRun, event, produce_events, run_id};
use leadflow_core::contract::records::{LeadEvent, LeadScored, SCORING_RULES_KEY, Stage};
use leadflow_core::contract::topics;
use leadflow_core::model::scoring::{LeadState, ScoringEvent, ScoringRules};
use leadflow_core::stage::rules_feed::RuleBook;
use leadflow_testkit::kafka::{produce, producer};
use leadflow_testkit::{Stack, unique};
use scorer::decay_pass::DecayPass;
use scorer::store::LeadDoc;
use time::OffsetDateTime;
use time::macros::datetime;

/// Writes `rules` under its project's key, as the gateway's `PUT /api/scoring-rules` does.
async fn publish_project_rules(stack: &Stack, rules: &ScoringRules) {
    use leadflow_core::contract::records::TopicRecord;
    let value = common::codec(stack).encode(rules).await.unwrap();
    produce(&producer(stack), topics::SCORING_RULES, &rules.key(), &value).await;
}

async fn publish_rules(stack: &Stack, rules: &ScoringRules) {
    let value = common::codec(stack).encode(rules).await.unwrap();
    produce(&producer(stack), topics::SCORING_RULES, SCORING_RULES_KEY, &value).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rule_set_on_the_topic_is_picked_up_and_named_in_each_record() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let mut scorer = run.start(&stack, "a", &[]).await;
    let mut changed = ScoringRules::seeds();
    changed.version = unique("test-rules");
    changed.points.insert("page_view".into(), 7.0);
    publish_rules(&stack, &changed).await;
    scorer.wait_for_log(&format!("version={}", changed.version), Duration::from_secs(30)).await.unwrap();

    let lead = format!("{}-rules", run_id());
    produce_events(&stack, &[event("r1", &lead, "page_view", datetime!(2026-01-16 10:00 UTC))]).await;
    let scores = run.read_scores(&stack, &lead, 1, Duration::from_secs(60)).await;
    // Put the seeds' points back, under a version of their own, for whatever runs next.
    let mut restored = ScoringRules::seeds();
    restored.version = unique("seeds");
    publish_rules(&stack, &restored).await;

    assert_eq!((scores[0].score, scores[0].rules_version.as_str()), (7.0, changed.version.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_project_is_scored_by_its_own_rules_and_one_lead_id_in_two_projects_is_two_leads() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let mut scorer = run.start(&stack, "a", &[]).await;
    let project = run_id().to_lowercase();
    let mut theirs = ScoringRules::seeds_for(&project);
    theirs.version = unique("project-rules").replace('-', "_");
    theirs.points.insert("page_view".into(), 30.0);
    publish_project_rules(&stack, &theirs).await;
    scorer.wait_for_log(&format!("version={}", theirs.version), Duration::from_secs(30)).await.unwrap();

    // The same leadId and the same eventId in the default project and in `project`.
    let lead = format!("{}-tenant", run_id());
    let at = datetime!(2026-01-16 10:00 UTC);
    let in_project = LeadEvent { project_id: project.clone(), ..event("t1", &lead, "page_view", at) };
    produce_events(&stack, &[event("t1", &lead, "page_view", at), in_project]).await;

    let records = leadflow_testkit::kafka::read_from(&stack, topics::SCORES, &run.scores_from, |r| {
        r.iter().filter(|r| r.key.ends_with(&lead)).count() >= 2
    })
    .await;
    let mut seen: Vec<(String, LeadScored)> = Vec::new();
    for record in records.iter().filter(|r| r.key.ends_with(&lead)) {
        let scored: LeadScored = common::codec(&stack).decode(&record.value).await.unwrap();
        seen.push((record.key.clone(), scored));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let trail: Vec<(&str, &str, f64, &str)> = seen
        .iter()
        .map(|(key, s)| (key.as_str(), s.project_id.as_str(), s.score, s.rules_version.as_str()))
        .collect();
    let project_key = format!("{project}/{lead}");
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert_eq!(trail[0].0, project_key, "{trail:?}");
    assert_eq!((trail[0].1, trail[0].2, trail[0].3), (project.as_str(), 30.0, theirs.version.as_str()));
    assert_eq!(
        (trail[1].0, trail[1].1, trail[1].2),
        (lead.as_str(), "default", 5.0),
        "the default project keeps its rules"
    );
    let store = run.store(&stack).await;
    assert_eq!(store.lead(&project_key).await.unwrap().map(|d| d.project_id), Some(project.clone()));
    assert_eq!(store.lead(&lead).await.unwrap().map(|d| d.project_id), Some("default".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decay_pass_announces_a_stage_drop_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let store = run.store(&stack).await;
    store.ensure_indexes().await.unwrap();
    let lead_id = format!("{}-quiet", run_id());
    // 75 points, hot, 30 days before `now`: 23 days of decay leave 75 × 0.95^23 ≈ 23.0, warm.
    let last_event = datetime!(2026-01-16 10:10 UTC);
    let now = last_event + time::Duration::days(30);
    let mut lead = LeadDoc::new(&lead_id, 2);
    let events: Vec<ScoringEvent> = [("q1", "page_view"), ("q2", "signup"), ("q3", "demo_request")]
        .iter()
        .map(|(id, kind)| ScoringEvent {
            event_id: (*id).into(),
            event_type: (*kind).into(),
            timestamp: last_event,
        })
        .collect();
    let mut state = LeadState::default();
    state.apply(&ScoringRules::seeds(), &events, 32);
    lead.set_state(&state);
    lead.version = 3;
    assert_eq!((lead.score, lead.stage, lead.as_of.as_str()), (75.0, Stage::Hot, "2026-01-16T10:10:00Z"));
    store.save(Vec::new(), vec![(lead, 0)]).await.unwrap();

    let from = leadflow_testkit::kafka::end_offsets(&stack, topics::SCORES);
    let pass = DecayPass {
        store: store.clone(),
        codec: Arc::new(common::codec(&stack)),
        producer: producer(&stack),
        rules: tokio::sync::watch::channel(RuleBook::default()).1,
        assigned: Arc::new(Mutex::new(BTreeSet::from([2]))),
        interval: Duration::from_secs(3600),
        metrics: scorer::metrics::ScorerMetrics::register(&prometheus::Registry::new()).unwrap(),
    };
    assert_eq!(pass.once(now).await.unwrap(), 1);
    assert_eq!(pass.once(now).await.unwrap(), 0, "a drop is announced once");
    assert_eq!(
        pass.once(OffsetDateTime::now_utc() + time::Duration::days(3650)).await.unwrap(),
        1,
        "and the next drop again"
    );

    let records = leadflow_testkit::kafka::read_from(&stack, topics::SCORES, &from, |r| {
        r.iter().filter(|r| r.key == lead_id).count() >= 2
    })
    .await;
    let announced: Vec<LeadScored> =
        common::decode_all(&stack, records.iter().filter(|r| r.key == lead_id)).await;
    assert_eq!(announced[0].event_type, "decay");
    assert_eq!((announced[0].stage, announced[0].previous_stage), (Stage::Warm, Some(Stage::Hot)));
    assert!((announced[0].score - 75.0 * 0.95f64.powi(23)).abs() < 1e-3, "{}", announced[0].score);
    assert_eq!((announced[1].stage, announced[1].previous_stage), (Stage::Cold, Some(Stage::Warm)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decay_candidates_are_judged_by_instant_whatever_the_events_offset() {
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let store = run.store(&stack).await;
    store.ensure_indexes().await.unwrap();
    // 10:10 at +09:00 is 01:10 UTC: before 05:00 UTC, though its text sorts after "…05:00…Z".
    let tokyo = time::macros::datetime!(2026-01-16 10:10 +09:00);
    let (key, later_key) = (format!("{}-tokyo", run_id()), format!("{}-later", run_id()));
    let mut saved = Vec::new();
    for (key, at) in [(&key, tokyo), (&later_key, time::macros::datetime!(2026-01-16 06:00 UTC))] {
        let mut lead = LeadDoc::new(key, 4);
        let mut state = LeadState::default();
        let demo = ScoringEvent { event_id: "d".into(), event_type: "demo_request".into(), timestamp: at };
        state.apply(
            &ScoringRules::seeds(),
            &[demo.clone(), ScoringEvent { event_id: "s".into(), ..demo }],
            32,
        );
        lead.set_state(&state);
        lead.version = 2;
        assert_ne!(lead.stage, Stage::Cold);
        saved.push((lead, 0));
    }
    assert!(saved[0].0.as_of.ends_with("+09:00"), "{}", saved[0].0.as_of);
    store.save(Vec::new(), saved).await.unwrap();

    let candidates =
        store.decay_candidates(&[4], time::macros::datetime!(2026-01-16 05:00 UTC)).await.unwrap();

    let keys: Vec<&str> = candidates.iter().map(|l| l.key.as_str()).collect();
    assert!(keys.contains(&key.as_str()), "01:10 UTC is before 05:00 UTC: {keys:?}");
    assert!(!keys.contains(&later_key.as_str()), "06:00 UTC is not: {keys:?}");
}
