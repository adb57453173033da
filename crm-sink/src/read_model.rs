//! The lead read model, pure: how enriched and scored records fold into one view of a lead, and
//! when the CRM must hear about it. Every record may arrive twice (a redelivery, a re-emitted
//! stored record) or after a newer one (a replay); neither may move the view backwards.
//!
//! - An enrichment is newer when its `enrichedAt` is later.
//! - A score is newer when its `(leadVersion, processedAt)` is greater: `leadVersion` grows with
//!   every event the scorer applies, and a decay record keeps its state's version with a later
//!   `processedAt`.
//! - `version` counts changes to what the CRM sees (profile, country, probability, status,
//!   stage), not every score change, so the CRM hears of a lead when something it shows changes.

use leadflow_core::records::{EnrichmentStatus, LeadEnriched, LeadScored, Stage};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrichment {
    pub name: String,
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
}

/// What the CRM shows of a lead: a change here is a new version to deliver.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmFields {
    pub name: Option<String>,
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub probability: Option<f64>,
    pub status: Option<EnrichmentStatus>,
    pub stage: Option<Stage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadView {
    #[serde(rename = "_id")]
    pub lead_id: String,
    pub enrichment: Option<Enrichment>,
    pub scoring: Option<Scoring>,
    /// Changes to the CRM-visible fields so far.
    pub version: u64,
    /// The version the CRM last acknowledged.
    pub synced_version: u64,
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

impl LeadView {
    pub fn new(lead_id: &str) -> Self {
        LeadView {
            lead_id: lead_id.to_owned(),
            enrichment: None,
            scoring: None,
            version: 0,
            synced_version: 0,
        }
    }

    pub fn crm_fields(&self) -> CrmFields {
        let e = self.enrichment.as_ref();
        CrmFields {
            name: e.map(|e| e.name.clone()),
            country_code: e.and_then(|e| e.country_code.clone()),
            country_name: e.and_then(|e| e.country_name.clone()),
            probability: e.and_then(|e| e.probability),
            status: e.map(|e| e.status),
            stage: self.scoring.as_ref().map(|s| s.stage),
        }
    }

    pub fn apply_enriched(&mut self, record: &LeadEnriched) -> Applied {
        if self.enrichment.as_ref().is_some_and(|e| e.enriched_at >= record.enriched_at) {
            return Applied::Ignored;
        }
        let next = Enrichment {
            name: record.name.clone(),
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
        };
        self.replace(|view| view.scoring = Some(next))
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

    /// Verified leads go to the CRM, and again after each change it has not acknowledged.
    /// `To Check` leads wait for review.
    pub fn needs_delivery(&self) -> bool {
        let verified = self.enrichment.as_ref().is_some_and(|e| e.status == EnrichmentStatus::Verified);
        verified && self.version > self.synced_version
    }

    /// The key under which the CRM applies this version once, however often it is sent.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.lead_id, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn enriched(status: EnrichmentStatus, probability: f64, at: OffsetDateTime) -> LeadEnriched {
        LeadEnriched {
            lead_id: "lead-1".into(),
            name: "Ada Lovelace".into(),
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
        }
    }

    const T0: OffsetDateTime = datetime!(2026-01-16 10:00 UTC);

    #[test]
    fn a_verified_lead_needs_delivery_until_its_version_is_synced() {
        let mut view = LeadView::new("lead-1");
        assert_eq!(view.apply_enriched(&enriched(EnrichmentStatus::Verified, 0.8, T0)), Applied::Changed);
        assert!(view.needs_delivery());
        assert_eq!(view.idempotency_key(), "lead-1:1");
        view.synced_version = view.version;
        assert!(!view.needs_delivery());
    }

    #[test]
    fn to_check_leads_wait() {
        let mut view = LeadView::new("lead-1");
        view.apply_enriched(&enriched(EnrichmentStatus::ToCheck, 0.4, T0));
        view.apply_scored(&scored(1, 120.0, Stage::Qualified, T0));
        assert!(!view.needs_delivery());
    }

    #[test]
    fn a_stage_change_is_a_new_version_but_a_score_change_within_a_stage_is_not() {
        let mut view = LeadView::new("lead-1");
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
        let mut view = LeadView::new("lead-1");
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

    proptest! {
        /// Whatever the order the records arrive in, and however often, the view ends as it
        /// would from the newest of each kind.
        #[test]
        fn the_view_depends_on_the_newest_records_only(order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(), repeats in 1..3usize) {
            let stages = [Stage::Cold, Stage::Cold, Stage::Warm, Stage::Warm, Stage::Hot, Stage::Qualified];
            let records: Vec<LeadScored> = (0..6).map(|i| scored(i as u64 + 1, 10.0 * (i as f64 + 1.0), stages[i], T0)).collect();
            let mut view = LeadView::new("lead-1");
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
