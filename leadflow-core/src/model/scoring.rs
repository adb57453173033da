//! The lead-scoring model: what an event is worth, how a quiet lead's score fades, and which
//! stage a score puts the lead in.
//!
//! Everything here is a pure function of the rules and a lead's events. There are no clock
//! reads, every time is passed in, so a score can be recomputed, replayed or tested and always
//! comes out the same. A score depends on the *set* of a lead's events and not on the order in
//! which they arrived: the events are folded in chronological order. A late event lands where it
//! belongs in the lead's history, and a redelivered event counts once.
//!
//! The scorer keeps a lead's state bounded ([`LeadState`]): its newest events and a checkpoint
//! of the fold before them. Within that window it gives exactly the scores of the whole fold; an
//! event older than the window scores nothing ([`REASON_TOO_LATE`]). [`history`] and [`apply`]
//! fold a whole set of events, as the read API's history does.
//!
//! Scores are rounded to 6 decimal places at every step of the fold, and the rounded value is
//! what the next step decays. The records carry scores as JSON numbers, and `powf` is not
//! correctly rounded on every platform, so unrounded scores could differ in the last bit between
//! machines and would read as `74.99999999999999`. With rounding at every step, each history entry
//! is exactly `round6(previous entry × decay + points)`, so a history can be checked from its own
//! records.
//!
//! All functions except [`ScoringRules::validate`] expect rules that passed `validate`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::contract::project;
use crate::contract::records::{LeadScored, SCORING_RULES_KEY, Stage, TopicRecord};

mod lead_state;

pub use lead_state::{Checkpoint, LeadState};

/// The event type has no points rule, so it scores 0.
pub const REASON_NO_RULE: &str = "no_rule";
/// The event type's daily cap was already reached that UTC day, so it scores 0.
pub const REASON_DAILY_CAP: &str = "daily_cap";
/// The event is older than every event in the lead's bounded state (see [`LeadState`]): it is
/// recorded as applied and scores 0, and the score does not change.
pub const REASON_TOO_LATE: &str = "too_late";
/// The record closes a lead that merged into another (an identity merge): its score is 0 and
/// its events count on the lead named by `mergedInto`.
pub const REASON_MERGED: &str = "merged";

const SECONDS_PER_DAY: i64 = 86_400;
/// The longest version or event type name, in characters.
const MAX_NAME_CHARS: usize = 64;
const NAME_RULE: &str = "must match ^[a-z][a-z0-9_]{0,63}$";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoringRules {
    /// The project these rules score; absent (before projects) is the default one.
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
    /// The name of this set of rules. Every scored record carries it.
    pub version: String,
    /// Points per event type. An event type without an entry scores 0 (reason `no_rule`).
    pub points: BTreeMap<String, f64>,
    pub stages: StageThresholds,
    pub decay: DecayRule,
    /// The most events of a type that score on one UTC day. An event type without an entry has
    /// no cap.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub daily_caps: BTreeMap<String, u32>,
}

/// The lowest score of each stage above cold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageThresholds {
    pub warm: f64,
    pub hot: f64,
    pub qualified: f64,
}

/// After `grace_days` without events, a score shrinks by `rate_per_day` for each further day.
/// The decay is continuous: half a day takes off half a step in the exponent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecayRule {
    pub grace_days: f64,
    pub rate_per_day: f64,
}

/// The most points one event can score. With it, no count of events a lead could ever have
/// brings a score near the largest finite number, so every score is finite.
pub const MAX_POINTS: f64 = 1_000_000.0;
/// The highest stage threshold.
pub const MAX_THRESHOLD: f64 = 1_000_000_000.0;
/// The longest grace period, ten years.
pub const MAX_GRACE_DAYS: f64 = 3650.0;

/// Rules that would score nonsense. The offending field is named as it is in the rules' JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scoring rules: {field} {problem}")]
pub struct RulesError {
    pub field: String,
    pub problem: &'static str,
}

impl ScoringRules {
    /// The rules LeadFlow ships with, which score every project that has set none of its own.
    pub fn seeds_for(project_id: &str) -> Self {
        ScoringRules { project_id: project_id.to_owned(), ..ScoringRules::seeds() }
    }

