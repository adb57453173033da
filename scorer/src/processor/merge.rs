//! Identity merges: a lead (an anonymous visitor's) becomes part of another (the person they
//! signed up as), across partitions, with Kafka as the only coordinator.
//!
//! A merge record (`LeadEvent::merge_into`) travels keyed by the lead that disappears, so it has
//! a place in that lead's partition order: every event read before it was applied to the lead
//! and moves with it, every event read after it is forwarded. Moving is re-sending: each event
//! applied to the lead goes out again as a LeadEvent keyed by the lead it merged into, with the
//! same eventId, so the scorer that owns that partition applies it like any other event, and an
//! eventId the lead already holds counts once. All of it is emitted in the batch's Kafka
//! transaction, beside the lead's document (marked merged, its state emptied) in the batch's
//! MongoDB transaction: a crash before the commit redoes the batch, and the document, which
//! remembers where the merge was read ([`MergeDoc::source`]), makes the redo emit the same
//! records again.
//!
//! - A repeat of the merge (an SDK resending the batch) changes nothing.
//! - A merge of a lead that already merged elsewhere is refused to the dead-letter topic: a lead
//!   merges once.
//! - Chains work: A merged into B moves to B, and when B merges into C it moves A's events with
//!   its own; an event later sent as A is forwarded to B, then by B to C.
//! - A merge moves the lead's [`MAX_MOVED_EVENTS`] newest events at most, so that its
//!   transaction stays bounded whatever the lead's history (`scorer_merge_events_left_total`
//!   counts the older ones, which stay on the merged lead).
//! - A merge that would close a cycle is refused, and a forward past
//!   [`MAX_FORWARD_HOPS`] (a cycle made by two merges read at once on two partitions) goes to the
//!   dead-letter topic instead of circling.

use std::collections::{HashMap, HashSet};

use leadflow_core::contract::project::{lead_key, split_lead_key};
use leadflow_core::contract::records::{
    LeadEvent, LeadScored, MAX_FORWARD_HOPS, RecordPosition, Stage, TopicRecord,
};
use leadflow_core::model::scoring::{LeadState, REASON_MERGED};
use leadflow_core::stage::typed::Emit;
use leadflow_core::store::documents::{HistoryDoc, MergeDoc};

use super::{BatchLead, ScoreProcessor};

/// The most of a merged lead's applied events a merge moves in service: its 10,000 newest, in one
/// Kafka transaction (librdkafka's queue holds 100,000 messages, and the transaction must commit
/// within `transaction.timeout.ms`). An older event stays counted on the merged lead only.
pub const MAX_MOVED_EVENTS: usize = 10_000;

/// The dead letter's `errorKind` for a merge that would close a cycle, or an event forwarded
/// around one.
pub const ERROR_CYCLE: &str = "merge_cycle";
/// The dead letter's `errorKind` for a merge of a lead that already merged into another.
pub const ERROR_CONFLICT: &str = "merge_conflict";

/// Whether `position` was read before `merge` on the same partition: an event from before the
/// merge, redone in the merge's batch, is the lead's own (its stored record is emitted again).
pub fn read_before(position: &RecordPosition, merge: &RecordPosition) -> bool {
    position.topic == merge.topic && position.partition == merge.partition && position.offset < merge.offset
}

impl ScoreProcessor {
    /// What an event of a lead that has merged emits: a merge repeated changes nothing, the
    /// merge itself redone emits what it emitted, another merge is refused, and any other event
    /// goes on to the lead it merged into.
    pub(super) async fn after_merge(
        &self,
        merge: &MergeDoc,
        event: &LeadEvent,
        position: &RecordPosition,
    ) -> mongodb::error::Result<Vec<Emit>> {
        let Some(into) = &event.merge_into else {
            return Ok(vec![self.forward(event, &merge.into, position)]);
        };
        if merge.source == *position {
            let history = self.store.newest_history(&event.key(), self.max_moved_events).await?;
            let mut out = moved(event, &merge.into, position, history.iter(), self.max_moved_events);
            out.push(Emit::record(position, &merge.record));
            return Ok(out);
        }
        if *into == merge.into {
            self.metrics.merges.with_label_values(&["repeat"]).inc();
            return Ok(Vec::new());
        }
        self.metrics.merges.with_label_values(&["refused"]).inc();
        Ok(vec![Emit::dead_letter(
            position,
            ERROR_CONFLICT,
            format!(
                "lead {:?} already merged into {:?}; a lead merges once, so the merge into {into:?} is refused",
                event.lead_id, merge.into
            ),
        )])
    }

    /// An event sent to a lead that has merged, sent on to the lead it merged into.
    fn forward(&self, event: &LeadEvent, into: &str, position: &RecordPosition) -> Emit {
        let hops = event.hops + 1;
        if hops > MAX_FORWARD_HOPS {
            return Emit::dead_letter(
                position,
                ERROR_CYCLE,
                format!(
                    "event {:?} was forwarded through {MAX_FORWARD_HOPS} merged leads: the merges form a cycle",
                    event.event_id
                ),
            );
        }
        self.metrics.events_forwarded.inc();
        Emit::record(
            position,
            &LeadEvent {
                lead_id: into.to_owned(),
                forwarded_from: Some(event.lead_id.clone()),
                hops,
                ..event.clone()
            },
        )
    }

