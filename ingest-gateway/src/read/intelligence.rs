//! Lead intelligence: how busy a lead is, whether it has gone quiet, and what sales should do
//! next. Pure: the clock is passed in, so every rule is tested at its boundaries.
//!
//! The rules (also in `docs/openapi.yaml`, `GET /api/leads/{id}/intelligence`):
//!
//! - `velocity`: the lead's events whose timestamp is less than 24 hours before `now`
//!   (`timestamp > now - 24h`). An event stamped slightly ahead of the clock (the gateway accepts
//!   up to 5 minutes) counts too.
//! - `risk`: `high` when the newest event is more than 7 days before `now`
//!   (`now - newest > 7d`; exactly 7 days is still `low`), or when the lead has no events;
//!   otherwise `low`.
//! - `nextAction`, from the stage and the velocity only (risk never changes it):
//!   - `qualified` → `immediate_outreach`;
//!   - `hot` → `immediate_outreach` when velocity ≥ 3, else `schedule_demo`;
//!   - `warm` → `schedule_demo` when velocity ≥ 3, else `nurture_campaign`;
//!   - `cold`, or no stage yet → `nurture_campaign`.
//!
//! Actions are ordered by urgency (`nurture_campaign` < `schedule_demo` < `immediate_outreach`);
//! more recent events never lower it.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use leadflow_core::contract::records::Stage;

/// Events within this long before now count towards the velocity.
pub const VELOCITY_WINDOW: Duration = Duration::hours(24);
/// A lead whose newest event is older than this is at risk.
pub const QUIET_FOR: Duration = Duration::days(7);
/// The velocity at which a hot lead gets outreach and a warm one a demo.
pub const BUSY_VELOCITY: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    High,
}

/// What sales should do next, least urgent first (the derived order is the urgency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NextAction {
    NurtureCampaign,
    ScheduleDemo,
    ImmediateOutreach,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub velocity: usize,
    pub risk: Risk,
    pub next_action: NextAction,
    /// The newest event's timestamp.
    pub last_event_at: Option<OffsetDateTime>,
}

/// Events with a timestamp less than [`VELOCITY_WINDOW`] before `now`.
pub fn velocity(event_times: &[OffsetDateTime], now: OffsetDateTime) -> usize {
    event_times.iter().filter(|t| **t > now - VELOCITY_WINDOW).count()
}

/// High when the newest event is more than [`QUIET_FOR`] before `now`, or there is none.
pub fn risk(newest: Option<OffsetDateTime>, now: OffsetDateTime) -> Risk {
    match newest {
        Some(newest) if now - newest <= QUIET_FOR => Risk::Low,
        _ => Risk::High,
    }
}

pub fn next_action(stage: Option<Stage>, velocity: usize) -> NextAction {
    let busy = velocity >= BUSY_VELOCITY;
    match stage {
        Some(Stage::Qualified) => NextAction::ImmediateOutreach,
        Some(Stage::Hot) if busy => NextAction::ImmediateOutreach,
        Some(Stage::Hot) => NextAction::ScheduleDemo,
        Some(Stage::Warm) if busy => NextAction::ScheduleDemo,
        Some(Stage::Warm) | Some(Stage::Cold) | None => NextAction::NurtureCampaign,
    }
}

/// The whole assessment of a lead in `stage` with events at `event_times` (any order).
pub fn assess(stage: Option<Stage>, event_times: &[OffsetDateTime], now: OffsetDateTime) -> Assessment {
    assess_counted(stage, velocity(event_times, now), event_times.iter().max().copied(), now)
}

