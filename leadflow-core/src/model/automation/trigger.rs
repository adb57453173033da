//! When a condition fires: a pure comparison of a lead's state just before a record with its
//! state just after it.

use crate::contract::records::{EnrichmentStatus, Stage};

use super::Condition;

/// What the automator knows of a lead at one moment. Each fact comes from the newest record
/// that carries it: stage and score from `leads.scores.v1`, status from `leads.enriched.v1`, the
/// event count from the automator's own count of the lead's events in the 24 hours up to the
/// record. `None` is a fact no record has carried yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadSnapshot {
    pub stage: Option<Stage>,
    pub score: Option<f64>,
    pub status: Option<EnrichmentStatus>,
    pub events_24h: Option<u32>,
}

impl Condition {
    /// True when the change from `before` to `after` is the one this condition waits for. A
    /// fact unknown before counts as its lowest value (no stage, score 0, no events, not
    /// verified); a fact unknown after fires nothing.
    ///
    /// Only the two states matter, not how often this was asked: a redelivered record compares
    /// the same two states and fires the same way, and the execution key keeps it to one
    /// execution a day. A decay record that lowers the stage can enter the lower stage, never a
    /// higher one; a lead that leaves a stage and comes back enters it again.
    pub fn fires(&self, before: &LeadSnapshot, after: &LeadSnapshot) -> bool {
        match *self {
            Condition::EntersStage { stage } => after.stage == Some(stage) && before.stage != Some(stage),
            Condition::ScoreCrosses { threshold } => {
                after.score.is_some_and(|after| before.score.unwrap_or(0.0) < threshold && threshold <= after)
            }
            Condition::VelocityAtLeast { events, .. } => after
                .events_24h
                .is_some_and(|after| before.events_24h.unwrap_or(0) < events && events <= after),
            Condition::BecomesVerified {} => {
                let verified = Some(EnrichmentStatus::Verified);
                after.status == verified && before.status != verified
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::automation::VelocityWindow;

    fn at_stage(stage: Stage) -> LeadSnapshot {
        LeadSnapshot { stage: Some(stage), ..LeadSnapshot::default() }
    }

    fn scored(score: f64) -> LeadSnapshot {
        LeadSnapshot { score: Some(score), ..LeadSnapshot::default() }
    }

    fn with_events(events_24h: u32) -> LeadSnapshot {
        LeadSnapshot { events_24h: Some(events_24h), ..LeadSnapshot::default() }
    }

    fn with_status(status: EnrichmentStatus) -> LeadSnapshot {
        LeadSnapshot { status: Some(status), ..LeadSnapshot::default() }
    }

    const ENTERS_HOT: Condition = Condition::EntersStage { stage: Stage::Hot };

    #[test]
    fn entering_a_stage_fires_on_the_move_into_it_only() {
        let unknown = LeadSnapshot::default();
        assert!(ENTERS_HOT.fires(&at_stage(Stage::Warm), &at_stage(Stage::Hot)));
        assert!(ENTERS_HOT.fires(&unknown, &at_stage(Stage::Hot)), "a new lead that starts hot enters hot");
        assert!(!ENTERS_HOT.fires(&at_stage(Stage::Hot), &at_stage(Stage::Hot)), "staying hot");
        assert!(!ENTERS_HOT.fires(&at_stage(Stage::Warm), &at_stage(Stage::Qualified)), "skipping past hot");
        assert!(!ENTERS_HOT.fires(&at_stage(Stage::Hot), &unknown));
    }

    #[test]
    fn a_decay_record_enters_the_lower_stage_and_never_a_higher_one() {
        let (qualified, hot, warm) =
            (at_stage(Stage::Qualified), at_stage(Stage::Hot), at_stage(Stage::Warm));
        assert!(!Condition::EntersStage { stage: Stage::Qualified }.fires(&qualified, &hot));
        assert!(ENTERS_HOT.fires(&qualified, &hot), "decaying from qualified into hot enters hot");
        assert!(!ENTERS_HOT.fires(&hot, &warm));
        assert!(Condition::EntersStage { stage: Stage::Warm }.fires(&hot, &warm));
    }

    #[test]
    fn a_lead_that_leaves_a_stage_and_comes_back_enters_it_again() {
        let path = [Stage::Warm, Stage::Hot, Stage::Warm, Stage::Hot].map(at_stage);
        let firings = path.windows(2).filter(|pair| ENTERS_HOT.fires(&pair[0], &pair[1])).count();
        assert_eq!(firings, 2);
    }

    #[test]
    fn a_score_crossing_fires_upwards_at_the_threshold_itself() {
        let crosses = Condition::ScoreCrosses { threshold: 50.0 };
        assert!(crosses.fires(&scored(49.0), &scored(50.0)), "reaching the threshold crosses it");
        assert!(crosses.fires(&LeadSnapshot::default(), &scored(75.0)), "no score before counts as 0");
        assert!(!crosses.fires(&scored(50.0), &scored(80.0)), "already at the threshold");
        assert!(!crosses.fires(&scored(80.0), &scored(20.0)), "downwards");
        assert!(!crosses.fires(&scored(20.0), &scored(49.999999)));
        assert!(!crosses.fires(&scored(20.0), &LeadSnapshot::default()), "no score after");
    }

    #[test]
    fn velocity_fires_when_the_count_reaches_n() {
        let busy = Condition::VelocityAtLeast { events: 10, window: VelocityWindow::Hours24 };
        assert!(busy.fires(&with_events(9), &with_events(10)));
        assert!(busy.fires(&LeadSnapshot::default(), &with_events(12)), "no count before counts as 0");
        assert!(!busy.fires(&with_events(10), &with_events(11)), "already at n");
        assert!(!busy.fires(&with_events(3), &with_events(9)));
        assert!(!busy.fires(&with_events(12), &with_events(4)), "events leaving the window");
        assert!(!busy.fires(&with_events(3), &LeadSnapshot::default()));
    }

    #[test]
    fn verification_fires_when_the_status_becomes_verified() {
        let verified = Condition::BecomesVerified {};
        let (to_check, done) =
            (with_status(EnrichmentStatus::ToCheck), with_status(EnrichmentStatus::Verified));
        assert!(verified.fires(&to_check, &done));
        assert!(verified.fires(&LeadSnapshot::default(), &done));
        assert!(!verified.fires(&done, &done));
        assert!(!verified.fires(&done, &to_check));
        assert!(!verified.fires(&LeadSnapshot::default(), &to_check));
    }

    #[test]
    fn a_condition_looks_at_its_own_fact_only() {
        let before = LeadSnapshot { stage: Some(Stage::Warm), score: Some(20.0), ..LeadSnapshot::default() };
        let after = LeadSnapshot {
            stage: Some(Stage::Warm),
            score: Some(60.0),
            status: Some(EnrichmentStatus::Verified),
            events_24h: Some(40),
        };
        assert!(!ENTERS_HOT.fires(&before, &after), "the score moved, the stage did not");
        assert!(Condition::ScoreCrosses { threshold: 50.0 }.fires(&before, &after));
        assert!(Condition::BecomesVerified {}.fires(&before, &after));
    }

    fn any_stage() -> impl Strategy<Value = Stage> {
        prop_oneof![Just(Stage::Cold), Just(Stage::Warm), Just(Stage::Hot), Just(Stage::Qualified)]
    }

    fn any_snapshot() -> impl Strategy<Value = LeadSnapshot> {
        let status = prop_oneof![Just(EnrichmentStatus::Verified), Just(EnrichmentStatus::ToCheck)];
        (
            proptest::option::of(any_stage()),
            proptest::option::of(0.0..2e9f64),
            proptest::option::of(status),
            proptest::option::of(0..20_000u32),
        )
            .prop_map(|(stage, score, status, events_24h)| LeadSnapshot {
                stage,
                score,
                status,
                events_24h,
            })
    }

    fn any_condition() -> impl Strategy<Value = Condition> {
        prop_oneof![
            any_stage().prop_map(|stage| Condition::EntersStage { stage }),
            (0.0..2e9f64).prop_map(|threshold| Condition::ScoreCrosses { threshold }),
            (0..20_000u32)
                .prop_map(|events| Condition::VelocityAtLeast { events, window: VelocityWindow::Hours24 }),
            Just(Condition::BecomesVerified {}),
        ]
    }

    proptest! {
        #[test]
        fn nothing_fires_without_a_change(condition in any_condition(), state in any_snapshot()) {
            prop_assert!(!condition.fires(&state, &state));
        }

        /// However a rising score gets there, and with the threshold on one of its values or
        /// between them, the crossing fires exactly once, and never if it stays below.
        #[test]
        fn a_rising_score_crosses_the_threshold_in_exactly_one_step(
            mut scores in proptest::collection::vec(0.0..1e6f64, 1..30),
            pick in any::<proptest::sample::Index>(),
            on_a_value in any::<bool>(),
            nudge in 0.0..1.0f64,
        ) {
            scores.sort_by(f64::total_cmp);
            let picked = scores[pick.index(scores.len())];
            let threshold = if on_a_value { picked.max(f64::MIN_POSITIVE) } else { picked + nudge };
            let crosses = Condition::ScoreCrosses { threshold };
            // The lead's first record has no score before it.
            let states: Vec<LeadSnapshot> =
                std::iter::once(LeadSnapshot::default()).chain(scores.iter().map(|&s| scored(s))).collect();
            let firings = states.windows(2).filter(|pair| crosses.fires(&pair[0], &pair[1])).count();
            let reaches = scores.iter().any(|&s| s >= threshold);
            prop_assert_eq!(firings, usize::from(reaches));
        }
    }
}