    /// The rules LeadFlow ships with, for the default project.
    pub fn seeds() -> Self {
        let points = [
            ("page_view", 5.0),
            ("signup", 20.0),
            ("download", 10.0),
            ("demo_request", 50.0),
            ("contract_signed", 100.0),
        ];
        ScoringRules {
            project_id: project::default_project(),
            version: "v1".to_owned(),
            points: points.into_iter().map(|(event_type, points)| (event_type.to_owned(), points)).collect(),
            stages: StageThresholds { warm: 20.0, hot: 50.0, qualified: 100.0 },
            decay: DecayRule { grace_days: 7.0, rate_per_day: 0.05 },
            daily_caps: BTreeMap::new(),
        }
    }

    /// Checks the rules before they are used, as the wire schema
    /// (`schemas/ScoringRules.schema.json`) does. Points are never negative, because a LeadScored
    /// score never is.
    pub fn validate(&self) -> Result<(), RulesError> {
        let fail = |field: &str, problem| Err(RulesError { field: field.to_owned(), problem });

        if project::check_project_id(&self.project_id).is_err() {
            return fail("projectId", "must match ^[a-z0-9][a-z0-9-]{0,62}$");
        }
        if self.version.trim().is_empty() || self.version.chars().count() > MAX_NAME_CHARS {
            return fail("version", "must be 1 to 64 characters and not blank");
        }
        for (event_type, points) in &self.points {
            if !is_event_type_name(event_type) {
                return fail(&format!("points.{event_type:?}"), NAME_RULE);
            }
            if !(points.is_finite() && (0.0..=MAX_POINTS).contains(points)) {
                return fail(&format!("points.{event_type:?}"), "must be a number from 0 to 1000000");
            }
        }
        if let Some(event_type) = self.daily_caps.keys().find(|name| !is_event_type_name(name)) {
            return fail(&format!("dailyCaps.{event_type:?}"), NAME_RULE);
        }

        let StageThresholds { warm, hot, qualified } = self.stages;
        for (field, value) in [("stages.warm", warm), ("stages.hot", hot), ("stages.qualified", qualified)] {
            if !(value.is_finite() && value <= MAX_THRESHOLD) {
                return fail(field, "must be a number of at most 1000000000");
            }
        }
        if warm < 0.0 {
            return fail("stages.warm", "must be at least 0");
        }
        if hot < warm {
            return fail("stages.hot", "must be at least stages.warm");
        }
        if qualified < hot {
            return fail("stages.qualified", "must be at least stages.hot");
        }

        let DecayRule { grace_days, rate_per_day } = self.decay;
        // Bounded so that "now minus the grace period" is a date the clock can hold.
        if !(grace_days.is_finite() && (0.0..=MAX_GRACE_DAYS).contains(&grace_days)) {
            return fail("decay.graceDays", "must be a number from 0 to 3650");
        }
        // A rate of 1 would wipe a score out after the first day, and any higher rate would make
        // the score negative.
        if !(0.0..1.0).contains(&rate_per_day) {
            return fail("decay.ratePerDay", "must be at least 0 and below 1");
        }
        Ok(())
    }

    /// The points for an event type, or `None` when the type has no rule.
    pub fn points_for(&self, event_type: &str) -> Option<f64> {
        self.points.get(event_type).copied()
    }

    pub fn stage_for(&self, score: f64) -> Stage {
        let StageThresholds { warm, hot, qualified } = self.stages;
        if score >= qualified {
            Stage::Qualified
        } else if score >= hot {
            Stage::Hot
        } else if score >= warm {
            Stage::Warm
        } else {
            Stage::Cold
        }
    }
}

/// `^[a-z][a-z0-9_]{0,63}$`, written out so that the crate needs no regex engine.
fn is_event_type_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.len() <= MAX_NAME_CHARS
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The share of a score that is left after `gap` without events: 1 within the grace period,
/// then `1 - rate_per_day` for each further day, with partial days counted continuously. The
/// factor is in (0, 1] and never grows as the gap grows. A negative gap (the event is older than
/// the newest one) decays nothing. For gaps of years at steep rates the factor underflows to
/// 0.0, which is also what rounding would make of any score that small.
pub fn decay_factor(gap: Duration, rule: &DecayRule) -> f64 {
    let gap_days = gap.as_seconds_f64() / SECONDS_PER_DAY as f64;
    if gap_days <= rule.grace_days { 1.0 } else { (1.0 - rule.rate_per_day).powf(gap_days - rule.grace_days) }
}

/// An event as scoring sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringEvent {
    pub event_id: String,
    pub event_type: String,
    pub timestamp: OffsetDateTime,
}

