//! Every MongoDB document shape and collection name, in one place: the writer of a collection
//! and each of its readers use the same type, so they cannot drift apart. Each section names
//! the collection's writer and readers.
//!
//! Only the shapes (and the domain logic on them) live here; the I/O — queries, indexes,
//! transactions — stays in each service's store.

use mongodb::bson;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::contract::project;
use crate::contract::records::{LeadScored, RecordPosition, Stage};
use crate::model::read_model::{LeadStatus, LeadView};
use crate::model::scoring::ScoringEvent;

// ----- `leads` ------------------------------------------------------------------------------

/// The lead read model, one [`LeadViewDoc`] per lead. Written by the crm-sink
/// (`crm-sink/src/store.rs`), which also reads it back (its batches, reconcile, the out-of-sync
/// gauge); read by the gateway's read API (`ingest-gateway/src/read/read_store.rs`).
pub const LEADS: &str = "leads";

/// A `leads` document: the [`LeadView`] plus a `revision` for optimistic concurrency and two
/// flags kept in step with the view so that reconcile and the out-of-sync gauge are index
/// lookups (`outOfSync`, `refused`).
///
/// It also holds fields derived from the view for the read API, which filters and sorts on them:
/// `status` (the effective status: a review's decision, else the enrichment's), `score` (the
/// scored score, 0 when unscored), `lastActivityMs` (the newest of the last event, the
/// enrichment and the review, as epoch milliseconds: RFC 3339 text does not sort by instant) and
/// `nameLower` (the lower-cased name, for case-insensitive search). They are recomputed from the
/// view on every write ([`LeadViewDoc::from_view`]), never read back into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadViewDoc {
    #[serde(flatten)]
    pub view: LeadView,
    pub revision: u64,
    #[serde(rename = "outOfSync")]
    pub out_of_sync: bool,
    /// The CRM refused the current version.
    pub refused: bool,
    /// Derived from the view for the read API (see the type's doc). Defaulted when reading a
    /// document written before they existed; the next write of the lead stores them.
    #[serde(default)]
    pub status: Option<LeadStatus>,
    #[serde(default)]
    pub score: f64,
    #[serde(rename = "lastActivityMs", default)]
    pub last_activity_ms: i64,
    #[serde(rename = "nameLower", default)]
    pub name_lower: Option<String>,
}

impl LeadViewDoc {
    /// The document of `view` at `revision`, its flags and derived fields computed from it.
    pub fn from_view(view: LeadView, revision: u64) -> Self {
        LeadViewDoc {
            out_of_sync: view.out_of_sync(),
            refused: view.refused_at_current_version(),
            status: view.status(),
            score: view.scoring.as_ref().map_or(0.0, |s| s.score),
            last_activity_ms: view
                .last_activity_at()
                .map_or(0, |at| (at.unix_timestamp_nanos() / 1_000_000) as i64),
            name_lower: view.enrichment.as_ref().map(|e| e.name.to_lowercase()),
            view,
            revision,
        }
    }
}

// ----- `lead_scores` ------------------------------------------------------------------------

/// The scorer's state of each lead, one [`LeadDoc`] per lead. Written by the scorer
/// (`scorer/src/store.rs`: its batches and the decay pass), which also reads it back; read by the
/// gateway's read API (`ingest-gateway/src/read/read_store.rs`: a lead's detail, history and
/// intelligence).
pub const LEAD_SCORES: &str = "lead_scores";

/// One event applied to a lead, in [`LeadDoc::events`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedEvent {
    #[serde(rename = "eventId")]
    pub event_id: String,
    #[serde(rename = "eventType")]
    pub event_type: String,
    /// RFC 3339, exactly as the event carried it (a BSON date would cut it to milliseconds).
    pub timestamp: String,
}

impl AppliedEvent {
    /// The event as scoring takes it: an unreadable timestamp (never written by the scorer) is
    /// the epoch.
    pub fn to_scoring(&self) -> ScoringEvent {
        ScoringEvent {
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            timestamp: OffsetDateTime::parse(&self.timestamp, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }
}

/// A `lead_scores` document: a lead's scoring state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadDoc {
    /// The lead's key (`contract::project::lead_key`): its project and its id.
    #[serde(rename = "_id")]
    pub key: String,
    /// The lead's project, beside the key so that the decay pass finds each project's rules.
    /// Absent in documents written before projects: the default project.
    #[serde(rename = "projectId", default = "project::default_project")]
    pub project_id: String,
    /// Applied events so far: the optimistic-concurrency check of every write.
    pub version: u64,
    /// The Kafka partition of the lead's key, so a decay pass can pick the leads it owns.
    pub partition: i32,
    /// In the order applied.
    pub events: Vec<AppliedEvent>,
    pub score: f64,
    pub stage: Stage,
    /// The newest event timestamp: the score is as of then.
    #[serde(rename = "asOf")]
    pub as_of: String,
    #[serde(rename = "rulesVersion")]
    pub rules_version: String,
    /// The stage last announced by the decay pass, so it announces each drop once.
    #[serde(rename = "decayedStage", default)]
    pub decayed_stage: Option<Stage>,
}

impl LeadDoc {
    /// The empty state of the lead whose records carry `key`.
    pub fn new(key: &str, partition: i32) -> Self {
        LeadDoc {
            key: key.to_owned(),
            project_id: project::split_lead_key(key).0.to_owned(),
            version: 0,
            partition,
            events: Vec::new(),
            score: 0.0,
            stage: Stage::Cold,
            as_of: String::new(),
            rules_version: String::new(),
            decayed_stage: None,
        }
    }

