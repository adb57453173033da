//! The automator against the real stack, with a webhook receiver stand-in: a rule "enters hot →
//! webhook" acts once per lead and UTC day, signed so that the receiver's own check verifies it;
//! a failing endpoint is retried on the schedule while a healthy one is served at once.

mod common;

use std::time::Duration;

use common::{AutomatorRun, ONE_AT_A_TIME, Receiver};
use leadflow_core::contract::records::{ActionOutcome, ExecutionOutcome, Stage};
use leadflow_core::model::automation::Condition;
use leadflow_core::model::webhook::RetrySchedule;
use leadflow_core::store::documents::DeliveryState;
use leadflow_testkit::kafka::produce_records;
use leadflow_testkit::{Stack, eventually};
use time::macros::datetime;

#[tokio::test(flavor = "multi_thread")]
async fn a_lead_entering_hot_gets_one_signed_delivery_per_utc_day() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = AutomatorRun::new(&stack);
    let receiver = Receiver::start().await;
    let (subscription, secret) =
        run.subscribe(&stack, &format!("{}/hot", receiver.base), &["lead.entered_stage"]).await;
    receiver.expect_secret("/hot", &secret).await;
    run.rule(&stack, "hot-to-hook", Condition::EntersStage { stage: Stage::Hot }, &subscription).await;
    let _automator = run.start(&stack, "a1", &[]).await;

    // Day one: warm, hot (fires), hot again, warm, hot again (the day is taken).
    let day_one = [
        ("e1", 20.0, Stage::Warm, datetime!(2026-03-09 20:00 UTC)),
        ("e2", 45.0, Stage::Hot, datetime!(2026-03-09 21:00 UTC)),
        ("e3", 55.0, Stage::Hot, datetime!(2026-03-09 22:00 UTC)),
        ("e4", 30.0, Stage::Warm, datetime!(2026-03-09 23:00 UTC)),
        // 23:30 at -02:00 is still 2026-03-10 01:30 UTC: the next UTC day, so it fires.
        ("e5", 48.0, Stage::Hot, datetime!(2026-03-09 23:30 -02:00)),
    ];
    let records: Vec<_> =
        day_one.iter().map(|(id, s, st, at)| run.scored("lead-1", id, *s, *st, *at)).collect();
    produce_records(&stack, &records[..4]).await;
    let first = receiver.wait_for("/hot", Duration::from_secs(60), |d| !d.is_empty()).await;
    assert_eq!(first.len(), 1);
    assert!(first[0].verified, "the receiver's own check: {:?}", first[0].verification);
    let body = first[0].json.clone().unwrap();
    assert_eq!(body["type"], "lead.entered_stage");
    assert_eq!(body["data"]["utcDay"], "2026-03-09");
    assert_eq!(body["data"]["leadId"], "lead-1");
    assert_eq!(body["data"]["lead"]["stage"], "hot");

    // More events the same day fire nothing more: a second lead's delivery is the witness that
    // lead-1's later records were read.
    let more = [
        run.scored("lead-1", "e6", 60.0, Stage::Hot, datetime!(2026-03-09 23:40 UTC)),
        run.scored("lead-2", "w1", 50.0, Stage::Hot, datetime!(2026-03-09 23:50 UTC)),
    ];
    produce_records(&stack, &more).await;
    let seen = receiver.wait_for("/hot", Duration::from_secs(60), |d| d.len() >= 2).await;
    assert_eq!(seen[1].json.as_ref().unwrap()["data"]["leadId"], "lead-2");

    // Across midnight: warm at 23:45, hot at 01:30 UTC the next day fires again.
    let next_day =
        [run.scored("lead-1", "e7", 30.0, Stage::Warm, datetime!(2026-03-09 23:45 UTC)), records[4].clone()];
    produce_records(&stack, &next_day).await;
    let seen = receiver.wait_for("/hot", Duration::from_secs(60), |d| d.len() >= 3).await;
    let lead_1: Vec<_> =
        seen.iter().filter(|d| d.json.as_ref().unwrap()["data"]["leadId"] == "lead-1").collect();
    assert_eq!(lead_1.len(), 2);
    assert_eq!(lead_1[1].json.as_ref().unwrap()["data"]["utcDay"], "2026-03-10");
    assert!(seen.iter().all(|d| d.verified), "every delivery verifies");
    assert_ne!(lead_1[0].webhook_id, lead_1[1].webhook_id, "one message per execution");

    let executions = run.executions(&stack, 3).await;
    // The two leads' records are on different partitions: no order between them.
    let mut keys: Vec<&str> = executions.iter().map(|e| e.execution_key.as_str()).collect();
    keys.sort();
    let p = &run.project;
    assert_eq!(
        keys,
        [
            format!("{p}/hot-to-hook/lead-1/2026-03-09"),
            format!("{p}/hot-to-hook/lead-1/2026-03-10"),
            format!("{p}/hot-to-hook/lead-2/2026-03-09"),
        ]
    );
    let first = executions.iter().find(|e| e.execution_key.ends_with("lead-1/2026-03-09")).unwrap();
    assert_eq!((first.rule_version.as_str(), first.outcome), ("v1", ExecutionOutcome::Queued));
    assert_eq!(first.trigger_event_id.as_deref(), Some("e2"));
    assert_eq!(first.actions[0].outcome, ActionOutcome::Queued);
    assert_eq!(first.actions[0].message_id, lead_1[0].webhook_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_endpoint_is_retried_on_the_schedule_and_a_healthy_one_is_not_held_up() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = AutomatorRun::new(&stack);
    let receiver = Receiver::start().await;
    // /down answers 500 to its first 3 requests and takes 3 s over every answer; /up is healthy.
    let down = serde_json::json!({ "perPath": { "/down": { "failFirst": 3, "latencyMs": 3000 } } });
    receiver.set_faults(down).await;
    let (failing, _) =
        run.subscribe(&stack, &format!("{}/down", receiver.base), &["lead.entered_stage"]).await;
    let (healthy, _) = run.subscribe(&stack, &format!("{}/up", receiver.base), &["lead.score_crossed"]).await;
    run.rule(&stack, "hot-down", Condition::EntersStage { stage: Stage::Hot }, &failing).await;
    run.rule(&stack, "fifty-up", Condition::ScoreCrosses { threshold: 50.0 }, &healthy).await;
    // The standard schedule at 1/1000: 0, 5 ms, 300 ms, 1.8 s, ...
    let scale = 0.001;
    let _automator = run.start(&stack, "a1", &[("LEADFLOW_WEBHOOKS__RETRY_SCALE", scale.to_string())]).await;

    // Eight leads at once enter hot and cross 50 in the same record: 8 deliveries to each.
    let at = datetime!(2026-03-09 12:00 UTC);
    let records: Vec<_> =
        (0..8).map(|i| run.scored(&format!("lead-{i}"), "e1", 60.0, Stage::Hot, at)).collect();
    produce_records(&stack, &records).await;

    // Every healthy delivery lands on its first attempt while the failing endpoint, four
    // attempts in flight at a time and 3 s an answer, has not even finished its first round.
    receiver.wait_for("/up", Duration::from_secs(60), |d| d.len() >= 8).await;
    let down_done = run.deliveries(&stack).await.into_iter().filter(|d| d.endpoint_id == failing);
    assert!(
        down_done.clone().all(|d| d.state == DeliveryState::Pending),
        "the failing endpoint's deliveries are still going when the healthy ones are all done"
    );
    let up = receiver.deliveries("/up").await;
    assert_eq!(up.len(), 8, "one attempt each");

    // Then the failing ones succeed, each after the schedule's delays.
    let deliveries =
        eventually("the failing endpoint's deliveries to succeed", Duration::from_secs(120), || async {
            let mine: Vec<_> =
                run.deliveries(&stack).await.into_iter().filter(|d| d.endpoint_id == failing).collect();
            Ok((mine.len() == 8 && mine.iter().all(|d| d.state == DeliveryState::Delivered)).then_some(mine))
        })
        .await
        .unwrap();
    let schedule = RetrySchedule::standard().scaled(scale);
    let mut retried = 0;
    for delivery in &deliveries {
        let attempts = &delivery.attempts;
        assert_eq!(attempts.last().unwrap().outcome, "succeeded");
        for (k, pair) in attempts.windows(2).enumerate() {
            // Attempt k+2 waits at least delays[k+1] (less 20% jitter) after attempt k+1 ended.
            let ended = pair[0].attempted_at_ms + pair[0].latency_ms as i64;
            let floor = schedule.delays()[k + 1].mul_f64(0.8).as_millis() as i64;
            assert!(
                pair[1].attempted_at_ms >= ended + floor,
                "attempt {} of {} came early: {attempts:?}",
                k + 2,
                delivery.id
            );
            assert_eq!(pair[0].response_code, Some(500));
        }
        retried += attempts.len() - 1;
    }
    // The receiver fails the first 3 requests to /down, whichever deliveries they carried.
    assert_eq!(retried, 3, "three failed attempts in all");
    let at_down = receiver.deliveries("/down").await;
    let ids: std::collections::BTreeSet<_> = at_down.iter().map(|d| d.webhook_id.clone()).collect();
    assert_eq!((at_down.len(), ids.len()), (11, 8), "retries carry the same Webhook-Id");
}