/// One event's place in the lead's chronological history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub event_id: String,
    pub event_type: String,
    pub timestamp: OffsetDateTime,
    /// What the event added: its rule's points, or 0 when `reason` says why not.
    pub points: f64,
    /// The lead's score as of this event: the previous score decayed over the gap, plus `points`.
    pub score: f64,
    pub stage: Stage,
    /// [`REASON_NO_RULE`] or [`REASON_DAILY_CAP`] when the event scored nothing.
    pub reason: Option<&'static str>,
}

/// The chronological history of a set of events, with the cumulative score after each event.
/// Each `event_id` appears once.
pub fn history(rules: &ScoringRules, events: &[ScoringEvent]) -> Vec<HistoryEntry> {
    fold(rules, events.iter())
}

/// The score as of the newest event (0.0 when there are no events).
pub fn score(rules: &ScoringRules, events: &[ScoringEvent]) -> f64 {
    history(rules, events).last().map_or(0.0, |newest| newest.score)
}

/// The score at `now`, used for reads and for the periodic decay pass: the score as of the
/// newest event, decayed over the time since then. A `now` at or before the newest event
/// decays nothing.
pub fn effective_score(rules: &ScoringRules, events: &[ScoringEvent], now: OffsetDateTime) -> f64 {
    history(rules, events)
        .last()
        .map_or(0.0, |newest| decayed_score(newest.score, newest.timestamp, now, &rules.decay))
}

/// `score`, as of `as_of`, decayed to `now` and rounded: the effective score of a lead whose
/// stored score is as of its newest event. A `now` at or before `as_of` decays nothing.
pub fn decayed_score(score: f64, as_of: OffsetDateTime, now: OffsetDateTime, rule: &DecayRule) -> f64 {
    round6(score * decay_factor(now - as_of, rule))
}

/// What applying `new` to a lead that already has `applied` does.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `score` minus the score of `applied` alone.
    pub delta: f64,
    /// The score of `applied` together with `new`, as of `as_of`.
    pub score: f64,
    pub stage: Stage,
    /// The stage before `new`, or `None` when the lead had no events.
    pub previous_stage: Option<Stage>,
    /// `new` is older than the newest applied event. It was inserted into the history at its
    /// timestamp, which can change the score by more than its own points.
    pub late: bool,
    /// Why `new` itself scored nothing, if it did not score.
    pub reason: Option<&'static str>,
    /// The newest timestamp, `new` included.
    pub as_of: OffsetDateTime,
}

impl Outcome {
    /// The LeadScored of applying `event` to `project_id`'s `lead_id`, which made it the lead's
    /// `lead_version`-th event. Its `processedAt` is the time the score is as of, never the wall
    /// clock, so that a replay gives identical records.
    pub fn record(
        &self,
        project_id: &str,
        lead_id: &str,
        event: &ScoringEvent,
        rules_version: &str,
        lead_version: u64,
    ) -> LeadScored {
        LeadScored {
            project_id: project_id.to_owned(),
            lead_id: lead_id.to_owned(),
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            delta: self.delta,
            score: self.score,
            stage: self.stage,
            previous_stage: self.previous_stage,
            event_timestamp: event.timestamp,
            rules_version: rules_version.to_owned(),
            processed_at: self.as_of,
            late: self.late,
            reason: self.reason.map(str::to_owned),
            lead_version: Some(lead_version),
            merged_into: None,
        }
    }
}

/// Applies `new` to a lead that already has `applied`. Returns `None` when `new.event_id` is
/// already in `applied`, because an event is applied at most once.
pub fn apply(rules: &ScoringRules, applied: &[ScoringEvent], new: &ScoringEvent) -> Option<Outcome> {
    if applied.iter().any(|event| event.event_id == new.event_id) {
        return None;
    }
    let before = history(rules, applied);
    let after = fold(rules, applied.iter().chain([new]));
    let previous = before.last();
    // Never empty: `after` contains `new`.
    let newest = after.last()?;
    let own_reason = after.iter().find(|entry| entry.event_id == new.event_id).and_then(|entry| entry.reason);
    Some(Outcome {
        delta: round6(newest.score - previous.map_or(0.0, |entry| entry.score)),
        score: newest.score,
        stage: newest.stage,
        previous_stage: previous.map(|entry| entry.stage),
        late: previous.is_some_and(|entry| new.timestamp < entry.timestamp),
        reason: own_reason,
        as_of: newest.timestamp,
    })
}

