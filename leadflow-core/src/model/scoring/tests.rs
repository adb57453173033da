use proptest::prelude::*;
use serde_json::json;
use time::macros::datetime;

use super::*;

pub(super) const T1: OffsetDateTime = datetime!(2026-01-16 10:00 UTC);
const T2: OffsetDateTime = datetime!(2026-01-16 10:05 UTC);
const T3: OffsetDateTime = datetime!(2026-01-16 10:10 UTC);

pub(super) fn event(event_id: &str, event_type: &str, timestamp: OffsetDateTime) -> ScoringEvent {
    ScoringEvent { event_id: event_id.to_owned(), event_type: event_type.to_owned(), timestamp }
}

/// The seeds' scenario: 5 + 20 + 50 within ten minutes.
fn seeded_lead() -> Vec<ScoringEvent> {
    vec![event("evt1", "page_view", T1), event("evt2", "signup", T2), event("evt3", "demo_request", T3)]
}

/// Equal up to the rounding of scores to 6 decimal places.
fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() <= 5e-7, "{actual} != {expected}");
}

#[test]
fn the_seeded_scenario_scores_75_and_is_hot() {
    let rules = ScoringRules::seeds();
    let mut applied = Vec::new();
    let mut outcomes = Vec::new();
    for new in seeded_lead() {
        outcomes.push(apply(&rules, &applied, &new).expect("a new event"));
        applied.push(new);
    }
    let summary: Vec<_> = outcomes.iter().map(|o| (o.delta, o.score, o.stage, o.previous_stage)).collect();
    assert_eq!(
        summary,
        [
            (5.0, 5.0, Stage::Cold, None),
            (20.0, 25.0, Stage::Warm, Some(Stage::Cold)),
            (50.0, 75.0, Stage::Hot, Some(Stage::Warm)),
        ]
    );
    assert!(outcomes.iter().all(|o| !o.late && o.reason.is_none()));
    assert_eq!(outcomes[2].as_of, T3);
    assert_eq!(score(&rules, &applied), 75.0);

    assert_eq!(apply(&rules, &applied, &event("evt2", "signup", T2)), None, "evt2 is applied once");
    assert_eq!(score(&rules, &applied), 75.0);
}

#[test]
fn an_event_id_posted_twice_counts_once() {
    let rules = ScoringRules::seeds();
    let signup = event("evt9", "signup", T1);
    assert_eq!(score(&rules, &[signup.clone(), signup.clone()]), 20.0);
    assert_eq!(history(&rules, &[signup.clone(), signup.clone()]).len(), 1);
    assert_eq!(apply(&rules, std::slice::from_ref(&signup), &signup), None);
    // A redelivery with another timestamp is still the same event.
    let redelivered = event("evt9", "signup", T3);
    assert_eq!(score(&rules, &[redelivered.clone(), signup.clone()]), 20.0);
    assert_eq!(apply(&rules, &[signup], &redelivered), None);
}

#[test]
fn a_late_event_lands_in_its_place_in_the_history() {
    let rules = ScoringRules::seeds();
    let demo = event("evt3", "demo_request", T3);
    let page_view = event("evt1", "page_view", T1);

    let outcome = apply(&rules, std::slice::from_ref(&demo), &page_view).unwrap();
    assert!(outcome.late);
    assert_eq!((outcome.delta, outcome.score, outcome.stage), (5.0, 55.0, Stage::Hot));
    assert_eq!(outcome.previous_stage, Some(Stage::Hot));
    assert_eq!(outcome.as_of, T3, "the score is as of the newest event, not the late one");

    let entries = history(&rules, &[demo, page_view]);
    let summary: Vec<_> = entries.iter().map(|e| (e.event_id.as_str(), e.points, e.score)).collect();
    assert_eq!(summary, [("evt1", 5.0, 5.0), ("evt3", 50.0, 55.0)]);
}

#[test]
fn stages_start_at_their_thresholds() {
    let rules = ScoringRules::seeds();
    let cases = [
        (-5.0, Stage::Cold),
        (0.0, Stage::Cold),
        (19.999, Stage::Cold),
        (20.0, Stage::Warm),
        (49.999, Stage::Warm),
        (50.0, Stage::Hot),
        (99.999, Stage::Hot),
        (100.0, Stage::Qualified),
        (1e6, Stage::Qualified),
    ];
    for (score, stage) in cases {
        assert_eq!(rules.stage_for(score), stage, "score {score}");
    }
}

