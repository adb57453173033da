use proptest::prelude::*;
use time::Duration;

use super::*;
use crate::model::scoring::tests::{EVENT_TYPES, T1, any_events, any_rules, event};
use crate::model::scoring::{self, REASON_DAILY_CAP};

/// Exactly `len` events with distinct ids, in any order, on half-hour steps over about 40 days.
fn events_of(len: usize) -> impl Strategy<Value = Vec<ScoringEvent>> {
    prop::collection::vec((0..EVENT_TYPES.len(), 0..2_000i64), len).prop_map(|raw| {
        let at = |step: i64| T1 + Duration::minutes(30 * step);
        let events = raw.into_iter().enumerate();
        events.map(|(i, (kind, step))| event(&format!("evt{i}"), EVENT_TYPES[kind], at(step))).collect()
    })
}

fn in_history_order(mut events: Vec<ScoringEvent>) -> Vec<ScoringEvent> {
    events.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    events
}

#[test]
fn an_event_older_than_the_lead_s_k_newest_is_recorded_late_and_scores_nothing() {
    let rules = ScoringRules::seeds();
    let mut state = LeadState::default();
    let at = |minutes: i64| T1 + Duration::minutes(minutes);
    let first = state.apply(&rules, &[event("a", "signup", at(10)), event("b", "page_view", at(20))], 1);
    assert_eq!(first.iter().map(|o| o.score).collect::<Vec<_>>(), [20.0, 25.0]);
    assert_eq!(state.tail.len(), 1, "k = 1 keeps one event");
    assert_eq!(state.base.as_ref().map(|b| (b.event.event_id.as_str(), b.score)), Some(("a", 20.0)));
    let before = state.clone();

    let too_late = state.apply_event(&rules, &event("c", "demo_request", at(5)), 1);

    assert_eq!(
        (too_late.delta, too_late.score, too_late.late, too_late.reason),
        (0.0, 25.0, true, Some(REASON_TOO_LATE))
    );
    assert_eq!(
        (too_late.previous_stage, too_late.stage, too_late.as_of),
        (Some(Stage::Warm), Stage::Warm, at(20))
    );
    assert_eq!(state, before, "a too-late event changes nothing");

    let within = state.apply_event(&rules, &event("d", "demo_request", at(15)), 1);
    assert!(within.late && within.reason.is_none(), "{within:?}");
    assert_eq!((within.delta, within.score), (50.0, 75.0), "newer than the checkpoint: refolded into place");
}

#[test]
fn new_rules_apply_from_the_next_event_on() {
    let rules = ScoringRules::seeds();
    let mut state = LeadState::default();
    state.apply_event(&rules, &event("a", "page_view", T1), 4);
    let mut changed = ScoringRules::seeds();
    changed.points.insert("page_view".to_owned(), 7.0);

    let outcome = state.apply_event(&changed, &event("b", "page_view", T1 + Duration::minutes(1)), 4);

    assert_eq!((outcome.delta, outcome.score), (7.0, 12.0), "the earlier event keeps its 5 points");
}

#[test]
fn a_cap_reached_before_the_checkpoint_still_holds_after_it() {
    let mut rules = ScoringRules::seeds();
    rules.daily_caps.insert("page_view".to_owned(), 2);
    let mut state = LeadState::default();
    let views: Vec<_> =
        (0..4).map(|i| event(&format!("pv{i}"), "page_view", T1 + Duration::minutes(i))).collect();

    let outcomes = state.apply(&rules, &views, 1);

    let reasons: Vec<_> = outcomes.iter().map(|o| o.reason).collect();
    assert_eq!(reasons, [None, None, Some(REASON_DAILY_CAP), Some(REASON_DAILY_CAP)]);
    assert_eq!(state.base.as_ref().map(|b| b.counts.get("page_view").copied()), Some(Some(3)));
}

proptest! {
    #[test]
    fn up_to_k_events_in_any_order_score_as_the_whole_fold(rules in any_rules(), events in any_events()) {
        let mut state = LeadState::default();
        let mut applied: Vec<ScoringEvent> = Vec::new();
        for new in &events {
            let outcome = state.apply_event(&rules, new, events.len());
            prop_assert_eq!(Some(outcome), scoring::apply(&rules, &applied, new));
            applied.push(new.clone());
        }
        prop_assert_eq!(state.score, scoring::score(&rules, &events));
    }

    #[test]
    fn events_in_history_order_score_as_the_whole_fold_however_many(
        rules in any_rules(),
        events in any_events().prop_map(in_history_order),
        k in 1..4usize,
    ) {
        let mut state = LeadState::default();
        let mut applied: Vec<ScoringEvent> = Vec::new();
        for new in &events {
            let outcome = state.apply_event(&rules, new, k);
            prop_assert_eq!(Some(outcome), scoring::apply(&rules, &applied, new));
            applied.push(new.clone());
        }
    }

    /// Any order, any k: an event is too late exactly when it is not newer than every accepted
    /// event outside the k newest, and every other event scores as the whole fold of the
    /// accepted events would.
    #[test]
    fn an_event_is_too_late_exactly_when_k_newer_events_were_accepted(
        rules in any_rules(),
        events in any_events(),
        k in 1..6usize,
    ) {
        let mut state = LeadState::default();
        let mut accepted: Vec<ScoringEvent> = Vec::new();
        for new in &events {
            let sorted = in_history_order(accepted.clone());
            let evicted = &sorted[..sorted.len().saturating_sub(k)];
            let too_late = evicted.last().is_some_and(|newest| sort_key(newest) >= sort_key(new));
            let before = state.clone();
            let outcome = state.apply_event(&rules, new, k);
            if too_late {
                prop_assert_eq!(outcome.reason, Some(REASON_TOO_LATE));
                prop_assert_eq!((outcome.delta, outcome.score, outcome.late), (0.0, before.score, true));
                prop_assert_eq!(&state, &before);
            } else {
                prop_assert_eq!(Some(outcome), scoring::apply(&rules, &accepted, new));
                accepted.push(new.clone());
            }
            prop_assert_eq!(&state.tail, &in_history_order(accepted.clone()).split_off(accepted.len().saturating_sub(k)));
        }
    }

    #[test]
    fn the_tail_holds_at_most_k_events_after_ten_times_k(
        rules in any_rules(),
        (k, events) in (1..6usize).prop_flat_map(|k| (Just(k), events_of(10 * k))),
    ) {
        let mut state = LeadState::default();
        for new in &events {
            state.apply_event(&rules, new, k);
            prop_assert!(state.tail.len() <= k, "{} > {}", state.tail.len(), k);
        }
        prop_assert_eq!(state.tail.len(), k);
    }

    #[test]
    fn a_state_built_from_all_events_is_the_state_of_applying_them_in_order(
        rules in any_rules(),
        events in any_events(),
        k in 1..6usize,
    ) {
        let mut applied = LeadState::default();
        applied.apply(&rules, &in_history_order(events.clone()), k);
        prop_assert_eq!(LeadState::from_events(&rules, &events, k), applied);
    }
}
