//! What one record changes in what the automator knows of its lead, and which rules that change
//! fires. Pure: the processor reads and saves the documents, this decides.
//!
//! A record is applied to its lead once: each lead document remembers the newest offset it has
//! applied from each input topic (a lead's records of one topic share a partition), so a record
//! at or below it is a redelivery, and [`apply`] answers `None` for it. Its executions, if it
//! made any, are found by their source position and emitted again instead.

use leadflow_core::contract::records::{LeadEnriched, LeadReviewed, LeadScored, RecordPosition};
use leadflow_core::contract::topics;
use leadflow_core::model::automation::{AutomationRule, LeadSnapshot, execution_key, utc_day};
use leadflow_core::model::webhook::payload::LeadFacts;
use leadflow_core::store::documents::{AutomationLeadDoc, MAX_RECENT_EVENTS};
use time::OffsetDateTime;

/// The scorer's decay announcements: a change of stage, not an event of the lead.
pub const DECAY_EVENT_TYPE: &str = "decay";

const DAY_MS: i64 = 86_400_000;

/// A decoded input record.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Scored(LeadScored),
    Enriched(LeadEnriched),
    /// A person's decision, which `becomesVerified` counts as the enricher's.
    Reviewed(LeadReviewed),
}

impl Trigger {
    pub fn project_id(&self) -> &str {
        match self {
            Trigger::Scored(r) => &r.project_id,
            Trigger::Enriched(r) => &r.project_id,
            Trigger::Reviewed(r) => &r.project_id,
        }
    }

    pub fn lead_id(&self) -> &str {
        match self {
            Trigger::Scored(r) => &r.lead_id,
            Trigger::Enriched(r) => &r.lead_id,
            Trigger::Reviewed(r) => &r.lead_id,
        }
    }

    /// The record's own time, which decides the execution's UTC day: a redelivery or a replay
    /// computes the same day, whatever the clock says then.
    pub fn at(&self) -> OffsetDateTime {
        match self {
            Trigger::Scored(r) => r.event_timestamp,
            Trigger::Enriched(r) => r.enriched_at,
            Trigger::Reviewed(r) => r.reviewed_at,
        }
    }

    pub fn event_id(&self) -> Option<&str> {
        match self {
            Trigger::Scored(r) => Some(&r.event_id),
            Trigger::Enriched(_) | Trigger::Reviewed(_) => None,
        }
    }
}

/// The lead's state before and after a record, as the conditions compare them.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub before: LeadSnapshot,
    pub after: LeadSnapshot,
}

fn snapshot(doc: &AutomationLeadDoc, events_24h: Option<u32>) -> LeadSnapshot {
    LeadSnapshot { stage: doc.stage, score: doc.score, status: doc.effective_status(), events_24h }
}

/// The lead's events in the 24 hours up to and including `at_ms`.
fn events_within_day(recent: &[i64], at_ms: i64) -> u32 {
    let count = recent.iter().filter(|&&t| t > at_ms - DAY_MS && t <= at_ms).count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn epoch_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Applies `record`, read at `position`, to `doc`. `None` when the record was applied before (a
/// redelivery): `doc` is unchanged.
pub fn apply(doc: &mut AutomationLeadDoc, record: &Trigger, position: &RecordPosition) -> Option<Change> {
    let mark = match position.topic.as_str() {
        topics::ENRICHED => &mut doc.enriched_offset,
        topics::REVIEWS => &mut doc.reviews_offset,
        _ => &mut doc.scores_offset,
    };
    if position.offset <= *mark {
        return None;
    }
    *mark = position.offset;
    match record {
        // A merged lead is closed, not cooled: its events now count on the lead it merged into,
        // whose own records fire that lead's rules. Its facts follow, and nothing fires here.
        Trigger::Scored(scored) if scored.merged_into.is_some() => {
            doc.stage = Some(scored.stage);
            doc.score = Some(scored.score);
            let closed = snapshot(
                doc,
                Some(events_within_day(&doc.recent_events_ms, epoch_ms(scored.event_timestamp))),
            );
            Some(Change { before: closed.clone(), after: closed })
        }
        Trigger::Scored(scored) => {
            let is_event = scored.event_type != DECAY_EVENT_TYPE;
            let at_ms = epoch_ms(scored.event_timestamp);
            let before_count = events_within_day(&doc.recent_events_ms, at_ms);
            let before = snapshot(doc, Some(before_count));
            if is_event {
                let at = doc.recent_events_ms.partition_point(|&t| t <= at_ms);
                doc.recent_events_ms.insert(at, at_ms);
                // Only the day up to the newest event can count again; an event older than that
                // arriving late is counted where it lands, then pruned.
                let newest = *doc.recent_events_ms.last().expect("just inserted");
                doc.recent_events_ms.retain(|&t| t > newest - DAY_MS);
                let excess = doc.recent_events_ms.len().saturating_sub(MAX_RECENT_EVENTS);
                doc.recent_events_ms.drain(..excess);
            }
            doc.stage = Some(scored.stage);
            doc.score = Some(scored.score);
            let after_count =
                if is_event { events_within_day(&doc.recent_events_ms, at_ms) } else { before_count };
            Some(Change { before, after: snapshot(doc, Some(after_count)) })
        }
        Trigger::Enriched(enriched) => {
            let before = snapshot(doc, None);
            doc.status = Some(enriched.status);
            doc.name = Some(enriched.name.clone());
            Some(Change { before, after: snapshot(doc, None) })
        }
        Trigger::Reviewed(reviewed) => {
            let before = snapshot(doc, None);
            doc.review = Some(reviewed.decision);
            Some(Change { before, after: snapshot(doc, None) })
        }
    }
}

/// A rule that fired, with the key of the execution it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing<'a> {
    pub rule: &'a AutomationRule,
    pub execution_key: String,
    pub utc_day: time::Date,
}

/// The enabled rules of the record's project that `change` fires, in the order given.
pub fn firings<'a>(
    rules: impl IntoIterator<Item = &'a AutomationRule>,
    record: &Trigger,
    change: &Change,
) -> Vec<Firing<'a>> {
    let day = utc_day(record.at());
    rules
        .into_iter()
        .filter(|rule| rule.enabled && rule.project_id == record.project_id())
        .filter(|rule| rule.condition.fires(&change.before, &change.after))
        .map(|rule| Firing {
            rule,
            execution_key: execution_key(record.project_id(), &rule.id, record.lead_id(), day),
            utc_day: day,
        })
        .collect()
}

/// What a delivery's body says of the lead.
pub fn lead_facts(doc: &AutomationLeadDoc, change: &Change) -> LeadFacts {
    LeadFacts {
        stage: doc.stage,
        score: doc.score,
        status: doc.effective_status(),
        name: doc.name.clone(),
        events_24h: change.after.events_24h,
    }
}

#[cfg(test)]
mod tests;
