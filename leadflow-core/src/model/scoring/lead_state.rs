//! A lead's scoring state in bounded size, so that applying an event costs the same however long
//! the lead's history is.
//!
//! The state keeps the lead's `k` chronologically newest events (the tail) and a [`Checkpoint`]
//! of the fold right after the newest event that left the tail. The fold reads only the previous
//! score and timestamp and the day's cap counts, so refolding the tail from the checkpoint gives
//! exactly the score the whole history would:
//!
//! - an event newer than the tail (the usual case) is one fold step from the stored score;
//! - a late event newer than the checkpoint is inserted into the tail, which is refolded from
//!   the checkpoint;
//! - an event at or before the checkpoint (not newer than every event that has left the tail,
//!   so older than the lead's `k` newest) is too late: it scores nothing, with reason [`REASON_TOO_LATE`], and the state does not change. Zero points
//!   rather than points decayed from its timestamp: nobody can raise a score by backdating, and
//!   every score stays an exact fold of the events it counts.
//!
//! Rules in force apply from the next event on: the stored score is not refolded under new
//! rules, and a late event's refold re-scores only the tail.
//!
//! Which eventIds a lead has already seen is not this state's business: the caller answers it
//! (the scorer's `score_history`), and passes only events not applied before.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::{
    HistoryEntry, Outcome, REASON_TOO_LATE, Running, ScoringEvent, ScoringRules, chronological, round6,
    sort_key, utc_day,
};
use crate::contract::records::Stage;

/// The fold state right after one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The newest event that left the tail.
    pub event: ScoringEvent,
    /// The score as of `event`.
    pub score: f64,
    /// Per type the rules capped, the events on `event`'s UTC day up to and including it.
    pub counts: BTreeMap<String, u32>,
}

/// A lead's bounded scoring state: the score and stage as of the newest event, the tail and the
/// checkpoint before it (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct LeadState {
    /// Absent while no event has left the tail.
    pub base: Option<Checkpoint>,
    /// Every applied event after `base`, at most `k`, in the order of the history.
    pub tail: Vec<ScoringEvent>,
    pub score: f64,
    pub stage: Stage,
}

impl Default for LeadState {
    /// A lead without events.
    fn default() -> Self {
        LeadState { base: None, tail: Vec::new(), score: 0.0, stage: Stage::Cold }
    }
}

impl LeadState {
    /// The state of a lead whose applied events are `events` (any order): their whole fold under
    /// `rules`, keeping the `k` newest as the tail. This converts a state that kept every event.
    pub fn from_events(rules: &ScoringRules, events: &[ScoringEvent], k: usize) -> Self {
        let k = k.max(1);
        let sorted = chronological(events.iter());
        let split = sorted.len().saturating_sub(k);
        let mut running = Running::new(rules);
        let mut state = LeadState::default();
        for (i, event) in sorted.iter().enumerate() {
            let entry = running.step(event);
            if i + 1 == split {
                state.base = Some(checkpoint(&running, event, &entry));
            }
            state.score = entry.score;
            state.stage = entry.stage;
        }
        state.tail = sorted[split..].iter().map(|event| (*event).clone()).collect();
        state
    }

    /// No event was ever applied.
    pub fn is_empty(&self) -> bool {
        self.tail.is_empty() && self.base.is_none()
    }

    /// The newest event's timestamp: the score is as of then.
    pub fn as_of(&self) -> Option<OffsetDateTime> {
        self.tail.last().or(self.base.as_ref().map(|base| &base.event)).map(|event| event.timestamp)
    }

    /// Applies `new_events` in order, each not applied before; one outcome per event.
    pub fn apply(&mut self, rules: &ScoringRules, new_events: &[ScoringEvent], k: usize) -> Vec<Outcome> {
        new_events.iter().map(|new| self.apply_event(rules, new, k)).collect()
    }

    /// Applies one event not applied before, keeping at most `k` (at least 1) events in the tail.
    pub fn apply_event(&mut self, rules: &ScoringRules, new: &ScoringEvent, k: usize) -> Outcome {
        let previous_stage = (!self.is_empty()).then_some(self.stage);
        let newest = self.as_of();
        let late = newest.is_some_and(|newest| new.timestamp < newest);
        if let (Some(base), Some(newest)) = (&self.base, newest)
            && sort_key(new) <= sort_key(&base.event)
        {
            return Outcome {
                delta: 0.0,
                score: self.score,
                stage: self.stage,
                previous_stage,
                late: true,
                reason: Some(REASON_TOO_LATE),
                as_of: newest,
            };
        }

        let in_order = self.tail.last().is_none_or(|last| sort_key(new) > sort_key(last));
        let (score, reason) = if in_order {
            let entry = self.running_at_newest(rules).step(new);
            self.tail.push(new.clone());
            (entry.score, entry.reason)
        } else {
            let at = self.tail.partition_point(|event| sort_key(event) < sort_key(new));
            self.tail.insert(at, new.clone());
            let mut running = self.running_at_base(rules);
            let mut folded = (self.score, None);
            for (i, event) in self.tail.iter().enumerate() {
                let entry = running.step(event);
                folded.0 = entry.score;
                if i == at {
                    folded.1 = entry.reason;
                }
            }
            folded
        };
        while self.tail.len() > k.max(1) {
            self.evict_oldest(rules);
        }

        let stage = rules.stage_for(score);
        let delta = round6(score - self.score);
        self.score = score;
        self.stage = stage;
        Outcome {
            delta,
            score,
            stage,
            previous_stage,
            late,
            reason,
            // Never absent: the tail holds at least the event just applied or a newer one.
            as_of: self.as_of().unwrap_or(new.timestamp),
        }
    }

    /// The fold resumed at the checkpoint, with the cap counts of its day.
    fn running_at_base<'r>(&self, rules: &'r ScoringRules) -> Running<'r> {
        let mut running = Running::new(rules);
        if let Some(base) = &self.base {
            running.previous = Some((base.score, base.event.timestamp));
            let day = utc_day(base.event.timestamp);
            // Counts of types the rules no longer cap are dropped, so they cannot pile up.
            let capped =
                base.counts.iter().filter(|(event_type, _)| rules.daily_caps.contains_key(*event_type));
            running.seen_per_day.extend(capped.map(|(event_type, n)| ((event_type.clone(), day), *n)));
        }
        running
    }

    /// The fold resumed after the newest event: the stored score, and the cap counts of the tail.
    fn running_at_newest<'r>(&self, rules: &'r ScoringRules) -> Running<'r> {
        let mut running = self.running_at_base(rules);
        for event in &self.tail {
            running.count(event);
        }
        running.previous = self.as_of().map(|newest| (self.score, newest));
        running
    }

    /// Moves the oldest tail event into the checkpoint: one fold step from the old checkpoint.
    fn evict_oldest(&mut self, rules: &ScoringRules) {
        let oldest = self.tail.remove(0);
        let mut running = self.running_at_base(rules);
        let entry = running.step(&oldest);
        self.base = Some(checkpoint(&running, &oldest, &entry));
    }
}

/// The checkpoint right after `event`, which `running` has just folded into `entry`.
fn checkpoint(running: &Running<'_>, event: &ScoringEvent, entry: &HistoryEntry) -> Checkpoint {
    let day = utc_day(event.timestamp);
    let counts = running
        .seen_per_day
        .iter()
        .filter(|((_, d), _)| *d == day)
        .map(|((event_type, _), n)| (event_type.clone(), *n))
        .collect();
    Checkpoint { event: event.clone(), score: entry.score, counts }
}

#[cfg(test)]
mod tests;
