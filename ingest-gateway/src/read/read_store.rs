//! Every MongoDB query of the read API, in one place. The gateway only reads: `leads` is the
//! crm-sink's read model (a `LeadView` plus the derived fields `status`, `score`,
//! `lastActivityMs` and `nameLower` it stores for these queries); `lead_scores` is the scorer's
//! state of each lead (its score as of its newest event); `score_history` is the scorer's
//! append-only record of every applied event (a lead's history and velocity). All are read as the
//! documents their writers store, declared once in `leadflow_core::store::documents`;
//! [`StoredLead`] and [`ScoreState`] are the parts of them the handlers use.
//!
//! MongoDB is not a readiness dependency of the gateway: writes (events, leads, reviews, rules)
//! go to Kafka and must stay available while MongoDB is down. A read that cannot reach MongoDB
//! answers 503 with `Retry-After` instead.

use std::collections::{BTreeMap, HashMap};

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::{Client, Collection};

use leadflow_core::contract::project::{is_default_project, lead_key};
use leadflow_core::contract::records::Stage;
use leadflow_core::model::read_model::LeadView;
use leadflow_core::store::documents::{HistoryDoc, LEAD_SCORES, LEADS, LeadDoc, LeadViewDoc, SCORE_HISTORY};
use time::OffsetDateTime;

use crate::read::intelligence::VELOCITY_WINDOW;
use crate::read::ranking::{Ranked, RankedPage};
use crate::read::read_query::{Cursor, ListQuery, SortOrder, stage_name};

/// The fewest leads a ranking walk reads at a time: a page of ten costs one read of this many
/// when few leads decayed past it.
const RANK_READ_MIN: usize = 50;

/// A lead of the read model: its view and the sort keys the crm-sink stored with it.
#[derive(Debug, Clone)]
pub struct StoredLead {
    pub view: LeadView,
    pub score: f64,
    pub last_activity_ms: i64,
}

impl From<LeadViewDoc> for StoredLead {
    fn from(document: LeadViewDoc) -> Self {
        StoredLead { view: document.view, score: document.score, last_activity_ms: document.last_activity_ms }
    }
}

impl StoredLead {
    /// The cursor that continues after this lead, in either sort order.
    pub fn cursor(&self) -> Cursor {
        Cursor::after(self.score, self.last_activity_ms, self.view.lead_id())
    }
}

/// The scorer's state of a lead, the part the read API uses: its score as of its newest event.
#[derive(Debug, Clone)]
pub struct ScoreState {
    pub score: f64,
    pub stage: Stage,
    /// The newest event's timestamp; `None` if the document has none readable.
    pub as_of: Option<OffsetDateTime>,
    /// Applied events so far.
    pub version: u64,
}

