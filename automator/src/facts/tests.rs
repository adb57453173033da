use leadflow_core::contract::records::{EnrichmentStatus, LeadEnriched, LeadScored, Stage};
use leadflow_core::model::automation::{Action, VelocityWindow};
use proptest::prelude::*;
use time::macros::datetime;

use super::*;

fn scored(event_type: &str, score: f64, stage: Stage, at: OffsetDateTime) -> Trigger {
    Trigger::Scored(LeadScored {
        project_id: "acme".into(),
        lead_id: "lead-1".into(),
        event_id: "e".into(),
        event_type: event_type.into(),
        delta: 0.0,
        score,
        stage,
        previous_stage: None,
        event_timestamp: at,
        rules_version: "v1".into(),
        processed_at: at,
        late: false,
        reason: None,
        lead_version: None,
        merged_into: None,
    })
}

/// Ada's enrichment at `T`, with `status`.
fn enriched(status: EnrichmentStatus) -> Trigger {
    Trigger::Enriched(LeadEnriched {
        project_id: "acme".into(),
        lead_id: "lead-1".into(),
        name: "Ada".into(),
        email: None,
        company: None,
        country_code: None,
        country_name: None,
        probability: Some(0.5),
        status,
        reason: None,
        provider: "nationalize".into(),
        enriched_at: T,
    })
}

fn at(topic: &str, offset: i64) -> RecordPosition {
    RecordPosition { topic: topic.into(), partition: 0, offset }
}

fn rule(id: &str, condition: Condition) -> AutomationRule {
    AutomationRule {
        project_id: "acme".into(),
        id: id.into(),
        version: "v1".into(),
        name: id.into(),
        enabled: true,
        condition,
        actions: vec![Action::Webhook { subscription_id: "s".into() }],
    }
}

use leadflow_core::model::automation::Condition;

const T: OffsetDateTime = datetime!(2026-01-16 10:00 UTC);

#[test]
fn a_record_read_again_from_an_applied_offset_changes_nothing() {
    let mut doc = AutomationLeadDoc::new("acme/lead-1");
    let record = scored("page_view", 45.0, Stage::Hot, T);
    assert!(apply(&mut doc, &record, &at(topics::SCORES, 7)).is_some());
    let after = doc.clone();
    assert_eq!(apply(&mut doc, &record, &at(topics::SCORES, 7)), None);
    assert_eq!(apply(&mut doc, &record, &at(topics::SCORES, 3)), None);
    assert_eq!(doc, after);
    // The other topic's offsets are its own.
    let enriched = enriched(EnrichmentStatus::Verified);
    let change = apply(&mut doc, &enriched, &at(topics::ENRICHED, 3)).unwrap();
    assert_eq!((change.before.status, change.after.status), (None, Some(EnrichmentStatus::Verified)));
    assert_eq!(doc.name.as_deref(), Some("Ada"));
}

#[test]
fn the_record_closing_a_merged_lead_fires_nothing_though_its_stage_drops() {
    let rules = [
        rule("cold", Condition::EntersStage { stage: Stage::Cold }),
        rule("hot", Condition::EntersStage { stage: Stage::Hot }),
    ];
    let mut doc = AutomationLeadDoc::new("acme/lead-1");
    apply(&mut doc, &scored("demo_request", 60.0, Stage::Hot, T), &at(topics::SCORES, 1)).unwrap();
    let Trigger::Scored(closing) = scored("identify", 0.0, Stage::Cold, T) else { unreachable!() };
    let closing = Trigger::Scored(LeadScored { merged_into: Some("user-42".into()), ..closing });

    let change = apply(&mut doc, &closing, &at(topics::SCORES, 2)).unwrap();

    assert!(firings(&rules, &closing, &change).is_empty(), "a merged lead did not go cold: {change:?}");
    assert_eq!((doc.stage, doc.score), (Some(Stage::Cold), Some(0.0)));
}

#[test]
fn a_rule_fires_once_on_the_change_and_the_key_names_the_record_s_utc_day() {
    let rules = [
        rule("hot", Condition::EntersStage { stage: Stage::Hot }),
        AutomationRule { enabled: false, ..rule("off", Condition::EntersStage { stage: Stage::Hot }) },
        AutomationRule {
            project_id: "other".into(),
            ..rule("theirs", Condition::EntersStage { stage: Stage::Hot })
        },
    ];
    let mut doc = AutomationLeadDoc::new("acme/lead-1");
    let warm = scored("page_view", 20.0, Stage::Warm, T);
    let hot = scored("demo_request", 45.0, Stage::Hot, datetime!(2026-01-16 23:30 -02:00));
    let change = apply(&mut doc, &warm, &at(topics::SCORES, 1)).unwrap();
    assert!(firings(&rules, &warm, &change).is_empty());
    let change = apply(&mut doc, &hot, &at(topics::SCORES, 2)).unwrap();
    let fired = firings(&rules, &hot, &change);
    let keys: Vec<&str> = fired.iter().map(|f| f.execution_key.as_str()).collect();
    assert_eq!(
        keys,
        ["acme/hot/lead-1/2026-01-17"],
        "only the enabled rule of the lead's project, on the UTC day"
    );
    let again = scored("demo_request", 50.0, Stage::Hot, T);
    let change = apply(&mut doc, &again, &at(topics::SCORES, 3)).unwrap();
    assert!(firings(&rules, &again, &change).is_empty(), "staying hot");
}