#[test]
fn decay_starts_after_the_grace_period_and_is_continuous() {
    let rule = ScoringRules::seeds().decay;
    assert_eq!(decay_factor(Duration::days(-3), &rule), 1.0);
    assert_eq!(decay_factor(Duration::ZERO, &rule), 1.0);
    assert_eq!(decay_factor(Duration::days(7), &rule), 1.0);
    assert_close(decay_factor(Duration::days(8), &rule), 0.95);
    assert_close(decay_factor(Duration::days(9), &rule), 0.9025);
    assert_close(decay_factor(Duration::hours(7 * 24 + 12), &rule), 0.95_f64.sqrt());
}

#[test]
fn a_quiet_lead_decays_before_its_next_event_adds_points() {
    let rules = ScoringRules::seeds();
    let events = [event("a", "demo_request", T1), event("b", "page_view", T1 + Duration::days(10))];
    let expected = 50.0 * 0.95_f64.powi(3) + 5.0;
    assert_close(expected, 47.86875);
    assert_eq!(score(&rules, &events), 47.86875);
    assert_eq!(history(&rules, &events)[1].stage, Stage::Warm, "decayed from hot");
}

#[test]
fn the_effective_score_decays_from_the_newest_event_to_now() {
    let rules = ScoringRules::seeds();
    let lead = seeded_lead();
    assert_eq!(effective_score(&rules, &lead, T1), 75.0, "no decay before the newest event");
    assert_eq!(effective_score(&rules, &lead, T3 + Duration::days(7)), 75.0);
    let month_later = effective_score(&rules, &lead, T3 + Duration::days(30));
    assert_close(month_later, 75.0 * 0.95_f64.powi(23));
    assert_eq!(month_later, 23.051765, "rounded to 6 decimal places");
    assert_eq!(score(&rules, &lead), 75.0, "the stored score is as of the newest event");
    assert_eq!(effective_score(&rules, &[], T3), 0.0);
}

#[test]
fn an_unknown_event_type_scores_nothing_with_a_reason() {
    let rules = ScoringRules::seeds();
    let applied = [event("evt1", "page_view", T1)];
    let outcome = apply(&rules, &applied, &event("evt2", "webinar_attended", T2)).unwrap();
    assert_eq!((outcome.delta, outcome.score, outcome.reason), (0.0, 5.0, Some(REASON_NO_RULE)));
    let entries = history(&rules, &[applied[0].clone(), event("evt2", "webinar_attended", T2)]);
    assert_eq!((entries[1].points, entries[1].reason), (0.0, Some(REASON_NO_RULE)));
}

#[test]
fn a_daily_cap_counts_per_type_per_utc_day() {
    let mut rules = ScoringRules::seeds();
    rules.daily_caps.insert("page_view".to_owned(), 2);
    let events = [
        event("pv1", "page_view", T1),
        event("pv2", "page_view", T2),
        // 2026-01-16T22:30Z: the same UTC day, although it is the 17th at +02:00.
        event("pv3", "page_view", datetime!(2026-01-17 00:30 +02:00)),
        event("signup", "signup", T3),
        event("pv4", "page_view", datetime!(2026-01-17 09:00 UTC)),
    ];
    let entries = history(&rules, &events);
    let summary: Vec<_> = entries.iter().map(|e| (e.event_id.as_str(), e.points, e.reason)).collect();
    assert_eq!(
        summary,
        [
            ("pv1", 5.0, None),
            ("pv2", 5.0, None),
            ("signup", 20.0, None),
            ("pv3", 0.0, Some(REASON_DAILY_CAP)),
            ("pv4", 5.0, None),
        ]
    );
    assert_eq!(score(&rules, &events), 35.0);

    let outcome = apply(&rules, &events[..2], &events[2]).unwrap();
    assert_eq!((outcome.delta, outcome.reason), (0.0, Some(REASON_DAILY_CAP)));

    rules.daily_caps.clear();
    assert_eq!(score(&rules, &events), 40.0, "no caps by default");
}