/// The receiver README shows (`docs/examples/webhook_receiver.py`) accepts LeadFlow's deliveries
/// and refuses one signed with another secret.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_s_receiver_verifies_a_delivery_and_refuses_a_forged_one() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = AutomatorRun::new(&stack);
    let script = leadflow_testkit::repo_root().join("docs/examples/webhook_receiver.py");
    let secret = leadflow_core::model::webhook::WebhookSecret::generate().unwrap();
    let env = [("WEBHOOK_SECRET", secret.expose()), ("PORT", "0".to_owned())];
    let script_arg = script.to_string_lossy().into_owned();
    let mut receiver =
        leadflow_testkit::ServiceProcess::spawn_with_args("/usr/bin/python3", &[&script_arg], &env).unwrap();
    receiver.wait_for_log("listening on port", Duration::from_secs(20)).await.unwrap();
    let port =
        receiver.logs().lines().find_map(|l| l.strip_prefix("listening on port ")).unwrap().trim().to_owned();
    let url = format!("http://127.0.0.1:{port}/hook");

    // The subscription as the gateway stores it, with the secret the receiver was given...
    let (genuine, _) = run.subscribe(&stack, &url, &["lead.entered_stage"]).await;
    let db = run.database(&stack).await;
    let endpoints = db.collection::<mongodb::bson::Document>("webhook_endpoints");
    endpoints
        .update_one(
            mongodb::bson::doc! { "_id": &genuine },
            mongodb::bson::doc! { "$set": { "secret": secret.expose() } },
        )
        .await
        .unwrap();
    // ...and one whose secret the receiver does not know.
    let (forged, _) = run.subscribe(&stack, &url, &["lead.score_crossed"]).await;
    run.rule(&stack, "hot", Condition::EntersStage { stage: Stage::Hot }, &genuine).await;
    run.rule(&stack, "fifty", Condition::ScoreCrosses { threshold: 50.0 }, &forged).await;
    let _automator = run.start(&stack, "a1", &[("LEADFLOW_WEBHOOKS__RETRY_SCALE", "1".to_owned())]).await;
    produce_records(&stack, &[run.scored("lead-1", "e1", 60.0, Stage::Hot, datetime!(2026-03-09 12:00 UTC))])
        .await;

    let deliveries = eventually("both deliveries attempted", Duration::from_secs(60), || async {
        let all = run.deliveries(&stack).await;
        Ok((all.len() == 2 && all.iter().all(|d| !d.attempts.is_empty())).then_some(all))
    })
    .await
    .unwrap();
    let of = |endpoint: &str| deliveries.iter().find(|d| d.endpoint_id == endpoint).unwrap();
    assert_eq!(of(&genuine).state, DeliveryState::Delivered);
    assert_eq!(of(&genuine).attempts[0].response_code, Some(204));
    assert_eq!(of(&forged).attempts[0].response_code, Some(400), "the forged one is refused");
    assert_eq!(of(&forged).state, DeliveryState::Pending, "and retried later on the schedule");
    let logs = receiver.logs();
    assert!(logs.contains(&format!("verified {}", of(&genuine).id)), "{logs}");
    assert!(logs.contains(&format!("refused {}", of(&forged).id)), "{logs}");
}