    pub fn has_applied(&self, event_id: &str) -> bool {
        self.events.iter().any(|e| e.event_id == event_id)
    }

    /// The applied events, in the order applied, as scoring takes them.
    pub fn scoring_events(&self) -> Vec<ScoringEvent> {
        self.events.iter().map(AppliedEvent::to_scoring).collect()
    }
}

// ----- `score_history` ----------------------------------------------------------------------

/// The scorer's audit trail, one [`HistoryDoc`] per applied event, unique on
/// `(leadId, eventId)`, where `leadId` is the lead's key (project and id), so that eventIds are
/// unique per lead of a project. Written and read only by the scorer (`scorer/src/store.rs`: the records
/// of redelivered events, a lead's history).
pub const SCORE_HISTORY: &str = "score_history";

/// A `score_history` document: the record an applied event produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryDoc {
    /// The lead's key (`contract::project::lead_key`).
    #[serde(rename = "leadId")]
    pub lead_key: String,
    #[serde(rename = "eventId")]
    pub event_id: String,
    /// The lead's version once this event was applied: processing order.
    pub seq: u64,
    pub record: LeadScored,
    /// Where the event was read. A later read of the same `eventId` from here is a redelivery
    /// (the record is emitted again); from anywhere else, a client's repeat (nothing is).
    /// Absent in entries written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<RecordPosition>,
}

// ----- `nationalize_cache` ------------------------------------------------------------------

/// The enricher's name → country prediction cache, one [`PredictionDoc`] per (project, name),
/// expiring after a TTL on `fetchedAt`. Written and read only by the enricher
/// (`enricher/src/cache.rs`). This is the name in the enricher's defaults; its
/// `cache.collection` setting may change it.
pub const NATIONALIZE_CACHE: &str = "nationalize_cache";

/// A `nationalize_cache` document: the countries predicted for a name in one project, and when
/// they were fetched. Scoped by project so that one tenant's lookups never reveal or shape
/// another's (see `enricher/src/cache.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionDoc {
    /// [`PredictionDoc::id_of`] the project and the name.
    #[serde(rename = "_id")]
    pub id: String,
    /// The project that asked; absent in documents written before projects: the default one.
    #[serde(rename = "projectId", default = "project::default_project")]
    pub project_id: String,
    pub countries: Vec<PredictedCountry>,
    #[serde(rename = "fetchedAt")]
    pub fetched_at: bson::DateTime,
}

impl PredictionDoc {
    /// The `_id` of `name`'s prediction in `project`: the bare name in the default project (as
    /// before projects, so its stored predictions stay found), `<project>:<name>` elsewhere. A
    /// default-project name that itself holds a `:` is written `default:<name>`, so that no
    /// default name can take the id of another project's name (a project id never holds `:`).
    pub fn id_of(project: &str, name: &str) -> String {
        if project::is_default_project(project) && !name.contains(':') {
            name.to_owned()
        } else {
            format!("{project}:{name}")
        }
    }
}

