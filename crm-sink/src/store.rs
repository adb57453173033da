//! The lead read model in MongoDB: collection `leads`, one document per lead, the [`LeadView`]
//! plus a `revision` for optimistic concurrency and two flags kept in step with the view so
//! that reconcile and the out-of-sync gauge are index lookups (`outOfSync`, `refused`).
//!
//! Each write also stores fields derived from the view for the gateway's read API, which
//! filters and sorts on them: `status` (the effective status: a review's decision, else the
//! enrichment's), `score` (the scored score, 0 when unscored), `lastActivityMs` (the newest of
//! the last event, the enrichment and the review, as epoch milliseconds: RFC 3339 text does not
//! sort by instant) and `nameLower` (the lower-cased name, for case-insensitive search). They are
//! recomputed from the view on every write, never read back into it.
//!
//! Writes are conditional on the revision the batch read, so two writers of one lead (a zombie
//! instance and the partition's new owner) cannot overwrite each other: the loser re-reads and
//! redoes its batch. The view itself never regresses (see [`crate::read_model`]), so redoing is
//! harmless.

use std::collections::HashMap;

use futures::TryStreamExt;
use mongodb::bson::{self, Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::read_model::{LeadStatus, LeadView};

pub const LEADS: &str = "leads";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LeadDoc {
    #[serde(flatten)]
    view: LeadView,
    revision: u64,
    #[serde(rename = "outOfSync")]
    out_of_sync: bool,
    /// The CRM refused the current version.
    refused: bool,
    /// Derived from the view for the read API (see the module doc). Defaulted when reading a
    /// document written before they existed; the next write of the lead stores them.
    #[serde(default)]
    status: Option<LeadStatus>,
    #[serde(default)]
    score: f64,
    #[serde(rename = "lastActivityMs", default)]
    last_activity_ms: i64,
    #[serde(rename = "nameLower", default)]
    name_lower: Option<String>,
}

impl LeadDoc {
    fn from_view(view: LeadView, revision: u64) -> Self {
        LeadDoc {
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

/// A lead as read, with the revision its write must match.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLead {
    pub view: LeadView,
    pub revision: u64,
}

pub use leadflow_core::store::mongo::StoreError;

#[derive(Clone)]
pub struct LeadStore {
    database: Database,
    leads: Collection<LeadDoc>,
}

impl LeadStore {
    pub fn new(client: Client, database: &str) -> Self {
        let database = client.database(database);
        LeadStore { leads: database.collection(LEADS), database }
    }

    pub async fn ensure_indexes(&self) -> mongodb::error::Result<()> {
        // The read API's filters and its two keyset orders (see the module doc).
        let read_api = [
            doc! { "score": -1, "_id": 1 },
            doc! { "lastActivityMs": -1, "_id": 1 },
            doc! { "status": 1, "lastActivityMs": -1, "_id": 1 },
            doc! { "scoring.stage": 1, "lastActivityMs": -1, "_id": 1 },
            doc! { "nameLower": 1 },
        ];
        for keys in [doc! { "partition": 1 }, doc! { "outOfSync": 1 }].into_iter().chain(read_api) {
            self.leads
                .create_index(IndexModel::builder().keys(keys).options(IndexOptions::default()).build())
                .await?;
        }
        Ok(())
    }

    pub async fn load(&self, lead_ids: &[String]) -> mongodb::error::Result<HashMap<String, StoredLead>> {
        let found: Vec<LeadDoc> =
            self.leads.find(doc! { "_id": { "$in": lead_ids } }).await?.try_collect().await?;
        Ok(found
            .into_iter()
            .map(|d| (d.view.lead_id.clone(), StoredLead { view: d.view, revision: d.revision }))
            .collect())
    }

    pub async fn lead(&self, lead_id: &str) -> mongodb::error::Result<Option<LeadView>> {
        Ok(self.leads.find_one(doc! { "_id": lead_id }).await?.map(|d| d.view))
    }

    /// Writes changed leads in one `update` command, each conditional on the revision it was
    /// read at (0: not stored yet).
    pub async fn save(&self, changed: Vec<(LeadView, u64)>) -> Result<(), StoreError> {
        if changed.is_empty() {
            return Ok(());
        }
        let updates: Vec<Document> = changed
            .into_iter()
            .map(|(view, read_revision)| {
                let lead_id = view.lead_id.clone();
                let document = LeadDoc::from_view(view, read_revision + 1);
                let replacement = bson::to_document(&document).expect("a lead serialises to BSON");
                doc! {
                    "q": { "_id": lead_id, "revision": read_revision as i64 },
                    "u": replacement,
                    "upsert": read_revision == 0,
                }
            })
            .collect();
        let expected = updates.len();
        let reply = self
            .database
            .run_command(doc! { "update": LEADS, "updates": updates, "ordered": false })
            .await
            .map_err(StoreError::classify)?;
        leadflow_core::store::mongo::expect_all_matched(&reply, expected, "revision")
    }

    /// Leads the CRM lacks the current version of, as `(leadId, version)`: on `partitions`
    /// (all when `None`), and with or without those it refused at that version.
    pub async fn out_of_sync(
        &self,
        partitions: Option<&[i32]>,
        include_refused: bool,
    ) -> mongodb::error::Result<Vec<(String, u64)>> {
        let mut filter = doc! { "outOfSync": true };
        if let Some(partitions) = partitions {
            filter.insert("partition", doc! { "$in": partitions });
        }
        if !include_refused {
            filter.insert("refused", false);
        }
        let found: Vec<LeadDoc> = self.leads.find(filter).await?.try_collect().await?;
        Ok(found.into_iter().map(|d| (d.view.lead_id, d.view.version)).collect())
    }

    pub async fn count_out_of_sync(&self) -> mongodb::error::Result<u64> {
        self.leads.count_documents(doc! { "outOfSync": true }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::contract::records::{EnrichmentStatus, LeadEnriched, LeadReviewed, ReviewDecision};
    use time::macros::datetime;

    #[test]
    fn the_derived_fields_follow_the_view() {
        let mut view = LeadView::new("lead-1", 0);
        let bare = bson::to_document(&LeadDoc::from_view(view.clone(), 1)).unwrap();
        assert_eq!(bare.get_f64("score").unwrap(), 0.0);
        assert_eq!(bare.get_i64("lastActivityMs").unwrap(), 0);
        assert!(bare.get("status").unwrap().as_null().is_some());

        view.apply_enriched(&LeadEnriched {
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
        let enriched = bson::to_document(&LeadDoc::from_view(view.clone(), 2)).unwrap();
        assert_eq!(enriched.get_str("status").unwrap(), "To Check");
        assert_eq!(enriched.get_str("nameLower").unwrap(), "ada élan");
        assert_eq!(
            enriched.get_i64("lastActivityMs").unwrap(),
            datetime!(2026-01-16 10:00:00.123 UTC).unix_timestamp() * 1000 + 123
        );

        view.apply_reviewed(&LeadReviewed {
            lead_id: "lead-1".into(),
            decision: ReviewDecision::Rejected,
            reviewer: None,
            note: None,
            reviewed_at: datetime!(2026-01-17 10:00 UTC),
        });
        let reviewed = LeadDoc::from_view(view, 3);
        let document = bson::to_document(&reviewed).unwrap();
        assert_eq!(document.get_str("status").unwrap(), "Rejected", "a review overrides the enrichment");
        assert_eq!(
            document.get_i64("lastActivityMs").unwrap(),
            datetime!(2026-01-17 10:00 UTC).unix_timestamp() * 1000
        );
        let back: LeadDoc = bson::from_document(document).unwrap();
        assert_eq!(back, reviewed, "the derived fields read back");
    }

    #[test]
    fn a_document_written_before_the_derived_fields_still_reads() {
        let mut document = bson::to_document(&LeadDoc::from_view(LeadView::new("lead-1", 2), 4)).unwrap();
        for field in ["status", "score", "lastActivityMs", "nameLower"] {
            document.remove(field);
        }
        let read: LeadDoc = bson::from_document(document).unwrap();
        assert_eq!((read.revision, read.view.partition), (4, 2));
    }
}