impl From<LeadDoc> for ScoreState {
    fn from(document: LeadDoc) -> Self {
        ScoreState {
            as_of: document.as_of_time(),
            score: document.score,
            stage: document.stage,
            version: document.version,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// MongoDB did not answer (down, unreachable, timed out): worth a retry.
    #[error("the read model is unavailable: {0}")]
    Unavailable(String),
    /// A stored document does not have the shape this gateway reads: not worth a retry.
    #[error("a stored document cannot be read: {0}")]
    Corrupt(String),
}

impl From<mongodb::error::Error> for ReadError {
    fn from(error: mongodb::error::Error) -> Self {
        match *error.kind {
            mongodb::error::ErrorKind::BsonDeserialization(_) => ReadError::Corrupt(error.to_string()),
            _ => ReadError::Unavailable(error.to_string()),
        }
    }
}

/// Counts of leads by stage, every stage present.
pub type StageCounts = BTreeMap<&'static str, u64>;

#[derive(Clone)]
pub struct ReadStore {
    leads: Collection<LeadViewDoc>,
    scores: Collection<LeadDoc>,
    history: Collection<HistoryDoc>,
}

impl ReadStore {
    /// Creating the store connects to nothing; each query does, and fails within the client's
    /// server-selection timeout when MongoDB is away.
    pub fn new(client: Client, database: &str) -> Self {
        let database = client.database(database);
        ReadStore {
            leads: database.collection(LEADS),
            scores: database.collection(LEAD_SCORES),
            history: database.collection(SCORE_HISTORY),
        }
    }

    /// A store whose MongoDB never answers (nothing listens on port 1) and whose queries fail
    /// fast as unavailable: for handler tests, which must answer a bad request before any query.
    #[cfg(test)]
    pub fn unreachable() -> Self {
        let options = mongodb::options::ClientOptions::builder()
            .hosts(vec![mongodb::options::ServerAddress::Tcp { host: "127.0.0.1".into(), port: Some(1) }])
            .server_selection_timeout(std::time::Duration::from_millis(50))
            .connect_timeout(std::time::Duration::from_millis(50))
            .build();
        Self::new(Client::with_options(options).expect("a client from fixed options"), "unreachable")
    }

    /// One page of the project's leads: at most `query.limit + 1`, so the caller knows whether
    /// more follow.
    pub async fn list(&self, project: &str, query: &ListQuery) -> Result<Vec<StoredLead>, ReadError> {
        let found: Vec<LeadViewDoc> = self
            .leads
            .find(list_filter(project, query))
            .sort(sort_keys(query.sort))
            .limit(i64::from(query.limit) + 1)
            .await?
            .try_collect()
            .await?;
        Ok(found.into_iter().map(StoredLead::from).collect())
    }

    /// The project's lead: found by its lead key, which names the project, so another project's
    /// lead of the same id is never found.
    pub async fn lead(&self, project: &str, lead_id: &str) -> Result<Option<StoredLead>, ReadError> {
        let key = lead_key(project, lead_id);
        Ok(self.leads.find_one(doc! { "_id": key.as_ref() }).await?.map(StoredLead::from))
    }

    pub async fn score_state(&self, project: &str, lead_id: &str) -> Result<Option<ScoreState>, ReadError> {
        let key = lead_key(project, lead_id);
        // The events of a version 1 document and the tail are the scorer's business, not read.
        let found = self
            .scores
            .find_one(doc! { "_id": key.as_ref() })
            .projection(doc! { "events": 0, "tail": 0, "base": 0 });
        Ok(found.await?.map(ScoreState::from))
    }

    /// Every applied event of the project's lead, as the scorer recorded it, oldest event first
    /// (entries written before `ts` was kept come first, in no particular order: the caller
    /// orders by the record's timestamp).
    pub async fn history(&self, project: &str, lead_id: &str) -> Result<Vec<HistoryDoc>, ReadError> {
        let key = lead_key(project, lead_id);
        let found = self.history.find(doc! { "leadId": key.as_ref() }).sort(doc! { "ts": 1 });
        Ok(found.await?.try_collect().await?)
    }

    /// How many of the project's lead's applied events are stamped less than
    /// [`VELOCITY_WINDOW`] before `now`: a count on the `(leadId, ts)` index. Entries written
    /// before `ts` was kept are read and judged by their record's timestamp.
    pub async fn velocity(
        &self,
        project: &str,
        lead_id: &str,
        now: OffsetDateTime,
    ) -> Result<usize, ReadError> {
        let key = lead_key(project, lead_id);
        let since = now - VELOCITY_WINDOW;
        let recent = self
            .history
            .count_documents(doc! { "leadId": key.as_ref(), "ts": { "$gt": HistoryDoc::ts_of(since) } });
        let without_ts = async {
            let found: Vec<HistoryDoc> = self
                .history
                .find(doc! { "leadId": key.as_ref(), "ts": { "$exists": false } })
                .await?
                .try_collect()
                .await?;
            Ok::<_, mongodb::error::Error>(found.iter().filter(|h| h.record.event_timestamp > since).count())
        };
        let (recent, older_entries) = tokio::try_join!(recent, without_ts)?;
        Ok(recent as usize + older_entries)
    }

    /// The scorer's state of each of `keys` (lead keys) that it has, by key: one query.
    pub async fn score_states(&self, keys: &[String]) -> Result<HashMap<String, ScoreState>, ReadError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let found: Vec<LeadDoc> = self
            .scores
            .find(doc! { "_id": { "$in": keys } })
            .projection(doc! { "events": 0, "tail": 0, "base": 0 })
            .await?
            .try_collect()
            .await?;
        Ok(found.into_iter().map(|d| (d.key.clone(), ScoreState::from(d))).collect())
    }

    /// The first `want` leads matching `filter` by `rank` (a score that is never above the stored
    /// `score`, see [`crate::read::ranking`]), after `after` (a rank score and a lead id) if given.
    /// Reads in stored-score order, a chunk and its scorer states at a time, and stops as soon as
    /// no unread lead can enter the page.
    pub async fn ranked(
        &self,
        filter: Document,
        want: usize,
        after: Option<(f64, String)>,
        rank: impl Fn(&StoredLead, Option<&ScoreState>) -> f64,
    ) -> Result<Vec<Ranked>, ReadError> {
        let chunk = (2 * want).max(RANK_READ_MIN);
        let mut page = RankedPage::new(want, after);
        let mut last_read: Option<(f64, String)> = None;
        loop {
            let filter = match &last_read {
                None => filter.clone(),
                Some((score, key)) => doc! { "$and": [filter.clone(), { "$or": [
                    { "score": { "$lt": score } },
                    { "score": score, "_id": { "$gt": key } },
                ] }] },
            };
            let read: Vec<LeadViewDoc> = self
                .leads
                .find(filter)
                .sort(sort_keys(SortOrder::Score))
                .limit(chunk as i64)
                .await?
                .try_collect()
                .await?;
            let keys: Vec<String> = read.iter().map(|d| d.view.key.clone()).collect();
            let states = self.score_states(&keys).await?;
            let more = read.len() == chunk;
            last_read = read.last().map(|d| (d.score, d.view.key.clone()));
            let ranked = read.into_iter().map(|document| {
                let lead = StoredLead::from(document);
                Ranked { score: rank(&lead, states.get(&lead.view.key)), lead }
            });
            let unread_at_most = if more { last_read.as_ref().map(|(score, _)| *score) } else { None };
            if page.take(ranked, unread_at_most) {
                return Ok(page.into_leads());
            }
        }
    }

    /// The filter of the leaderboard: the project's scored leads.
    pub fn scored_filter(project: &str) -> Document {
        doc! { "$and": [project_filter(project), { "scoring": { "$ne": Bson::Null } }] }
    }

    /// The project's scored leads per stage (every stage, 0 when none), and all its leads.
    pub async fn stage_counts(&self, project: &str) -> Result<(StageCounts, u64), ReadError> {
        let pipeline = [
            doc! { "$match": { "$and": [project_filter(project), { "scoring": { "$ne": Bson::Null } }] } },
            doc! { "$group": { "_id": "$scoring.stage", "n": { "$sum": 1 } } },
        ];
        let groups: Vec<Document> = self.leads.aggregate(pipeline).await?.try_collect().await?;
        let mut counts: StageCounts =
            crate::read::read_query::STAGES.iter().map(|s| (stage_name(*s), 0)).collect();
        for group in groups {
            let stage = group.get_str("_id").unwrap_or_default();
            let n = match group.get("n") {
                Some(Bson::Int32(n)) => *n as u64,
                Some(Bson::Int64(n)) => *n as u64,
                _ => 0,
            };
            if let Some(count) = counts.iter_mut().find(|(name, _)| **name == stage).map(|(_, c)| c) {
                *count = n;
            }
        }
        let total = self.leads.count_documents(project_filter(project)).await?;
        Ok((counts, total))
    }
}

/// The sort of each order: newest or highest first, ties by lead id ascending, so that the
/// order is total and a page boundary is exact.
pub fn sort_keys(sort: SortOrder) -> Document {
    match sort {
        SortOrder::Score => doc! { "score": -1, "_id": 1 },
        SortOrder::Recent => doc! { "lastActivityMs": -1, "_id": 1 },
    }
}

/// The project's documents. A document written before projects has no `projectId` and is the
/// default project's.
pub fn project_filter(project: &str) -> Document {
    if is_default_project(project) {
        doc! { "projectId": { "$in": [project, Bson::Null] } }
    } else {
        doc! { "projectId": project }
    }
}

/// The filter of a page: the project, the query's filters and, after a cursor, the keyset
/// condition "strictly after the cursor's (key desc, id asc)". The cursor holds the bare lead id;
/// the `_id` it is compared with is the lead key, which within one project orders as the id does
/// (every key of a project has the same prefix).
pub fn list_filter(project: &str, query: &ListQuery) -> Document {
    let mut clauses: Vec<Document> = vec![project_filter(project)];
    if let Some(status) = query.status {
        clauses.push(doc! { "status": status.as_str() });
    }
    if let Some(stage) = query.stage {
        clauses.push(doc! { "scoring.stage": stage_name(stage) });
    }
    if let Some(q) = &query.name_contains {
        clauses.push(doc! { "nameLower": { "$regex": escape_regex(q) } });
    }
    if let Some(cursor) = &query.after {
        let id = lead_key(project, &cursor.id);
        let id = id.as_ref();
        let (field, key): (&str, Bson) = match query.sort {
            SortOrder::Score => ("score", Bson::Double(cursor.score)),
            SortOrder::Recent => ("lastActivityMs", Bson::Int64(cursor.at)),
        };
        clauses.push(doc! { "$or": [
            { field: { "$lt": key.clone() } },
            { field: key, "_id": { "$gt": id } },
        ] });
    }
    match clauses.len() {
        1 => clauses.remove(0),
        _ => doc! { "$and": clauses },
    }
}

/// `text` as a regular expression that matches it literally.
pub fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}-/#".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::model::read_model::LeadStatus;

    fn query() -> ListQuery {
        crate::read::read_query::parse_list_query(&[]).unwrap()
    }

    #[test]
    fn no_filters_is_the_project_alone() {
        assert_eq!(list_filter("acme", &query()), doc! { "projectId": "acme" });
        assert_eq!(
            list_filter("default", &query()),
            doc! { "projectId": { "$in": ["default", Bson::Null] } },
            "documents from before projects are the default project's"
        );
        assert_eq!(sort_keys(SortOrder::Recent), doc! { "lastActivityMs": -1, "_id": 1 });
    }

    #[test]
    fn filters_and_the_keyset_condition_combine() {
        let mut q = query();
        q.status = Some(LeadStatus::ToCheck);
        q.stage = Some(Stage::Warm);
        q.name_contains = Some("a.b".into());
        q.sort = SortOrder::Score;
        q.after = Some(Cursor::after(12.5, 3, "lead-9"));
        assert_eq!(
            list_filter("acme", &q),
            doc! { "$and": [
                { "projectId": "acme" },
                { "status": "To Check" },
                { "scoring.stage": "warm" },
                { "nameLower": { "$regex": "a\\.b" } },
                { "$or": [ { "score": { "$lt": 12.5 } }, { "score": 12.5, "_id": { "$gt": "acme/lead-9" } } ] },
            ] }
        );
        let mut recent = query();
        recent.after = Some(Cursor::after(99.0, 1_700_000_000_000, "x"));
        assert_eq!(
            list_filter("default", &recent),
            doc! { "$and": [
                { "projectId": { "$in": ["default", Bson::Null] } },
                { "$or": [
                    { "lastActivityMs": { "$lt": 1_700_000_000_000i64 } },
                    { "lastActivityMs": 1_700_000_000_000i64, "_id": { "$gt": "x" } },
                ] },
            ] }
        );
    }

    #[test]
    fn searches_match_literally() {
        assert_eq!(escape_regex("o'neil (jr.) *+?"), "o'neil \\(jr\\.\\) \\*\\+\\?");
        assert_eq!(escape_regex("a\\b[c]{d}^$|"), "a\\\\b\\[c\\]\\{d\\}\\^\\$\\|");
        assert_eq!(escape_regex("josé"), "josé");
    }
}