/// The model itself. Each event first decays the running score over the gap since the previous
/// event, then adds its points.
fn fold<'a>(rules: &ScoringRules, events: impl Iterator<Item = &'a ScoringEvent>) -> Vec<HistoryEntry> {
    let mut running = Running::new(rules);
    chronological(events).into_iter().map(|event| running.step(event)).collect()
}

/// The fold between two events: the score as of the newest event folded so far, and how many
/// events of each capped type each UTC day has seen. One [`Running::step`] is the model's only
/// arithmetic, so a fold resumed from a checkpoint ([`LeadState`]) is bit-identical to the
/// whole fold.
struct Running<'r> {
    rules: &'r ScoringRules,
    /// The score and timestamp of the newest event folded so far.
    previous: Option<(f64, OffsetDateTime)>,
    /// Per (capped type, UTC day as days since the epoch), the events seen so far.
    seen_per_day: BTreeMap<(String, i64), u32>,
}

impl<'r> Running<'r> {
    fn new(rules: &'r ScoringRules) -> Self {
        Running { rules, previous: None, seen_per_day: BTreeMap::new() }
    }

    /// Counts `event` towards its day's cap, if its type is capped; true when that puts it over.
    fn count(&mut self, event: &ScoringEvent) -> bool {
        self.rules.daily_caps.get(&event.event_type).is_some_and(|&cap| {
            let seen =
                self.seen_per_day.entry((event.event_type.clone(), utc_day(event.timestamp))).or_insert(0);
            *seen = seen.saturating_add(1);
            *seen > cap
        })
    }

    /// Folds in the next event in chronological order.
    fn step(&mut self, event: &ScoringEvent) -> HistoryEntry {
        let over_cap = self.count(event);
        let (points, reason) = match self.rules.points_for(&event.event_type) {
            None => (0.0, Some(REASON_NO_RULE)),
            Some(_) if over_cap => (0.0, Some(REASON_DAILY_CAP)),
            Some(points) => (points, None),
        };
        let decayed = self.previous.map_or(0.0, |(score, timestamp)| {
            score * decay_factor(event.timestamp - timestamp, &self.rules.decay)
        });
        let score = round6(decayed + points);
        self.previous = Some((score, event.timestamp));
        HistoryEntry {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            timestamp: event.timestamp,
            points,
            score,
            stage: self.rules.stage_for(score),
            reason,
        }
    }
}

/// The UTC day of `timestamp`, as days since the epoch: the unit of the daily caps.
fn utc_day(timestamp: OffsetDateTime) -> i64 {
    timestamp.unix_timestamp().div_euclid(SECONDS_PER_DAY)
}

/// The order of the history: timestamp, then `event_id`, then type.
fn sort_key(event: &ScoringEvent) -> (OffsetDateTime, &str, &str) {
    (event.timestamp, &event.event_id, &event.event_type)
}

/// The events in the order they happened, with each `event_id` once. The sort key is the whole
/// event (timestamp, then `event_id`, then type), so the order depends only on the set of
/// events. This holds even if two deliveries of one `event_id` disagree about the other fields:
/// the one that sorts first is kept.
fn chronological<'a>(events: impl Iterator<Item = &'a ScoringEvent>) -> Vec<&'a ScoringEvent> {
    let mut sorted: Vec<&ScoringEvent> = events.collect();
    sorted.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    let mut seen = HashSet::new();
    sorted.retain(|event| seen.insert(event.event_id.as_str()));
    sorted
}

/// Rounds to 6 decimal places (see the module docs for why).
fn round6(x: f64) -> f64 {
    // Above 1e9 the sixth decimal is at the edge of what f64 holds (about 16 significant
    // digits), and for the largest finite scores `x * 1e6` would overflow. Such scores are
    // left as they are.
    if x.abs() >= 1e9 {
        return x;
    }
    // Adding 0.0 turns -0.0 into 0.0, so that a score that rounds to zero is written as `0.0`.
    (x * 1e6).round() / 1e6 + 0.0
}

impl TopicRecord for ScoringRules {
    const TOPIC: &'static str = crate::contract::topics::SCORING_RULES;
    const SCHEMA: &'static str = include_str!("../../../schemas/ScoringRules.schema.json");
    /// One key per project, so that compaction keeps each project's newest rule set. The
    /// default project keeps the key of before projects.
    fn key(&self) -> Cow<'_, str> {
        if project::is_default_project(&self.project_id) {
            Cow::Borrowed(SCORING_RULES_KEY)
        } else {
            Cow::Owned(format!("{SCORING_RULES_KEY}/{}", self.project_id))
        }
    }
}

#[cfg(test)]
mod tests;
