//! A lead's scorer state as the scorer writes it, for read-side tests that seed MongoDB without
//! running the scorer: its `lead_scores` document and one `score_history` entry per event.

use leadflow_core::contract::project::lead_key;
use leadflow_core::model::scoring::{LeadState, REASON_TOO_LATE, ScoringEvent, ScoringRules};
use leadflow_core::store::documents::{HistoryDoc, LeadDoc};
use time::OffsetDateTime;

/// The state of `project`'s `lead` after `events` (id, type, timestamp) were applied in this
/// order under `rules`, keeping `tail_events` newest: its document and its history entries.
pub fn applied(
    project: &str,
    lead: &str,
    events: &[(&str, &str, OffsetDateTime)],
    rules: &ScoringRules,
    tail_events: usize,
) -> (LeadDoc, Vec<HistoryDoc>) {
    let key = lead_key(project, lead).into_owned();
    let mut document = LeadDoc::new(&key, 0);
    let mut state = LeadState::default();
    let mut history = Vec::new();
    for (event_id, event_type, timestamp) in events {
        let event = ScoringEvent {
            event_id: (*event_id).into(),
            event_type: (*event_type).into(),
            timestamp: *timestamp,
        };
        let outcome = state.apply_event(rules, &event, tail_events);
        document.version += 1;
        if outcome.reason != Some(REASON_TOO_LATE) {
            document.rules_version = rules.version.clone();
        }
        let record = outcome.record(project, lead, &event, &rules.version, document.version);
        history.push(HistoryDoc {
            lead_key: key.clone(),
            event_id: event.event_id,
            seq: document.version,
            ts: Some(HistoryDoc::ts_of(event.timestamp)),
            record,
            source: None,
        });
    }
    document.set_state(&state);
    (document, history)
}