/// [`assess`] from the lead's [`velocity`] and newest event, counted where its events are.
pub fn assess_counted(
    stage: Option<Stage>,
    velocity: usize,
    last_event_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Assessment {
    Assessment {
        velocity,
        risk: risk(last_event_at, now),
        next_action: next_action(stage, velocity),
        last_event_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    #[test]
    fn the_action_table() {
        use NextAction::*;
        let table = [
            (Some(Stage::Qualified), 0, ImmediateOutreach),
            (Some(Stage::Qualified), 5, ImmediateOutreach),
            (Some(Stage::Hot), 2, ScheduleDemo),
            (Some(Stage::Hot), 3, ImmediateOutreach),
            (Some(Stage::Warm), 2, NurtureCampaign),
            (Some(Stage::Warm), 3, ScheduleDemo),
            (Some(Stage::Cold), 0, NurtureCampaign),
            (Some(Stage::Cold), 10, NurtureCampaign),
            (None, 10, NurtureCampaign),
        ];
        for (stage, velocity, expected) in table {
            assert_eq!(next_action(stage, velocity), expected, "{stage:?} at velocity {velocity}");
        }
    }

    #[test]
    fn velocity_counts_the_last_24_hours_only() {
        let times = [
            NOW - Duration::hours(24),                    // exactly 24 h: out
            NOW - Duration::hours(24) + Duration::SECOND, // in
            NOW - Duration::hours(1),                     // in
            NOW + Duration::minutes(2),                   // ahead of the clock: in
            NOW - Duration::days(3),                      // out
        ];
        assert_eq!(velocity(&times, NOW), 3);
        assert_eq!(velocity(&[], NOW), 0);
    }

    #[test]
    fn risk_turns_high_just_after_seven_quiet_days() {
        assert_eq!(risk(Some(NOW - Duration::days(7)), NOW), Risk::Low, "exactly 7 days");
        assert_eq!(risk(Some(NOW - Duration::days(7) - Duration::NANOSECOND), NOW), Risk::High);
        assert_eq!(risk(Some(NOW - Duration::days(7) + Duration::SECOND), NOW), Risk::Low);
        assert_eq!(risk(Some(NOW + Duration::minutes(1)), NOW), Risk::Low, "ahead of the clock");
        assert_eq!(risk(None, NOW), Risk::High, "no events");
    }

    #[test]
    fn a_hot_lead_with_three_events_today_gets_outreach_even_when_old_events_exist() {
        let times = [
            NOW - Duration::days(30),
            NOW - Duration::hours(3),
            NOW - Duration::hours(2),
            NOW - Duration::hours(1),
        ];
        let assessment = assess(Some(Stage::Hot), &times, NOW);
        assert_eq!(
            assessment,
            Assessment {
                velocity: 3,
                risk: Risk::Low,
                next_action: NextAction::ImmediateOutreach,
                last_event_at: Some(NOW - Duration::hours(1)),
            }
        );
    }

    #[test]
    fn a_quiet_qualified_lead_is_at_risk_but_still_gets_outreach() {
        let assessment = assess(Some(Stage::Qualified), &[NOW - Duration::days(10)], NOW);
        assert_eq!((assessment.risk, assessment.next_action), (Risk::High, NextAction::ImmediateOutreach));
    }

    fn stage() -> impl Strategy<Value = Option<Stage>> {
        prop_oneof![
            Just(None),
            Just(Some(Stage::Cold)),
            Just(Some(Stage::Warm)),
            Just(Some(Stage::Hot)),
            Just(Some(Stage::Qualified)),
        ]
    }

    /// Event times from 10 days before `NOW` to 5 minutes after, in seconds.
    fn times() -> impl Strategy<Value = Vec<OffsetDateTime>> {
        prop::collection::vec(-864_000i64..300, 0..12)
            .prop_map(|offsets| offsets.into_iter().map(|s| NOW + Duration::seconds(s)).collect())
    }

    proptest! {
        /// One more event, however recent, never lowers the velocity or the action's urgency,
        /// and never raises the risk.
        #[test]
        fn more_events_never_lower_the_urgency(stage in stage(), times in times(), extra in -864_000i64..300) {
            let before = assess(stage, &times, NOW);
            let mut more = times.clone();
            more.push(NOW + Duration::seconds(extra));
            let after = assess(stage, &more, NOW);
            prop_assert!(after.velocity >= before.velocity);
            prop_assert!(after.next_action >= before.next_action);
            prop_assert!(!(before.risk == Risk::Low && after.risk == Risk::High));
        }

        /// A higher stage never gets a less urgent action at the same velocity.
        #[test]
        fn a_higher_stage_is_never_less_urgent(velocity in 0usize..10) {
            let stages = [None, Some(Stage::Cold), Some(Stage::Warm), Some(Stage::Hot), Some(Stage::Qualified)];
            for pair in stages.windows(2) {
                prop_assert!(next_action(pair[1], velocity) >= next_action(pair[0], velocity));
            }
        }

        /// Risk never changes the action: it depends on the stage and the velocity alone.
        #[test]
        fn the_action_depends_on_stage_and_velocity_only(stage in stage(), times in times()) {
            let assessment = assess(stage, &times, NOW);
            prop_assert_eq!(assessment.next_action, next_action(stage, velocity(&times, NOW)));
            prop_assert_eq!(assessment.risk, risk(times.iter().max().copied(), NOW));
        }
    }
}