#[test]
fn validate_names_the_offending_field() {
    assert_eq!(ScoringRules::seeds().validate(), Ok(()));

    type Breakage = fn(&mut ScoringRules);
    let cases: [(&str, Breakage); 12] = [
        ("decay.ratePerDay", |r| r.decay.rate_per_day = 1.0),
        ("decay.ratePerDay", |r| r.decay.rate_per_day = -0.1),
        ("decay.ratePerDay", |r| r.decay.rate_per_day = f64::NAN),
        ("decay.graceDays", |r| r.decay.grace_days = -1.0),
        ("decay.graceDays", |r| r.decay.grace_days = f64::INFINITY),
        ("version", |r| r.version = String::new()),
        ("version", |r| r.version = "v".repeat(65)),
        ("points.\"signup\"", |r| _ = r.points.insert("signup".to_owned(), f64::NAN)),
        ("points.\"Page View\"", |r| _ = r.points.insert("Page View".to_owned(), 1.0)),
        ("dailyCaps.\"9lives\"", |r| _ = r.daily_caps.insert("9lives".to_owned(), 1)),
        ("stages.hot", |r| r.stages.hot = 10.0),
        ("stages.warm", |r| r.stages.warm = -1.0),
    ];
    for (field, break_rules) in cases {
        let mut rules = ScoringRules::seeds();
        break_rules(&mut rules);
        let error = rules.validate().expect_err(field);
        assert_eq!(error.field, field);
        assert!(error.to_string().contains(field), "{error}");
    }

    let mut longest_name = ScoringRules::seeds();
    longest_name.points.insert(format!("a{}", "_9".repeat(31) + "z"), 1.0);
    assert_eq!(longest_name.validate(), Ok(()));
}

