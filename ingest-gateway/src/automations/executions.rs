//! The executions log as `GET /api/automations/executions` reads it: the automator's
//! `automation_executions` documents of the caller's project, newest first. [`ExecutionStore`]
//! is the interface, MongoDB the store, and [`MemoryExecutionStore`] the same in memory for
//! handler tests. [`parse_query`] checks the query string before any read.

use std::sync::Mutex;

use futures::TryStreamExt;
use futures::future::BoxFuture;
use mongodb::bson::{Document, doc};
use mongodb::{Client, Collection};

use leadflow_core::contract::records::AutomationExecuted;
use leadflow_core::store::documents::{AUTOMATION_EXECUTIONS, ExecutionDoc};

use crate::error::FieldError;
use crate::read::read_query::{known_once, limit};

pub const DEFAULT_DAYS: u32 = 7;
pub const MAX_DAYS: u32 = 30;
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 500;
const DAY_MS: i64 = 86_400_000;

/// What to list: the last `days`, optionally one rule's or one lead's, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionQuery {
    pub days: u32,
    pub rule_id: Option<String>,
    pub lead_id: Option<String>,
    pub limit: u32,
}

impl ExecutionQuery {
    /// The earliest `executedAtMs` listed, for a request at `now_ms`.
    pub fn since_ms(&self, now_ms: i64) -> i64 {
        now_ms - i64::from(self.days) * DAY_MS
    }
}

/// `days` (1 to 30, default 7), `ruleId`, `leadId` (empty: any), `limit` (1 to 500, default
/// 100): every error, each naming its parameter.
pub fn parse_query(pairs: &[(String, String)]) -> Result<ExecutionQuery, Vec<FieldError>> {
    let pairs = known_once(pairs, &["days", "ruleId", "leadId", "limit"])?;
    let mut query = ExecutionQuery { days: DEFAULT_DAYS, rule_id: None, lead_id: None, limit: DEFAULT_LIMIT };
    let mut errors = Vec::new();
    for (key, value) in pairs {
        let text = (!value.is_empty()).then(|| value.to_owned());
        match key {
            "days" => match value.parse::<u32>() {
                Ok(days) if (1..=MAX_DAYS).contains(&days) => query.days = days,
                _ => errors.push(FieldError::new(
                    "days",
                    "invalid_value",
                    format!("days must be an integer from 1 to {MAX_DAYS}; got {value:?}"),
                )),
            },
            "limit" => match limit(value, MAX_LIMIT) {
                Ok(n) => query.limit = n,
                Err(e) => errors.push(e),
            },
            "ruleId" => query.rule_id = text,
            _ => query.lead_id = text,
        }
    }
    if errors.is_empty() { Ok(query) } else { Err(errors) }
}

/// MongoDB did not answer: the request is answered 503 and may be retried.
#[derive(Debug, thiserror::Error)]
#[error("the executions log is unavailable: {0}")]
pub struct ExecutionsUnavailable(#[from] mongodb::error::Error);

type Answer<'a, T> = BoxFuture<'a, Result<T, ExecutionsUnavailable>>;

pub trait ExecutionStore: Send + Sync + 'static {
    /// The project's executions since `since_ms` matching `query`, newest first.
    fn executions(
        &self,
        project_id: &str,
        since_ms: i64,
        query: &ExecutionQuery,
    ) -> Answer<'_, Vec<AutomationExecuted>>;
}

pub struct MongoExecutionStore {
    executions: Collection<ExecutionDoc>,
}

impl MongoExecutionStore {
    pub fn new(client: Client, database: &str) -> Self {
        MongoExecutionStore { executions: client.database(database).collection(AUTOMATION_EXECUTIONS) }
    }
}

fn filter(project_id: &str, since_ms: i64, query: &ExecutionQuery) -> Document {
    let mut filter = doc! { "projectId": project_id, "executedAtMs": { "$gte": since_ms } };
    if let Some(rule_id) = &query.rule_id {
        filter.insert("ruleId", rule_id);
    }
    if let Some(lead_id) = &query.lead_id {
        filter.insert("record.leadId", lead_id);
    }
    filter
}

impl ExecutionStore for MongoExecutionStore {
    fn executions(
        &self,
        project_id: &str,
        since_ms: i64,
        query: &ExecutionQuery,
    ) -> Answer<'_, Vec<AutomationExecuted>> {
        let filter = filter(project_id, since_ms, query);
        let limit = i64::from(query.limit);
        Box::pin(async move {
            let docs: Vec<ExecutionDoc> = self
                .executions
                .find(filter)
                .sort(doc! { "executedAtMs": -1, "_id": -1 })
                .limit(limit)
                .await?
                .try_collect()
                .await?;
            Ok(docs.into_iter().map(|d| d.record).collect())
        })
    }
}

/// The same contract in memory.
#[derive(Default)]
pub struct MemoryExecutionStore {
    pub docs: Mutex<Vec<ExecutionDoc>>,
}

impl ExecutionStore for MemoryExecutionStore {
    fn executions(
        &self,
        project_id: &str,
        since_ms: i64,
        query: &ExecutionQuery,
    ) -> Answer<'_, Vec<AutomationExecuted>> {
        let mut found: Vec<ExecutionDoc> = self
            .docs
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.project_id == project_id && d.executed_at_ms >= since_ms)
            .filter(|d| query.rule_id.as_ref().is_none_or(|r| *r == d.rule_id))
            .filter(|d| query.lead_id.as_ref().is_none_or(|l| *l == d.record.lead_id))
            .cloned()
            .collect();
        found.sort_by(|a, b| (b.executed_at_ms, &b.key).cmp(&(a.executed_at_ms, &a.key)));
        found.truncate(query.limit as usize);
        Box::pin(std::future::ready(Ok(found.into_iter().map(|d| d.record).collect())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_and_every_parameter() {
        assert_eq!(
            parse_query(&[]).unwrap(),
            ExecutionQuery { days: 7, rule_id: None, lead_id: None, limit: 100 }
        );
        let query =
            parse_query(&pairs(&[("days", "30"), ("ruleId", "hot"), ("leadId", "lead-1"), ("limit", "500")]))
                .unwrap();
        assert_eq!(
            query,
            ExecutionQuery {
                days: 30,
                rule_id: Some("hot".into()),
                lead_id: Some("lead-1".into()),
                limit: 500
            }
        );
        assert_eq!(query.since_ms(40 * DAY_MS), 10 * DAY_MS);
        assert_eq!(parse_query(&pairs(&[("ruleId", "")])).unwrap().rule_id, None);
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let fields = |items: &[(&str, &str)]| -> Vec<String> {
            parse_query(&pairs(items)).unwrap_err().into_iter().map(|e| e.field).collect()
        };
        assert_eq!(fields(&[("days", "0"), ("limit", "501")]), ["days", "limit"]);
        assert_eq!(fields(&[("days", "31")]), ["days"]);
        assert_eq!(fields(&[("days", "x")]), ["days"]);
        assert_eq!(fields(&[("limit", "0")]), ["limit"]);
        assert_eq!(fields(&[("stage", "hot")]), ["stage"]);
        assert_eq!(fields(&[("days", "1"), ("days", "2")]), ["days"]);
    }
}
