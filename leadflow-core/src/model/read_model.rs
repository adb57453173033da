//! The lead read model, pure: how enriched, scored and reviewed records fold into one view of a
//! lead, and when the CRM must hear about it. Every record may arrive twice (a redelivery, a
//! re-emitted stored record) or after a newer one (a replay); neither may move the view
//! backwards.
//!
//! - An enrichment is newer when its `enrichedAt` is later.
//! - A score is newer when its `(leadVersion, processedAt)` is greater: `leadVersion` grows with
//!   every event the scorer applies, and a decay record keeps its state's version with a later
//!   `processedAt`.
//! - A review is newer when its `reviewedAt` is later. A review overrides the enrichment status:
//!   a person has looked at the lead.
//! - `version` counts changes to what the CRM sees (profile, country, probability, status,
//!   stage), not every score change, so the CRM hears of a lead when something it shows changes.

use crate::contract::project::{self, split_lead_key};
use crate::contract::records::{
    CrmDelivery, DeliveryStatus, EnrichmentStatus, LeadEnriched, LeadReviewed, LeadScored, ReviewDecision,
    Stage,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrichment {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub probability: Option<f64>,
    pub status: EnrichmentStatus,
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub enriched_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scoring {
    pub score: f64,
    pub stage: Stage,
    #[serde(with = "time::serde::rfc3339")]
    pub last_event_at: OffsetDateTime,
    pub lead_version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub processed_at: OffsetDateTime,
    pub rules_version: String,
    /// Set once the lead has merged into another (an identity merge): the lead that now holds
    /// its events. Its score is then 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub decision: ReviewDecision,
    pub reviewer: Option<String>,
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub reviewed_at: OffsetDateTime,
}

/// A lead's status: the enrichment's, unless a person decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeadStatus {
    Verified,
    #[serde(rename = "To Check")]
    ToCheck,
    Rejected,
}

impl LeadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::Verified => "Verified",
            LeadStatus::ToCheck => "To Check",
            LeadStatus::Rejected => "Rejected",
        }
    }
}

/// What the CRM shows of a lead: a change here is a new version to deliver.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmFields {
    pub name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub probability: Option<f64>,
    pub status: Option<LeadStatus>,
    pub stage: Option<Stage>,
}

/// Where a record sits in Kafka: here, what started a delivery.
pub use crate::contract::records::RecordPosition;

/// The newest delivery attempt that reached an answer from the CRM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    pub version: u64,
    pub destination: String,
    pub status: DeliveryStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The lead's last record in the batch that delivered it. While that record is not behind
    /// the committed offsets, the attempt's receipt may not be committed yet, so a batch that
    /// meets the record again emits the receipt again (and does not deliver again).
    pub trigger: RecordPosition,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadView {
    /// The lead's key (`contract::project::lead_key`): its project and its id.
    #[serde(rename = "_id")]
    pub key: String,
    /// The lead's project, kept beside the key so the read API can filter on it. Absent in
    /// documents written before projects: the default project.
    #[serde(default = "project::default_project")]
    pub project_id: String,
    /// The Kafka partition of the lead's key (the same on every lead topic).
    pub partition: i32,
    pub enrichment: Option<Enrichment>,
    pub scoring: Option<Scoring>,
    #[serde(default)]
    pub review: Option<Review>,
    /// Changes to the CRM-visible fields so far.
    pub version: u64,
    /// The version the CRM last acknowledged.
    pub synced_version: u64,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub synced_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_delivery: Option<DeliveryAttempt>,
    /// When to read the CRM's copy back: set when a write of this lead may still be applied late
    /// (it got no answer, or the writer had just taken over the lead's partition), over a newer
    /// version. `None`: nothing to check.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub crm_check_after: Option<OffsetDateTime>,
}

/// What applying a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Older than (or the same as) what the view holds: nothing changed.
    Ignored,
    /// Newer, but nothing the CRM shows changed.
    Updated,
    /// A CRM-visible field changed: `version` went up.
    Changed,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Ignored => "ignored",
            Applied::Updated => "updated",
            Applied::Changed => "changed",
        }
    }
}

