//! The read API's pure shaping (summaries, pages, history, intelligence) and its handlers
//! through `oneshot`, on the whole app with a key of every scope: every 400
//! answers before MongoDB is asked (the harness's MongoDB never answers), and an unreachable
//! MongoDB is a 503 with Retry-After.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use time::macros::datetime;

use leadflow_core::contract::records::{EnrichmentStatus, ReviewDecision};
use leadflow_core::model::read_model::{DeliveryAttempt, RecordPosition};

use super::*;
use crate::read::read_query::{Cursor, SortOrder};

const T0: OffsetDateTime = datetime!(2026-01-16 10:00 UTC);

/// Through the whole app (the harness's MongoDB never answers), with a key of every scope.
async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
    crate::testing::Harness::new().send(Request::get(path).body(Body::empty()).unwrap()).await
}

async fn bad_request_naming(path: &str, field: &str) -> Value {
    let (status, _, body) = get(path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
    assert_eq!(body["error"], "invalid_field", "{path}");
    assert_eq!(body["field"], field, "{path}: {body}");
    body
}

#[tokio::test]
async fn bad_list_parameters_are_400_naming_the_parameter_before_any_read() {
    let body = bad_request_naming("/api/leads?status=verified", "status").await;
    assert!(body["message"].as_str().unwrap().contains("Verified, To Check, Rejected"), "{body}");
    let body = bad_request_naming("/api/leads?stage=boiling", "stage").await;
    assert!(body["message"].as_str().unwrap().contains("cold, warm, hot, qualified"), "{body}");
    bad_request_naming("/api/leads?sort=name", "sort").await;
    bad_request_naming("/api/leads?limit=0", "limit").await;
    bad_request_naming("/api/leads?limit=101", "limit").await;
    bad_request_naming(&format!("/api/leads?q={}", "a".repeat(101)), "q").await;
    bad_request_naming("/api/leads?cursor=not-a-cursor", "cursor").await;
    bad_request_naming("/api/leads?offset=10", "offset").await;
    bad_request_naming("/api/leads?cursor=3e0~1~bad%20id", "cursor").await;
    let body = bad_request_naming("/api/leads?status=x&stage=y", "status").await;
    assert_eq!(body["details"].as_array().unwrap().len(), 2, "every bad parameter is listed: {body}");
}

#[tokio::test]
async fn bad_lead_ids_and_parameters_are_400_on_every_lead_route() {
    for suffix in ["", "/history", "/intelligence"] {
        bad_request_naming(&format!("/api/leads/bad%20id{suffix}"), "id").await;
        bad_request_naming(&format!("/api/leads/{}{suffix}", "a".repeat(129)), "id").await;
        bad_request_naming(&format!("/api/leads/%FF{suffix}"), "id").await;
        bad_request_naming(&format!("/api/leads/lead-1{suffix}?verbose=1"), "verbose").await;
    }
    bad_request_naming("/api/leaderboard?limit=1000", "limit").await;
    bad_request_naming("/api/leaderboard?stage=hot", "stage").await;
}

#[tokio::test]
async fn an_unreachable_read_model_is_503_with_retry_after_on_every_read_route() {
    for path in [
        "/api/leads",
        "/api/leads?status=Verified&sort=score&limit=5",
        "/api/leads/lead-1",
        "/api/leads/lead-1/history",
        "/api/leads/lead-1/intelligence",
        "/api/leaderboard",
    ] {
        let (status, headers, body) = get(path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(headers[header::RETRY_AFTER], "2", "{path}");
        assert_eq!(body["error"], "unavailable", "{path}");
    }
}

fn view() -> LeadView {
    let mut view = LeadView::new("lead-1", 3);
    view.enrichment = Some(Enrichment {
        name: "Ada Lovelace".into(),
        email: Some("ada@example.com".into()),
        company: None,
        country_code: Some("GB".into()),
        country_name: Some("United Kingdom".into()),
        probability: Some(0.4),
        status: EnrichmentStatus::ToCheck,
        reason: Some("low probability".into()),
        enriched_at: T0,
    });
    view.scoring = Some(Scoring {
        score: 60.0,
        stage: Stage::Hot,
        last_event_at: T0 + time::Duration::hours(1),
        lead_version: 2,
        processed_at: T0 + time::Duration::hours(1),
        rules_version: "v1".into(),
        merged_into: None,
    });
    view.version = 3;
    view
}

#[test]
fn a_summary_takes_the_reviewed_status_and_the_newest_activity() {
    let mut view = view();
    let s = summary(&view, None);
    assert_eq!(s.shown.status, Some(leadflow_core::model::read_model::LeadStatus::ToCheck));
    assert_eq!((s.shown.stage, s.score, s.in_crm), (Some(Stage::Hot), Some(60.0), false));
    assert_eq!(s.last_activity_at, Some(T0 + time::Duration::hours(1)));
    view.review = Some(Review {
        decision: ReviewDecision::Verified,
        reviewer: None,
        note: None,
        reviewed_at: T0 + time::Duration::hours(5),
    });
    view.synced_version = 3;
    let s = summary(&view, None);
    assert_eq!(
        (s.shown.status, s.in_crm),
        (Some(leadflow_core::model::read_model::LeadStatus::Verified), true)
    );
    assert_eq!(s.last_activity_at, Some(T0 + time::Duration::hours(5)));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["status"], "Verified");
    assert_eq!(json["lastActivityAt"], "2026-01-16T15:00:00Z");
    assert_eq!(json["inCrm"], true);
    assert_eq!(json["countryCode"], "GB");
    assert_eq!(json["company"], Value::Null);
}

#[test]
fn a_merged_lead_answers_where_it_went_and_another_lead_does_not_say_merged() {
    let mut view = view();
    assert!(serde_json::to_value(summary(&view, None)).unwrap().get("mergedInto").is_none());
    let scoring = view.scoring.as_mut().unwrap();
    (scoring.score, scoring.stage, scoring.merged_into) = (0.0, Stage::Cold, Some("user-42".into()));

    let json = serde_json::to_value(summary(&view, None)).unwrap();

    assert_eq!((json["mergedInto"].as_str(), json["score"].as_f64()), (Some("user-42"), Some(0.0)));
}

fn stored(id: &str, score: f64, at: i64) -> StoredLead {
    let mut view = view();
    view.key = id.into();
    StoredLead { view, score, last_activity_ms: at }
}

#[test]
fn a_page_has_a_cursor_only_when_more_follow() {
    let mut query = read_query::parse_list_query(&[]).unwrap();
    query.limit = 2;
    let with_score = |leads: Vec<StoredLead>| leads.into_iter().map(|l| (l, 1.0)).collect();
    let recent =
        page(with_score(vec![stored("a", 9.0, 11), stored("b", 8.0, 10), stored("c", 7.0, 3)]), &query);
    assert_eq!(recent.leads.iter().map(|l| l.lead_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(recent.leads[0].effective_score, Some(1.0));
    assert_eq!(
        Cursor::decode(&recent.next_cursor.unwrap()).unwrap(),
        Cursor::after(8.0, 10, "b"),
        "continues after the last lead shown"
    );
    let last = page(with_score(vec![stored("a", 9.0, 1), stored("b", 8.0, 2)]), &query);
    assert_eq!((last.leads.len(), last.next_cursor), (2, None));
}

#[test]
fn a_page_by_score_continues_after_its_last_score_now_at_the_same_instant() {
    let mut query = read_query::parse_list_query(&[]).unwrap();
    query.limit = 2;
    query.sort = SortOrder::Score;
    let ranked = |id: &str, score: f64| Ranked { lead: stored(id, 50.0, 1), score };
    let at = T0 + time::Duration::days(30);
    let full = ranked_page(vec![ranked("a", 9.0), ranked("b", 8.0), ranked("c", 7.0)], &query, at);
    assert_eq!(full.leads.iter().map(|l| l.effective_score).collect::<Vec<_>>(), [Some(9.0), Some(8.0)]);
    let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    assert_eq!(Cursor::decode(full.next_cursor.as_deref().unwrap()).unwrap(), Cursor::after(8.0, at_ms, "b"));
    let last = ranked_page(vec![ranked("a", 9.0)], &query, at);
    assert_eq!(last.next_cursor, None);
}

/// The `score_history` entries of `events` applied in this order under the seeds, as the scorer
/// records them.
fn entries(events: &[(&str, &str, OffsetDateTime)]) -> Vec<HistoryDoc> {
    leadflow_testkit::scorer_state::applied("default", "lead-1", events, &ScoringRules::seeds(), 32).1
}

#[test]
fn history_is_chronological_with_a_running_total_and_marks_late_events() {
    let rules = ScoringRules::seeds();
    // Applied in this order: the demo request first, then an older page view, then a signup.
    let events = entries(&[
        ("e-demo", "demo_request", T0 + time::Duration::hours(3)),
        ("e-view", "page_view", T0 + time::Duration::hours(1)),
        ("e-sign", "signup", T0 + time::Duration::hours(4)),
        ("e-odd", "tweet", T0 + time::Duration::hours(5)),
    ]);
    let items = history_items(&rules, &events);
    let summary: Vec<(&str, f64, f64, f64, Stage, bool)> =
        items.iter().map(|i| (i.event_id.as_str(), i.points, i.delta, i.score, i.stage, i.late)).collect();
    assert_eq!(
        summary,
        [
            ("e-view", 5.0, 5.0, 5.0, Stage::Cold, true),
            ("e-demo", 50.0, 50.0, 55.0, Stage::Hot, false),
            ("e-sign", 20.0, 20.0, 75.0, Stage::Hot, false),
            ("e-odd", 0.0, 0.0, 75.0, Stage::Hot, false),
        ]
    );
    assert_eq!(items[3].reason, Some(scoring::REASON_NO_RULE));
    assert!(history_items(&rules, &[]).is_empty());
}

#[test]
fn a_too_late_event_is_listed_in_its_place_with_the_total_carried_and_splits_no_gap() {
    let rules = ScoringRules::seeds();
    let mut events = entries(&[
        ("a", "demo_request", T0),
        ("b", "page_view", T0 + time::Duration::days(17)),
        ("c", "contract_signed", T0 + time::Duration::days(8)),
        ("d", "signup", T0 - time::Duration::days(1)),
    ]);
    // As the scorer records events older than its window.
    for too_late in &mut events[2..] {
        too_late.record.reason = Some(scoring::REASON_TOO_LATE.into());
    }
    let items = history_items(&rules, &events);
    type Row<'a> = (&'a str, f64, f64, f64, bool, Option<&'a str>);
    let summary: Vec<Row> =
        items.iter().map(|i| (i.event_id.as_str(), i.points, i.delta, i.score, i.late, i.reason)).collect();
    assert_eq!(
        summary,
        [
            ("d", 0.0, 0.0, 0.0, true, Some(scoring::REASON_TOO_LATE)),
            ("a", 50.0, 50.0, 50.0, false, None),
            ("c", 0.0, 0.0, 50.0, true, Some(scoring::REASON_TOO_LATE)),
            ("b", 5.0, -15.063153, 34.936847, false, None),
        ],
        "b decays over the whole 17 days, as without c"
    );
    assert_eq!((items[0].stage, items[2].stage), (Stage::Cold, Stage::Hot));
}

#[test]
fn history_deltas_include_the_decay_over_a_quiet_gap() {
    let rules = ScoringRules::seeds();
    let events = entries(&[("a", "demo_request", T0), ("b", "page_view", T0 + time::Duration::days(17))]);
    let items = history_items(&rules, &events);
    // 10 days past the 7-day grace at 5 %/day: 50 × 0.95^10 = 29.936847, plus 5.
    assert_eq!(items[1].score, 34.936847);
    assert_eq!(items[1].delta, -15.063153);
    assert_eq!(items[1].points, 5.0);
}

#[test]
fn the_effective_score_decays_to_now_from_the_scorer_s_state_or_else_from_the_read_model() {
    let rules = ScoringRules::seeds();
    let scoring = view().scoring.unwrap();
    let last = scoring.last_event_at;
    assert_eq!(effective_score(&rules, &scoring, None, last + time::Duration::days(7)), 60.0, "within grace");
    assert_eq!(
        effective_score(&rules, &scoring, None, last + time::Duration::days(8)),
        57.0,
        "one day past grace, from the stored score"
    );
    let state = ScoreState { score: 70.0, stage: Stage::Hot, as_of: Some(last), version: 2 };
    assert_eq!(
        effective_score(&rules, &scoring, Some(&state), last + time::Duration::days(8)),
        66.5,
        "from the scorer's score, which may be ahead of the read model: 70 × 0.95"
    );
}

#[test]
fn the_detail_carries_the_crm_sync_without_internal_positions() {
    let mut view = view();
    view.synced_version = 2;
    view.synced_at = Some(T0);
    view.last_delivery = Some(DeliveryAttempt {
        version: 3,
        destination: "http".into(),
        status: DeliveryStatus::DeadLettered,
        at: T0 + time::Duration::hours(2),
        trigger: RecordPosition { topic: "leads.enriched.v1".into(), partition: 0, offset: 9 },
        error: Some("bad email".into()),
    });
    let detail = detail(&view, None, &ScoringRules::seeds(), T0 + time::Duration::hours(2));
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["leadId"], "lead-1");
    assert_eq!(json["scoring"]["score"], 60.0);
    assert_eq!(json["scoring"]["effectiveScore"], 60.0);
    assert_eq!(json["scoring"]["lastEventAt"], "2026-01-16T11:00:00Z");
    assert_eq!(json["enrichment"]["reason"], "low probability");
    assert_eq!(json["review"], Value::Null);
    assert_eq!(
        json["crm"],
        json!({"version": 3, "syncedVersion": 2, "syncedAt": "2026-01-16T10:00:00Z",
               "lastDelivery": {"version": 3, "destination": "http", "status": "dead_lettered",
                                "at": "2026-01-16T12:00:00Z", "error": "bad email"}})
    );
    assert!(json["crm"]["lastDelivery"].get("trigger").is_none());
}

#[test]
fn intelligence_takes_the_read_model_stage_and_the_scorers_newest_event() {
    let now = T0 + time::Duration::hours(2);
    let state = ScoreState {
        score: 60.0,
        stage: Stage::Hot,
        as_of: Some(now - time::Duration::minutes(10)),
        version: 3,
    };
    let answer = intelligence_of("lead-1", Some(&view()), Some(&state), 3, now);
    assert_eq!(
        (answer.velocity, answer.risk, answer.next_action),
        (3, Risk::Low, NextAction::ImmediateOutreach)
    );
    assert_eq!(answer.last_event_at, Some(now - time::Duration::minutes(10)));
    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(json["nextAction"], "immediate_outreach");
    assert_eq!(json["risk"], "low");
    assert_eq!(json["stage"], "hot");

    let unscored = intelligence_of("lead-1", None, None, 0, now);
    assert_eq!(
        (unscored.velocity, unscored.risk, unscored.next_action),
        (0, Risk::High, NextAction::NurtureCampaign)
    );
    assert_eq!((unscored.stage, unscored.score), (None, None));
}