    /// Merges `lead` into `into`: its applied events (stored, and this batch's in `batch_history`)
    /// are re-sent to `into`, its state is emptied and it is marked merged, and a LeadScored with
    /// `mergedInto` closes it. A merge into the lead itself changes nothing.
    pub(super) async fn merge(
        &self,
        lead: &mut BatchLead,
        event: &LeadEvent,
        into: &str,
        position: &RecordPosition,
        batch_history: &[HistoryDoc],
    ) -> mongodb::error::Result<Vec<Emit>> {
        if into == event.lead_id {
            self.metrics.merges.with_label_values(&["refused"]).inc();
            return Ok(Vec::new());
        }
        let key = lead.document.key.clone();
        let limit = self.max_moved_events;
        let stored =
            if lead.read_version > 0 { self.store.newest_history(&key, limit).await? } else { Vec::new() };
        let here = batch_history.iter().filter(|h| h.lead_key == key);
        let mut out = moved(event, into, position, stored.iter().chain(here), limit);
        let left = usize::try_from(lead.document.version).unwrap_or(usize::MAX).saturating_sub(out.len());
        if left > 0 {
            tracing::warn!(
                lead = %event.lead_id,
                into,
                moved = out.len(),
                left,
                "a merge moves a lead's newest events only; the older ones stay counted on the merged lead"
            );
            self.metrics.merge_events_left.inc_by(left as u64);
        }

        let (score, stage) = match &lead.state {
            Some(state) => (state.score, state.stage),
            None => (lead.document.score, lead.document.stage),
        };
        lead.document.version += 1;
        let record = LeadScored {
            project_id: event.project_id.clone(),
            lead_id: event.lead_id.clone(),
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            delta: -score + 0.0,
            score: 0.0,
            stage: Stage::Cold,
            previous_stage: (lead.document.version > 1).then_some(stage),
            event_timestamp: event.timestamp,
            rules_version: lead.document.rules_version.clone(),
            processed_at: event.timestamp,
            late: false,
            reason: Some(REASON_MERGED.to_owned()),
            lead_version: Some(lead.document.version),
            merged_into: Some(into.to_owned()),
        };
        out.push(Emit::record(position, &record));
        lead.state = Some(LeadState::default());
        lead.document.merged = Some(MergeDoc { into: into.to_owned(), source: position.clone(), record });
        self.metrics.merges.with_label_values(&["merged"]).inc();
        Ok(out)
    }

    /// Why merging `key` into `into` would close a cycle (`into`, followed through the leads it
    /// merged into, reaches `key`), or `None`. This batch's leads are asked first, as they may
    /// have merged in it.
    pub(super) async fn merge_cycle(
        &self,
        key: &str,
        event: &LeadEvent,
        into: &str,
        batch: &HashMap<String, BatchLead>,
    ) -> mongodb::error::Result<Option<String>> {
        if into == event.lead_id {
            return Ok(None);
        }
        let mut next = lead_key(&event.project_id, into).into_owned();
        let mut seen = HashSet::new();
        while seen.insert(next.clone()) && seen.len() <= MAX_FORWARD_HOPS as usize {
            if next == key {
                return Ok(Some(format!(
                    "merging {:?} into {into:?} would close a cycle: {into:?} already merged, through {} lead(s), into {:?}",
                    event.lead_id,
                    seen.len() - 1,
                    event.lead_id
                )));
            }
            let merged = match batch.get(&next) {
                Some(lead) => lead.document.merged.clone(),
                None => self.store.lead(&next).await?.and_then(|document| document.merged),
            };
            let Some(merge) = merged else { return Ok(None) };
            next = lead_key(split_lead_key(&next).0, &merge.into).into_owned();
        }
        Ok(None)
    }
}

/// The `limit` newest events a merged lead had applied, re-sent to `into` under their own
/// eventIds, in the order they were applied.
fn moved<'a>(
    merge: &LeadEvent,
    into: &str,
    position: &RecordPosition,
    applied: impl Iterator<Item = &'a HistoryDoc>,
    limit: usize,
) -> Vec<Emit> {
    let mut applied: Vec<&HistoryDoc> = applied.collect();
    applied.sort_by_key(|h| h.seq);
    let older = applied.len().saturating_sub(limit);
    applied
        .into_iter()
        .skip(older)
        .map(|h| {
            Emit::record(
                position,
                &LeadEvent {
                    project_id: merge.project_id.clone(),
                    event_id: h.record.event_id.clone(),
                    lead_id: into.to_owned(),
                    event_type: h.record.event_type.clone(),
                    timestamp: h.record.event_timestamp,
                    properties: Default::default(),
                    merge_into: None,
                    forwarded_from: Some(merge.lead_id.clone()),
                    hops: 1,
                },
            )
        })
        .collect()
}