#[test]
fn the_seeds_round_trip_through_json_and_unknown_fields_are_rejected() {
    let seeds = ScoringRules::seeds();
    let value = serde_json::to_value(&seeds).unwrap();
    assert_eq!(
        value,
        json!({
            "version": "v1",
            "points": {"page_view": 5.0, "signup": 20.0, "download": 10.0, "demo_request": 50.0,
                       "contract_signed": 100.0},
            "stages": {"warm": 20.0, "hot": 50.0, "qualified": 100.0},
            "decay": {"graceDays": 7.0, "ratePerDay": 0.05},
        })
    );
    assert_eq!(serde_json::from_value::<ScoringRules>(value.clone()).unwrap(), seeds);

    let mut capped = seeds.clone();
    capped.daily_caps.insert("page_view".to_owned(), 3);
    let text = serde_json::to_string(&capped).unwrap();
    assert!(text.contains(r#""dailyCaps":{"page_view":3}"#), "{text}");
    assert_eq!(serde_json::from_str::<ScoringRules>(&text).unwrap(), capped);

    for (pointer, extra) in [("", "pointsFor"), ("/stages", "cold"), ("/decay", "floor")] {
        let mut with_extra = value.clone();
        with_extra.pointer_mut(pointer).unwrap()[extra] = json!(1);
        let error = serde_json::from_value::<ScoringRules>(with_extra).unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
    }
}

pub(super) const EVENT_TYPES: [&str; 6] =
    ["page_view", "signup", "download", "demo_request", "contract_signed", "webinar"];

/// Up to 24 events with distinct ids over about 40 days, on half-hour steps so that timestamps
/// sometimes coincide and several events often share a UTC day.
pub(super) fn any_events() -> impl Strategy<Value = Vec<ScoringEvent>> {
    prop::collection::vec((0..EVENT_TYPES.len(), 0..2_000i64), 0..24).prop_map(|raw| {
        let at = |step: i64| T1 + Duration::minutes(30 * step);
        let events = raw.into_iter().enumerate();
        events.map(|(i, (kind, step))| event(&format!("evt{i}"), EVENT_TYPES[kind], at(step))).collect()
    })
}

/// Rules with non-negative points, any valid decay and caps on some types.
pub(super) fn any_rules() -> impl Strategy<Value = ScoringRules> {
    let points = prop::collection::vec(0.0..150.0f64, EVENT_TYPES.len() - 1);
    let caps = prop::collection::vec(prop::option::of(0..4u32), EVENT_TYPES.len() - 1);
    (points, 0.0..10.0f64, 0.0..0.9f64, caps).prop_map(|(points, grace_days, rate_per_day, caps)| {
        // The last event type stays without a rule.
        let names = EVENT_TYPES.iter().map(|name| name.to_string());
        ScoringRules {
            points: names.clone().zip(points).collect(),
            decay: DecayRule { grace_days, rate_per_day },
            daily_caps: names.zip(caps).filter_map(|(name, cap)| Some((name, cap?))).collect(),
            ..ScoringRules::seeds()
        }
    })
}

proptest! {
    #[test]
    fn the_score_does_not_depend_on_the_order_of_events(
        rules in any_rules(),
        (events, shuffled) in any_events().prop_flat_map(|events| (Just(events.clone()), Just(events).prop_shuffle())),
    ) {
        prop_assert!(rules.validate().is_ok());
        prop_assert_eq!(history(&rules, &shuffled), history(&rules, &events));
        prop_assert_eq!(score(&rules, &shuffled), score(&rules, &events));
    }

    #[test]
    fn an_event_counts_once_however_often_it_arrives(
        rules in any_rules(),
        events in any_events(),
        repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        for event in &events {
            prop_assert_eq!(apply(&rules, &events, event), None);
        }
        if !events.is_empty() {
            let mut with_repeats = events.clone();
            with_repeats.extend(repeats.iter().map(|index| index.get(&events).clone()));
            prop_assert_eq!(score(&rules, &with_repeats), score(&rules, &events));
        }
    }

    #[test]
    fn applying_events_one_by_one_ends_at_the_score_of_the_set(rules in any_rules(), events in any_events()) {
        let mut applied = Vec::new();
        for new in &events {
            let outcome = apply(&rules, &applied, new).unwrap();
            let previous = score(&rules, &applied);
            applied.push(new.clone());
            prop_assert_eq!(outcome.score, score(&rules, &applied));
            prop_assert!((outcome.delta - (outcome.score - previous)).abs() < 1e-6);
        }
        prop_assert_eq!(score(&rules, &applied), score(&rules, &events));
    }

    #[test]
    fn the_decay_factor_is_a_share_that_shrinks_with_the_gap(
        gap_a in -864_000..86_400_000i64,
        gap_b in -864_000..86_400_000i64,
        grace_days in 0.0..30.0f64,
        rate_per_day in 0.0..0.5f64,
    ) {
        let rule = DecayRule { grace_days, rate_per_day };
        let (shorter, longer) = (gap_a.min(gap_b), gap_a.max(gap_b));
        let (f_shorter, f_longer) = (decay_factor(Duration::seconds(shorter), &rule), decay_factor(Duration::seconds(longer), &rule));
        prop_assert!(f_longer > 0.0 && f_longer <= 1.0, "{}", f_longer);
        prop_assert!(f_longer <= f_shorter, "{} > {}", f_longer, f_shorter);
    }

    #[test]
    fn the_effective_score_never_grows_with_time(
        rules in any_rules(),
        events in any_events(),
        now_a in -100..5_000i64,
        now_b in -100..5_000i64,
    ) {
        let at = |hours: i64| T1 + Duration::hours(hours);
        let (earlier, later) = (at(now_a.min(now_b)), at(now_a.max(now_b)));
        prop_assert!(effective_score(&rules, &events, later) <= effective_score(&rules, &events, earlier));
    }

    #[test]
    fn any_valid_rules_give_finite_scores(
        points in prop::collection::vec(0.0..=MAX_POINTS, EVENT_TYPES.len()),
        grace_days in 0.0..=MAX_GRACE_DAYS,
        rate_per_day in 0.0..1.0f64,
        warm in 0.0..=MAX_THRESHOLD,
        events in any_events(),
        now_hours in -100..100_000i64,
    ) {
        let rules = ScoringRules {
            points: EVENT_TYPES.iter().map(|n| n.to_string()).zip(points).collect(),
            stages: StageThresholds { warm, hot: warm, qualified: MAX_THRESHOLD },
            decay: DecayRule { grace_days, rate_per_day },
            ..ScoringRules::seeds()
        };
        prop_assert!(rules.validate().is_ok());
        for entry in history(&rules, &events) {
            prop_assert!(entry.score.is_finite() && entry.score >= 0.0, "{:?}", entry);
        }
        let now = T1 + Duration::hours(now_hours);
        prop_assert!(effective_score(&rules, &events, now).is_finite());
    }

    #[test]
    fn caps_never_raise_a_score(rules in any_rules(), events in any_events()) {
        let uncapped = ScoringRules { daily_caps: BTreeMap::new(), ..rules.clone() };
        prop_assert!(score(&rules, &events) <= score(&uncapped, &events));
    }
}

#[test]
fn rules_that_could_overflow_a_score_or_the_clock_are_refused_by_field() {
    let refused = |rules: ScoringRules| rules.validate().unwrap_err().field;
    let mut huge = ScoringRules::seeds();
    huge.points.insert("page_view".into(), 1e308);
    assert_eq!(refused(huge), "points.\"page_view\"");
    let mut stages = ScoringRules::seeds();
    stages.stages.qualified = 1e300;
    assert_eq!(refused(stages), "stages.qualified");
    let mut grace = ScoringRules::seeds();
    grace.decay.grace_days = 1e300;
    assert_eq!(refused(grace), "decay.graceDays");
}

#[test]
fn the_seeds_meet_the_rules_schema() {
    let schema: serde_json::Value = serde_json::from_str(ScoringRules::SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let value = serde_json::to_value(ScoringRules::seeds()).unwrap();
    assert!(validator.is_valid(&value), "{:?}", validator.validate(&value).err());
}