/// A To Check lead that a person verifies becomes Verified: the review, read from
/// `leads.reviews.v1`, fires a `becomesVerified` rule once.
#[tokio::test(flavor = "multi_thread")]
async fn a_person_verifying_a_to_check_lead_fires_becomes_verified() {
    use leadflow_core::contract::records::{EnrichmentStatus, LeadEnriched, LeadReviewed, ReviewDecision};
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = AutomatorRun::new(&stack);
    let receiver = Receiver::start().await;
    let (subscription, secret) =
        run.subscribe(&stack, &format!("{}/verified", receiver.base), &["lead.verified"]).await;
    receiver.expect_secret("/verified", &secret).await;
    run.rule(&stack, "verified", Condition::BecomesVerified {}, &subscription).await;
    let _automator = run.start(&stack, "a1", &[]).await;

    let at = datetime!(2026-03-09 12:00 UTC);
    let enriched = LeadEnriched {
        project_id: run.project.clone(),
        lead_id: "lead-1".into(),
        name: "Ada Lovelace".into(),
        email: None,
        company: None,
        country_code: Some("NL".into()),
        country_name: Some("Netherlands".into()),
        probability: Some(0.25),
        status: EnrichmentStatus::ToCheck,
        reason: Some("low_probability".into()),
        provider: "nationalize".into(),
        enriched_at: at,
    };
    produce_records(&stack, &[enriched]).await;
    let review = LeadReviewed {
        project_id: run.project.clone(),
        lead_id: "lead-1".into(),
        decision: ReviewDecision::Verified,
        reviewer: Some("grace@example.com".into()),
        note: None,
        reviewed_at: at + time::Duration::minutes(5),
    };
    produce_records(&stack, &[review]).await;

    let seen = receiver.wait_for("/verified", Duration::from_secs(60), |d| !d.is_empty()).await;
    let body = seen[0].json.clone().unwrap();
    assert!(seen[0].verified);
    assert_eq!(body["type"], "lead.verified");
    assert_eq!(body["data"]["lead"]["status"], "Verified");
    assert_eq!(body["data"]["trigger"]["topic"], "leads.reviews.v1");
    let executions = run.executions(&stack, 1).await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    assert_eq!(executions[0].trigger.topic, "leads.reviews.v1");
}
