//! The lead read model in MongoDB: collection `leads`, one document per lead, the [`LeadView`]
//! plus a `revision` for optimistic concurrency and two flags kept in step with the view so
//! that reconcile and the out-of-sync gauge are index lookups (`outOfSync`, `refused`).
//!
//! Each write also stores fields derived from the view for the gateway's read API (`status`,
//! `score`, `lastActivityMs`, `nameLower`): the document's shape, [`LeadViewDoc`], is declared
//! with its readers in `leadflow_core::store::documents`.
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

use crate::read_model::LeadView;

/// The document, declared with its readers in `leadflow_core::store::documents`.
pub use leadflow_core::store::documents::{LEADS, LeadViewDoc};

/// A lead as read, with the revision its write must match.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLead {
    pub view: LeadView,
    pub revision: u64,
}

pub use leadflow_core::store::mongo::StoreError;

/// A lead whose CRM copy lags the read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfSync {
    /// The lead key (`contract::project::lead_key`).
    pub key: String,
    pub project_id: String,
    /// The version the CRM lacks.
    pub version: u64,
}

#[derive(Clone)]
pub struct LeadStore {
    database: Database,
    leads: Collection<LeadViewDoc>,
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
        // `checkCrmAtMs`: the contacts due for a read back (see `crate::reconcile`).
        let own = [doc! { "partition": 1 }, doc! { "outOfSync": 1 }, doc! { "checkCrmAtMs": 1 }];
        for keys in own.into_iter().chain(read_api) {
            self.leads
                .create_index(IndexModel::builder().keys(keys).options(IndexOptions::default()).build())
                .await?;
        }
        Ok(())
    }

    /// The stored leads among `keys` (lead keys: `contract::project::lead_key`), by key.
    pub async fn load(&self, keys: &[String]) -> mongodb::error::Result<HashMap<String, StoredLead>> {
        let found: Vec<LeadViewDoc> =
            self.leads.find(doc! { "_id": { "$in": keys } }).await?.try_collect().await?;
        Ok(found
            .into_iter()
            .map(|d| (d.view.key.clone(), StoredLead { view: d.view, revision: d.revision }))
            .collect())
    }

    /// The lead whose key is `key`.
    pub async fn lead(&self, key: &str) -> mongodb::error::Result<Option<LeadView>> {
        Ok(self.leads.find_one(doc! { "_id": key }).await?.map(|d| d.view))
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
                let key = view.key.clone();
                let document = LeadViewDoc::from_view(view, read_revision + 1);
                let replacement = bson::to_document(&document).expect("a lead serialises to BSON");
                doc! {
                    "q": { "_id": key, "revision": read_revision as i64 },
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

    /// Leads the CRM lacks the current version of: on `partitions` (all when `None`), and with
    /// or without those it refused at that version.
    pub async fn out_of_sync(
        &self,
        partitions: Option<&[i32]>,
        include_refused: bool,
    ) -> mongodb::error::Result<Vec<OutOfSync>> {
        let mut filter = doc! { "outOfSync": true };
        if let Some(partitions) = partitions {
            filter.insert("partition", doc! { "$in": partitions });
        }
        if !include_refused {
            filter.insert("refused", false);
        }
        let found: Vec<LeadViewDoc> = self.leads.find(filter).await?.try_collect().await?;
        Ok(found
            .into_iter()
            .map(|d| OutOfSync { key: d.view.key, project_id: d.view.project_id, version: d.view.version })
            .collect())
    }

    pub async fn count_out_of_sync(&self) -> mongodb::error::Result<u64> {
        self.leads.count_documents(doc! { "outOfSync": true }).await
    }

    /// Leads on `partitions` whose CRM copy is due for a read back at `now_ms` (epoch ms), at
    /// most `limit`, the longest-waiting first.
    pub async fn due_checks(
        &self,
        partitions: &[i32],
        now_ms: i64,
        limit: i64,
    ) -> mongodb::error::Result<Vec<StoredLead>> {
        let filter =
            doc! { "checkCrmAtMs": { "$gt": 0, "$lte": now_ms }, "partition": { "$in": partitions } };
        let found: Vec<LeadViewDoc> = self
            .leads
            .find(filter)
            .sort(doc! { "checkCrmAtMs": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        Ok(found.into_iter().map(|d| StoredLead { view: d.view, revision: d.revision }).collect())
    }

    /// Clears a lead's read back if the lead has not changed since `revision`; a lead that did
    /// keeps it, and the next pass reads it again.
    pub async fn clear_check(&self, key: &str, revision: u64) -> mongodb::error::Result<bool> {
        let reply = self
            .leads
            .update_one(
                doc! { "_id": key, "revision": revision as i64 },
                doc! { "$set": { "checkCrmAtMs": 0i64 }, "$unset": { "crmCheckAfter": "" } },
            )
            .await?;
        Ok(reply.modified_count == 1)
    }

    /// One page of the leads the CRM should hold (see `LeadView::belongs_in_crm`), on
    /// `partitions` (all when `None`), in key order after `after`: how reconcile walks a large
    /// read model without loading it.
    pub async fn page_for_crm(
        &self,
        partitions: Option<&[i32]>,
        after: Option<&str>,
        limit: i64,
    ) -> mongodb::error::Result<Vec<StoredLead>> {
        let mut filter = doc! { "$or": [ { "status": "Verified", "enrichment": { "$ne": null } }, { "syncedVersion": { "$gt": 0 } } ] };
        if let Some(partitions) = partitions {
            filter.insert("partition", doc! { "$in": partitions });
        }
        if let Some(after) = after {
            filter.insert("_id", doc! { "$gt": after });
        }
        let found: Vec<LeadViewDoc> =
            self.leads.find(filter).sort(doc! { "_id": 1 }).limit(limit).await?.try_collect().await?;
        Ok(found
            .into_iter()
            .map(|d| StoredLead { view: d.view, revision: d.revision })
            .filter(|l| l.view.belongs_in_crm())
            .collect())
    }
}