impl LeadView {
    /// The empty view of the lead whose records carry `key`.
    pub fn new(key: &str, partition: i32) -> Self {
        LeadView {
            key: key.to_owned(),
            project_id: split_lead_key(key).0.to_owned(),
            partition,
            enrichment: None,
            scoring: None,
            review: None,
            version: 0,
            synced_version: 0,
            synced_at: None,
            last_delivery: None,
            crm_check_after: None,
        }
    }

    /// The lead's id within its project.
    pub fn lead_id(&self) -> &str {
        split_lead_key(&self.key).1
    }

    pub fn status(&self) -> Option<LeadStatus> {
        match (&self.review, &self.enrichment) {
            (Some(review), _) => Some(match review.decision {
                ReviewDecision::Verified => LeadStatus::Verified,
                ReviewDecision::Rejected => LeadStatus::Rejected,
            }),
            (None, Some(e)) => Some(match e.status {
                EnrichmentStatus::Verified => LeadStatus::Verified,
                EnrichmentStatus::ToCheck => LeadStatus::ToCheck,
            }),
            (None, None) => None,
        }
    }

    /// The newest of the lead's known instants: its newest scored event, its enrichment and its
    /// review. `None` for a view that holds none of them yet.
    pub fn last_activity_at(&self) -> Option<OffsetDateTime> {
        [
            self.scoring.as_ref().map(|s| s.last_event_at),
            self.enrichment.as_ref().map(|e| e.enriched_at),
            self.review.as_ref().map(|r| r.reviewed_at),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    pub fn crm_fields(&self) -> CrmFields {
        let e = self.enrichment.as_ref();
        CrmFields {
            name: e.map(|e| e.name.clone()),
            email: e.and_then(|e| e.email.clone()),
            company: e.and_then(|e| e.company.clone()),
            country_code: e.and_then(|e| e.country_code.clone()),
            country_name: e.and_then(|e| e.country_name.clone()),
            probability: e.and_then(|e| e.probability),
            status: self.status(),
            stage: self.scoring.as_ref().map(|s| s.stage),
        }
    }

    pub fn apply_enriched(&mut self, record: &LeadEnriched) -> Applied {
        if self.enrichment.as_ref().is_some_and(|e| e.enriched_at >= record.enriched_at) {
            return Applied::Ignored;
        }
        let next = Enrichment {
            name: record.name.clone(),
            email: record.email.clone(),
            company: record.company.clone(),
            country_code: record.country_code.clone(),
            country_name: record.country_name.clone(),
            probability: record.probability,
            status: record.status,
            reason: record.reason.clone(),
            enriched_at: record.enriched_at,
        };
        self.replace(|view| view.enrichment = Some(next))
    }

    pub fn apply_scored(&mut self, record: &LeadScored) -> Applied {
        let key = (record.lead_version.unwrap_or(0), record.processed_at);
        if self.scoring.as_ref().is_some_and(|s| (s.lead_version, s.processed_at) >= key) {
            return Applied::Ignored;
        }
        let next = Scoring {
            score: record.score,
            stage: record.stage,
            last_event_at: record.event_timestamp,
            lead_version: key.0,
            processed_at: record.processed_at,
            rules_version: record.rules_version.clone(),
            merged_into: record.merged_into.clone(),
        };
        self.replace(|view| view.scoring = Some(next))
    }

    pub fn apply_reviewed(&mut self, record: &LeadReviewed) -> Applied {
        if self.review.as_ref().is_some_and(|r| r.reviewed_at >= record.reviewed_at) {
            return Applied::Ignored;
        }
        let next = Review {
            decision: record.decision,
            reviewer: record.reviewer.clone(),
            note: record.note.clone(),
            reviewed_at: record.reviewed_at,
        };
        self.replace(|view| view.review = Some(next))
    }

    fn replace(&mut self, change: impl FnOnce(&mut LeadView)) -> Applied {
        let before = self.crm_fields();
        change(self);
        if self.crm_fields() == before {
            Applied::Updated
        } else {
            self.version += 1;
            Applied::Changed
        }
    }

    /// Leads the CRM should hold, whose current version it has not acknowledged: what reconcile
    /// re-delivers. The CRM should hold a Verified lead with a profile, and every lead it has
    /// held once: a lead rejected after it was synced keeps its contact current, so that the
    /// CRM shows it rejected rather than Verified forever.
    pub fn out_of_sync(&self) -> bool {
        self.belongs_in_crm() && self.version > self.synced_version
    }

    /// A Verified lead with a profile, or one the CRM already has.
    pub fn belongs_in_crm(&self) -> bool {
        (self.status() == Some(LeadStatus::Verified) && self.enrichment.is_some()) || self.synced_version > 0
    }

    /// Whether the CRM refused this very version (a 4xx): sending it again unchanged would only
    /// be refused again, so only reconcile, asked by a person, tries it again.
    pub fn refused_at_current_version(&self) -> bool {
        self.last_delivery
            .as_ref()
            .is_some_and(|d| d.status == DeliveryStatus::DeadLettered && d.version == self.version)
    }

    /// Verified leads go to the CRM, and again after each change it has not acknowledged.
    /// `To Check` leads wait for review, rejected ones are never sent.
    pub fn needs_delivery(&self) -> bool {
        self.out_of_sync() && !self.refused_at_current_version()
    }

    /// The key under which the CRM applies this version once, however often it is sent.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.key, self.version)
    }

    /// Records the CRM's answer for the current version.
    pub fn record_delivery(
        &mut self,
        destination: &str,
        status: DeliveryStatus,
        at: OffsetDateTime,
        trigger: RecordPosition,
        error: Option<String>,
    ) {
        if status == DeliveryStatus::Delivered {
            self.synced_version = self.version;
            self.synced_at = Some(at);
        }
        self.last_delivery = Some(DeliveryAttempt {
            version: self.version,
            destination: destination.to_owned(),
            status,
            at,
            trigger,
            error,
        });
    }

    /// The receipt of the last delivery attempt.
    pub fn receipt(&self) -> Option<CrmDelivery> {
        self.last_delivery.as_ref().map(|d| CrmDelivery {
            project_id: self.project_id.clone(),
            lead_id: self.lead_id().to_owned(),
            version: d.version,
            destination: d.destination.clone(),
            status: d.status,
            delivered_at: d.at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn enriched(status: EnrichmentStatus, probability: f64, at: OffsetDateTime) -> LeadEnriched {
        LeadEnriched {
            project_id: "default".into(),
            lead_id: "lead-1".into(),
            name: "Ada Lovelace".into(),
            email: Some("ada@example.com".into()),
            company: Some("Analytical Engines".into()),
            country_code: Some("GB".into()),
            country_name: Some("United Kingdom".into()),
            probability: Some(probability),
            status,
            reason: None,
            provider: "nationalize".into(),
            enriched_at: at,
        }
    }

    fn scored(version: u64, score: f64, stage: Stage, at: OffsetDateTime) -> LeadScored {
        LeadScored {
            project_id: "default".into(),
            lead_id: "lead-1".into(),
            event_id: format!("e{version}"),
            event_type: "page_view".into(),
            delta: 5.0,
            score,
            stage,
            previous_stage: None,
            event_timestamp: at,
            rules_version: "v1".into(),
            processed_at: at,
            late: false,
            reason: None,
            lead_version: Some(version),
            merged_into: None,
        }
    }

    const T0: OffsetDateTime = datetime!(2026-01-16 10:00 UTC);

    #[test]
    fn a_verified_lead_needs_delivery_until_its_version_is_synced() {
        let mut view = LeadView::new("lead-1", 0);
        assert_eq!(view.apply_enriched(&enriched(EnrichmentStatus::Verified, 0.8, T0)), Applied::Changed);
        assert!(view.needs_delivery());
        assert_eq!(view.idempotency_key(), "lead-1:1");
        view.synced_version = view.version;
        assert!(!view.needs_delivery());
    }

    #[test]
    fn the_record_closing_a_merged_lead_keeps_where_it_went() {
        let mut view = LeadView::new("lead-1", 0);
        view.apply_scored(&scored(1, 25.0, Stage::Warm, T0));
        let closing = LeadScored {
            score: 0.0,
            stage: Stage::Cold,
            merged_into: Some("user-42".into()),
            ..scored(2, 0.0, Stage::Cold, T0 + time::Duration::minutes(1))
        };

        view.apply_scored(&closing);

        let scoring = view.scoring.as_ref().unwrap();
        assert_eq!((scoring.score, scoring.merged_into.as_deref()), (0.0, Some("user-42")));
    }

    #[test]
    fn to_check_leads_wait() {
        let mut view = LeadView::new("lead-1", 0);
        view.apply_enriched(&enriched(EnrichmentStatus::ToCheck, 0.4, T0));
        view.apply_scored(&scored(1, 120.0, Stage::Qualified, T0));
        assert!(!view.needs_delivery());
    }

    #[test]
    fn a_stage_change_is_a_new_version_but_a_score_change_within_a_stage_is_not() {
        let mut view = LeadView::new("lead-1", 0);
        view.apply_enriched(&enriched(EnrichmentStatus::Verified, 0.8, T0));
        view.synced_version = view.version;
        assert_eq!(view.apply_scored(&scored(1, 5.0, Stage::Cold, T0)), Applied::Changed, "the first stage");
        view.synced_version = view.version;
        assert_eq!(view.apply_scored(&scored(2, 10.0, Stage::Cold, T0)), Applied::Updated);
        assert!(!view.needs_delivery());
        assert_eq!(view.apply_scored(&scored(3, 110.0, Stage::Qualified, T0)), Applied::Changed);
        assert!(view.needs_delivery(), "becoming qualified goes to the CRM");
    }

    #[test]
    fn replays_and_older_records_never_regress_the_view() {
        let mut view = LeadView::new("lead-1", 0);
        view.apply_scored(&scored(3, 75.0, Stage::Hot, T0));
        let newest = view.clone();
        assert_eq!(
            view.apply_scored(&scored(2, 25.0, Stage::Warm, T0)),
            Applied::Ignored,
            "a re-emitted older record"
        );
        assert_eq!(
            view.apply_scored(&scored(3, 75.0, Stage::Hot, T0)),
            Applied::Ignored,
            "the same record again"
        );
        assert_eq!(view, newest);
        let decayed = scored(3, 23.0, Stage::Warm, T0 + time::Duration::days(30));
        assert_eq!(view.apply_scored(&decayed), Applied::Changed, "a decay record keeps the version, later");

        view.apply_enriched(&enriched(EnrichmentStatus::Verified, 0.8, T0));
        let before = view.clone();
        assert_eq!(
            view.apply_enriched(&enriched(EnrichmentStatus::ToCheck, 0.3, T0 - time::Duration::hours(1))),
            Applied::Ignored
        );
        assert_eq!(view, before);
    }

    fn review(decision: ReviewDecision, at: OffsetDateTime) -> LeadReviewed {
        LeadReviewed {
            project_id: "default".into(),
            lead_id: "lead-1".into(),
            decision,
            reviewer: Some("grace@example.com".into()),
            note: None,
            reviewed_at: at,
        }
    }

    fn position(offset: i64) -> RecordPosition {
        RecordPosition { topic: "leads.enriched.v1".into(), partition: 0, offset }
    }

    #[test]
    fn a_review_overrides_the_enrichment_status_and_the_newest_review_wins() {
        let mut view = LeadView::new("lead-1", 0);
        view.apply_enriched(&enriched(EnrichmentStatus::ToCheck, 0.4, T0));
        assert!(!view.needs_delivery());
        assert_eq!(view.apply_reviewed(&review(ReviewDecision::Verified, T0)), Applied::Changed);
        assert_eq!(view.status(), Some(LeadStatus::Verified));
        assert!(view.needs_delivery(), "a person verified it");
        assert_eq!(
            view.apply_reviewed(&review(ReviewDecision::Rejected, T0 - time::Duration::minutes(1))),
            Applied::Ignored,
            "an older decision"
        );
        assert_eq!(
            view.apply_reviewed(&review(ReviewDecision::Rejected, T0 + time::Duration::minutes(1))),
            Applied::Changed
        );
        assert_eq!(view.status(), Some(LeadStatus::Rejected));
        assert!(!view.needs_delivery() && !view.out_of_sync(), "rejected leads are never sent");
        let mut synced = view.clone();
        synced.synced_version = 1;
        synced.version = 2;
        assert!(synced.needs_delivery(), "a lead the CRM has learns that it was rejected");
        view.apply_enriched(&enriched(EnrichmentStatus::Verified, 0.9, T0 + time::Duration::hours(1)));
        assert_eq!(
            view.status(),
            Some(LeadStatus::Rejected),
            "a later enrichment does not undo a person's decision"
        );
    }

    #[test]
    fn a_review_before_the_enrichment_waits_for_a_profile() {
        let mut view = LeadView::new("lead-1", 0);
        view.apply_reviewed(&review(ReviewDecision::Verified, T0));
        assert!(!view.needs_delivery(), "nothing to show the CRM yet");
        view.apply_enriched(&enriched(EnrichmentStatus::ToCheck, 0.2, T0));
        assert_eq!(view.status(), Some(LeadStatus::Verified));
        assert!(view.needs_delivery());
    }

    #[test]
    fn a_delivery_syncs_the_version_and_a_refusal_holds_it_until_the_lead_changes() {
        let mut view = LeadView::new("lead-1", 0);
        view.apply_enriched(&enriched(EnrichmentStatus::Verified, 0.8, T0));
        view.record_delivery("http", DeliveryStatus::DeadLettered, T0, position(7), Some("bad email".into()));
        assert!(view.out_of_sync(), "still not in the CRM");
        assert!(!view.needs_delivery(), "the same version would be refused again");
        assert_eq!(view.receipt().unwrap().status, DeliveryStatus::DeadLettered);

        view.apply_scored(&scored(1, 60.0, Stage::Hot, T0));
        assert!(view.needs_delivery(), "a new version is tried");
        view.record_delivery("http", DeliveryStatus::Delivered, T0, position(9), None);
        assert!(!view.out_of_sync());
        assert_eq!((view.synced_version, view.synced_at), (2, Some(T0)));
        let receipt = view.receipt().unwrap();
        assert_eq!((receipt.version, receipt.status), (2, DeliveryStatus::Delivered));
    }

    #[test]
    fn the_last_activity_is_the_newest_of_scoring_enrichment_and_review() {
        let mut view = LeadView::new("lead-1", 0);
        assert_eq!(view.last_activity_at(), None);
        view.apply_enriched(&enriched(EnrichmentStatus::ToCheck, 0.4, T0 + time::Duration::hours(2)));
        view.apply_scored(&scored(1, 5.0, Stage::Cold, T0));
        assert_eq!(view.last_activity_at(), Some(T0 + time::Duration::hours(2)));
        view.apply_reviewed(&review(ReviewDecision::Verified, T0 + time::Duration::hours(3)));
        assert_eq!(view.last_activity_at(), Some(T0 + time::Duration::hours(3)));
    }

    proptest! {
        /// Whatever the order the records arrive in, and however often, the view ends as it
        /// would from the newest of each kind.
        #[test]
        fn the_view_depends_on_the_newest_records_only(order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(), repeats in 1..3usize) {
            let stages = [Stage::Cold, Stage::Cold, Stage::Warm, Stage::Warm, Stage::Hot, Stage::Qualified];
            let records: Vec<LeadScored> = (0..6).map(|i| scored(i as u64 + 1, 10.0 * (i as f64 + 1.0), stages[i], T0)).collect();
            let mut view = LeadView::new("lead-1", 0);
            for _ in 0..repeats {
                for i in &order {
                    view.apply_scored(&records[*i]);
                }
            }
            let scoring = view.scoring.clone().unwrap();
            prop_assert_eq!(scoring.lead_version, 6);
            prop_assert_eq!(scoring.stage, Stage::Qualified);
        }
    }
}
