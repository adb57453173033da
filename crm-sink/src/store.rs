//! The lead read model in MongoDB: collection `leads`, one document per lead, the [`LeadView`]
//! plus a `revision` for optimistic concurrency and two flags kept in step with the view so
//! that reconcile and the out-of-sync gauge are index lookups (`outOfSync`, `refused`).
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

use crate::read_model::LeadView;

pub const LEADS: &str = "leads";
const DUPLICATE_KEY: i32 = 11000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LeadDoc {
    #[serde(flatten)]
    view: LeadView,
    revision: u64,
    #[serde(rename = "outOfSync")]
    out_of_sync: bool,
    /// The CRM refused the current version.
    refused: bool,
}

/// A lead as read, with the revision its write must match.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLead {
    pub view: LeadView,
    pub revision: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed a lead since it was read: re-read and redo the batch.
    #[error("a lead changed under this batch: {0}")]
    Conflict(String),
    #[error(transparent)]
    Mongo(#[from] mongodb::error::Error),
}

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
        for keys in [doc! { "partition": 1 }, doc! { "outOfSync": 1 }] {
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
                let document = LeadDoc {
                    out_of_sync: view.out_of_sync(),
                    refused: view.refused_at_current_version(),
                    view,
                    revision: read_revision + 1,
                };
                let replacement = bson::to_document(&document).expect("a lead serialises to BSON");
                doc! {
                    "q": { "_id": lead_id, "revision": read_revision as i64 },
                    "u": replacement,
                    "upsert": read_revision == 0,
                }
            })
            .collect();
        let expected = updates.len() as i64;
        let reply = self
            .database
            .run_command(doc! { "update": LEADS, "updates": updates, "ordered": false })
            .await
            .map_err(classify)?;
        let matched = reply.get_i32("n").map(i64::from).or_else(|_| reply.get_i64("n")).unwrap_or(-1);
        let write_errors = reply.get_array("writeErrors").map(|a| a.len()).unwrap_or(0);
        if matched != expected || write_errors > 0 {
            return Err(StoreError::Conflict(format!(
                "{matched} of {expected} leads matched their revision, {write_errors} write errors"
            )));
        }
        Ok(())
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

fn classify(error: mongodb::error::Error) -> StoreError {
    let duplicate = match error.kind.as_ref() {
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) => {
            e.code == DUPLICATE_KEY
        }
        mongodb::error::ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => false,
    };
    if duplicate { StoreError::Conflict(error.to_string()) } else { StoreError::Mongo(error) }
}
