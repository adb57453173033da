//! Lead scoring state in MongoDB: one document per lead (`lead_scores`: its score, its bounded
//! scoring state, a version for optimistic concurrency) and one audit entry per applied event
//! (`score_history`: the LeadScored record it produced, unique on `(leadId, eventId)`, which
//! also answers whether an event was applied). A batch's changes are written in one MongoDB
//! transaction, so that a lead's state and its history can never disagree, and an event can be
//! applied at most once, ever.

use std::collections::{BTreeMap, HashMap};

use futures::TryStreamExt;
use leadflow_core::contract::records::Stage;
use leadflow_core::store::documents::{LEAD_SCORES, SCORE_HISTORY};
use mongodb::bson::{self, Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Database, IndexModel};
use time::OffsetDateTime;

/// The documents, declared with their readers in `leadflow_core::store::documents`.
pub use leadflow_core::store::documents::{AppliedEvent, HistoryDoc, LeadDoc};
use leadflow_core::store::mongo::BatchCommit;
pub use leadflow_core::store::mongo::StoreError;

#[derive(Clone)]
pub struct LeadStore {
    client: Client,
    database: Database,
    leads: Collection<LeadDoc>,
    history: Collection<HistoryDoc>,
}

impl LeadStore {
    pub fn new(client: Client, database: &str) -> Self {
        let database = client.database(database);
        LeadStore {
            leads: database.collection(LEAD_SCORES),
            history: database.collection(SCORE_HISTORY),
            database,
            client,
        }
    }

    pub async fn ensure_indexes(&self) -> mongodb::error::Result<()> {
        let unique = IndexModel::builder()
            .keys(doc! { "leadId": 1, "eventId": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build();
        self.history.create_index(unique).await?;
        // A lead's history in time order and its recent events (the read API's velocity).
        self.history.create_index(IndexModel::builder().keys(doc! { "leadId": 1, "ts": 1 }).build()).await?;
        // A lead's newest entries in processing order: what a merge moves.
        self.history.create_index(IndexModel::builder().keys(doc! { "leadId": 1, "seq": 1 }).build()).await?;
        self.leads.create_index(IndexModel::builder().keys(doc! { "partition": 1 }).build()).await?;
        Ok(())
    }

    /// The state of each lead of `lead_keys` (`contract::project::lead_key`) that has one.
    pub async fn load(&self, lead_keys: &[String]) -> mongodb::error::Result<HashMap<String, LeadDoc>> {
        let found: Vec<LeadDoc> =
            self.leads.find(doc! { "_id": { "$in": lead_keys } }).await?.try_collect().await?;
        Ok(found.into_iter().map(|d| (d.key.clone(), d)).collect())
    }

    pub async fn lead(&self, lead_key: &str) -> mongodb::error::Result<Option<LeadDoc>> {
        self.leads.find_one(doc! { "_id": lead_key }).await
    }

    /// The entries of the events of `wanted` (lead key → its batch's eventIds) that are already
    /// applied: usually none; for a repeat, the record to emit again. One query, each lead's
    /// eventIds matched within that lead only.
    pub async fn applied(
        &self,
        wanted: &BTreeMap<String, Vec<String>>,
    ) -> mongodb::error::Result<HashMap<(String, String), HistoryDoc>> {
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let per_lead: Vec<Document> = wanted
            .iter()
            .map(|(lead_key, event_ids)| doc! { "leadId": lead_key, "eventId": { "$in": event_ids } })
            .collect();
        let found: Vec<HistoryDoc> = self.history.find(doc! { "$or": per_lead }).await?.try_collect().await?;
        Ok(found.into_iter().map(|h| ((h.lead_key.clone(), h.event_id.clone()), h)).collect())
    }

    /// A lead's audit trail in processing order.
    pub async fn history(&self, lead_key: &str) -> mongodb::error::Result<Vec<HistoryDoc>> {
        let mut found: Vec<HistoryDoc> =
            self.history.find(doc! { "leadId": lead_key }).await?.try_collect().await?;
        found.sort_by_key(|h| h.seq);
        Ok(found)
    }

    /// A lead's `limit` newest history entries (by processing order), oldest first: what a merge
    /// moves, read with a bound however long the history.
    pub async fn newest_history(
        &self,
        lead_key: &str,
        limit: usize,
    ) -> mongodb::error::Result<Vec<HistoryDoc>> {
        let mut found: Vec<HistoryDoc> = self
            .history
            .find(doc! { "leadId": lead_key })
            .sort(doc! { "seq": -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await?
            .try_collect()
            .await?;
        found.reverse();
        Ok(found)
    }

    /// Writes a batch's history entries and lead documents in one transaction. `leads` holds
    /// each changed lead with the version it was read at (0 for a new lead).
    pub async fn save(&self, history: Vec<HistoryDoc>, leads: Vec<(LeadDoc, u64)>) -> Result<(), StoreError> {
        BatchCommit::default()
            .insert(SCORE_HISTORY, &history)
            .replace_versioned(
                LEAD_SCORES,
                leads.into_iter().map(|(lead, read)| (lead.key.clone(), lead, read)),
            )
            .commit(&self.client, &self.database)
            .await
    }

    /// Leads on `partitions` whose newest event is older than `before`, and whose stage is
    /// above cold: the ones decay may have moved down. Compared as instants (`asOfMs`): as
    /// RFC 3339 text, `asOf` with an offset other than `Z` would sort wrongly. A document written
    /// before `asOfMs` was kept is judged by its parsed `asOf`.
    pub async fn decay_candidates(
        &self,
        partitions: &[i32],
        before: OffsetDateTime,
    ) -> mongodb::error::Result<Vec<LeadDoc>> {
        let before_ms = (before.unix_timestamp_nanos() / 1_000_000) as i64;
        let filter = doc! {
            "partition": { "$in": partitions },
            "stage": { "$ne": "cold" },
            "$or": [ { "asOfMs": { "$gt": 0i64, "$lt": before_ms } }, { "asOfMs": { "$exists": false } } ],
        };
        let found: Vec<LeadDoc> = self.leads.find(filter).await?.try_collect().await?;
        Ok(found.into_iter().filter(|lead| lead.as_of_time().is_some_and(|at| at < before)).collect())
    }

    /// Records the stage the decay pass announced, if the lead did not change meanwhile.
    pub async fn mark_decayed(&self, lead: &LeadDoc, stage: Stage) -> mongodb::error::Result<bool> {
        let stage = bson::to_bson(&stage).expect("a stage serialises");
        let result = self
            .leads
            .update_one(
                doc! { "_id": &lead.key, "version": lead.version as i64 },
                doc! { "$set": { "decayedStage": stage } },
            )
            .await?;
        Ok(result.matched_count == 1)
    }
}