#[test]
fn velocity_counts_the_lead_s_events_in_the_24_hours_up_to_each_and_not_decay_records() {
    let rules = [rule("busy", Condition::VelocityAtLeast { events: 3, window: VelocityWindow::Hours24 })];
    let mut doc = AutomationLeadDoc::new("acme/lead-1");
    let times =
        [datetime!(2026-01-15 09:00 UTC), datetime!(2026-01-16 08:00 UTC), datetime!(2026-01-16 09:00 UTC)];
    let mut fired = 0;
    for (i, time) in times.iter().enumerate() {
        let record = scored("page_view", 1.0, Stage::Cold, *time);
        let change = apply(&mut doc, &record, &at(topics::SCORES, i as i64)).unwrap();
        fired += firings(&rules, &record, &change).len();
    }
    assert_eq!(fired, 0, "the first event is more than 24 h before the third");
    let decay = scored(DECAY_EVENT_TYPE, 1.0, Stage::Cold, datetime!(2026-01-16 09:30 UTC));
    let change = apply(&mut doc, &decay, &at(topics::SCORES, 3)).unwrap();
    assert_eq!(change.after.events_24h, Some(2), "a decay record is not an event");
    let third = scored("page_view", 1.0, Stage::Cold, datetime!(2026-01-16 10:00 UTC));
    let change = apply(&mut doc, &third, &at(topics::SCORES, 4)).unwrap();
    assert_eq!((change.before.events_24h, change.after.events_24h), (Some(2), Some(3)));
    assert_eq!(firings(&rules, &third, &change).len(), 1);
}

proptest! {
    /// However the records come (redeliveries mixed in, any stages), the lead ends as if each
    /// offset had been applied once, and its kept event times stay bounded and in order.
    #[test]
    fn redeliveries_never_change_the_outcome(
        steps in proptest::collection::vec((0..4usize, 0..48i64, any::<bool>()), 1..60),
    ) {
        let stages = [Stage::Cold, Stage::Warm, Stage::Hot, Stage::Qualified];
        let mut once = AutomationLeadDoc::new("acme/lead-1");
        let mut with_repeats = AutomationLeadDoc::new("acme/lead-1");
        let mut fired_once = 0;
        let mut fired_with_repeats = 0;
        let rules = [rule("hot", Condition::EntersStage { stage: Stage::Hot })];
        for (offset, (stage, hour, repeat)) in steps.iter().enumerate() {
            let record = scored("page_view", *stage as f64, stages[*stage], T + time::Duration::hours(*hour));
            let position = at(topics::SCORES, offset as i64);
            if let Some(change) = apply(&mut once, &record, &position) {
                fired_once += firings(&rules, &record, &change).len();
            }
            let times = if *repeat { 2 } else { 1 };
            for _ in 0..times {
                if let Some(change) = apply(&mut with_repeats, &record, &position) {
                    fired_with_repeats += firings(&rules, &record, &change).len();
                }
            }
        }
        prop_assert_eq!(&once, &with_repeats);
        prop_assert_eq!(fired_once, fired_with_repeats);
        prop_assert!(once.recent_events_ms.windows(2).all(|w| w[0] <= w[1]));
        prop_assert!(once.recent_events_ms.len() <= MAX_RECENT_EVENTS);
    }
}

#[test]
fn a_person_verifying_a_to_check_lead_makes_it_become_verified_and_the_review_wins_over_a_later_enrichment() {
    use leadflow_core::contract::records::{LeadReviewed, ReviewDecision};
    let rules = [rule("verified", Condition::BecomesVerified {})];
    let mut doc = AutomationLeadDoc::new("acme/lead-1");
    let reviewed = |decision| {
        Trigger::Reviewed(LeadReviewed {
            project_id: "acme".into(),
            lead_id: "lead-1".into(),
            decision,
            reviewer: None,
            note: None,
            reviewed_at: T,
        })
    };
    let steps = [
        (enriched(EnrichmentStatus::ToCheck), at(topics::ENRICHED, 1), 0),
        (reviewed(ReviewDecision::Verified), at(topics::REVIEWS, 1), 1),
        // The enrichment redone later does not undo the person's decision.
        (enriched(EnrichmentStatus::ToCheck), at(topics::ENRICHED, 2), 0),
        (reviewed(ReviewDecision::Rejected), at(topics::REVIEWS, 2), 0),
        (reviewed(ReviewDecision::Verified), at(topics::REVIEWS, 3), 1),
    ];
    for (record, position, expected) in steps {
        let change = apply(&mut doc, &record, &position).unwrap();
        assert_eq!(firings(&rules, &record, &change).len(), expected, "{record:?}");
    }
    assert_eq!(apply(&mut doc, &reviewed(ReviewDecision::Verified), &at(topics::REVIEWS, 3)), None);
}