/// One country of a [`PredictionDoc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictedCountry {
    #[serde(rename = "countryId")]
    pub country_id: String,
    pub probability: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::records::{EnrichmentStatus, LeadEnriched, LeadReviewed, ReviewDecision};
    use time::macros::datetime;

    #[test]
    fn the_derived_fields_follow_the_view() {
        let mut view = LeadView::new("lead-1", 0);
        let bare = bson::to_document(&LeadViewDoc::from_view(view.clone(), 1)).unwrap();
        assert_eq!(bare.get_f64("score").unwrap(), 0.0);
        assert_eq!(bare.get_i64("lastActivityMs").unwrap(), 0);
        assert!(bare.get("status").unwrap().as_null().is_some());

        view.apply_enriched(&LeadEnriched {
            project_id: "default".into(),
            lead_id: "lead-1".into(),
            name: "Ada ÉLAN".into(),
            email: None,
            company: None,
            country_code: None,
            country_name: None,
            probability: Some(0.3),
            status: EnrichmentStatus::ToCheck,
            reason: None,
            provider: "nationalize".into(),
            enriched_at: datetime!(2026-01-16 10:00:00.123 UTC),
        });
        let enriched = bson::to_document(&LeadViewDoc::from_view(view.clone(), 2)).unwrap();
        assert_eq!(enriched.get_str("status").unwrap(), "To Check");
        assert_eq!(enriched.get_str("nameLower").unwrap(), "ada élan");
        assert_eq!(
            enriched.get_i64("lastActivityMs").unwrap(),
            datetime!(2026-01-16 10:00:00.123 UTC).unix_timestamp() * 1000 + 123
        );

        view.apply_reviewed(&LeadReviewed {
            project_id: "default".into(),
            lead_id: "lead-1".into(),
            decision: ReviewDecision::Rejected,
            reviewer: None,
            note: None,
            reviewed_at: datetime!(2026-01-17 10:00 UTC),
        });
        let reviewed = LeadViewDoc::from_view(view, 3);
        let document = bson::to_document(&reviewed).unwrap();
        assert_eq!(document.get_str("status").unwrap(), "Rejected", "a review overrides the enrichment");
        assert_eq!(
            document.get_i64("lastActivityMs").unwrap(),
            datetime!(2026-01-17 10:00 UTC).unix_timestamp() * 1000
        );
        let back: LeadViewDoc = bson::from_document(document).unwrap();
        assert_eq!(back, reviewed, "the derived fields read back");
    }

    #[test]
    fn a_document_written_before_the_derived_fields_still_reads() {
        let mut document = bson::to_document(&LeadViewDoc::from_view(LeadView::new("lead-1", 2), 4)).unwrap();
        for field in ["status", "score", "lastActivityMs", "nameLower"] {
            document.remove(field);
        }
        let read: LeadViewDoc = bson::from_document(document).unwrap();
        assert_eq!((read.revision, read.view.partition), (4, 2));
    }

    #[test]
    fn a_lead_scores_document_keeps_its_field_names() {
        let mut lead = LeadDoc::new("lead-1", 3);
        lead.events.push(AppliedEvent {
            event_id: "e1".into(),
            event_type: "page_view".into(),
            timestamp: "2026-01-16T10:00:00.123456789Z".into(),
        });
        let document = bson::to_document(&lead).unwrap();
        let keys: Vec<&str> = document.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "_id",
                "projectId",
                "version",
                "partition",
                "events",
                "score",
                "stage",
                "asOf",
                "rulesVersion",
                "decayedStage"
            ]
        );
        let event = document.get_array("events").unwrap()[0].as_document().unwrap();
        assert_eq!(
            event.keys().map(String::as_str).collect::<Vec<_>>(),
            ["eventId", "eventType", "timestamp"]
        );
        assert_eq!(bson::from_document::<LeadDoc>(document).unwrap(), lead);
        assert!(lead.has_applied("e1") && !lead.has_applied("e2"));
        assert_eq!(lead.scoring_events()[0].timestamp, datetime!(2026-01-16 10:00:00.123456789 UTC));
    }

    #[test]
    fn a_prediction_keeps_its_field_names() {
        let prediction = PredictionDoc {
            id: PredictionDoc::id_of("default", "ada"),
            project_id: "default".into(),
            countries: vec![PredictedCountry { country_id: "GB".into(), probability: 0.4 }],
            fetched_at: bson::DateTime::from_millis(1_700_000_000_000),
        };
        let document = bson::to_document(&prediction).unwrap();
        assert_eq!(
            document,
            bson::doc! {
                "_id": "ada",
                "projectId": "default",
                "countries": [{ "countryId": "GB", "probability": 0.4 }],
                "fetchedAt": bson::DateTime::from_millis(1_700_000_000_000),
            }
        );
        assert_eq!(bson::from_document::<PredictionDoc>(document).unwrap(), prediction);

        let mut before_projects = bson::to_document(&prediction).unwrap();
        before_projects.remove("projectId");
        let read: PredictionDoc = bson::from_document(before_projects).unwrap();
        assert_eq!(read.project_id, "default", "a document written before projects is the default's");
    }

    #[test]
    fn a_prediction_id_names_the_project_and_no_two_projects_share_one() {
        assert_eq!(PredictionDoc::id_of("default", "ada"), "ada");
        assert_eq!(PredictionDoc::id_of("acme", "ada"), "acme:ada");
        // A default-project name shaped like another project's id does not take it.
        assert_eq!(PredictionDoc::id_of("default", "acme:ada"), "default:acme:ada");
        assert_ne!(PredictionDoc::id_of("default", "acme:ada"), PredictionDoc::id_of("acme", "ada"));
    }
}
