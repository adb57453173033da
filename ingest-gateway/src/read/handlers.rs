//! The read API's handlers and the routes they serve. Handlers are thin: they check the request
//! ([`crate::read::read_query`]) before any query, read through [`crate::read::read_store`], and
//! shape the answer with the pure functions here.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use time::OffsetDateTime;

use leadflow_core::contract::records::{DeliveryStatus, Stage};
use leadflow_core::model::read_model::{CrmFields, Enrichment, LeadView, Review, Scoring};
use leadflow_core::model::scoring::{self, REASON_TOO_LATE, ScoringEvent, ScoringRules};
use leadflow_core::store::documents::HistoryDoc;

use crate::auth::AuthState;
use crate::auth::caller::Caller;
use crate::auth::scope::Scope;
use crate::error::{AppError, FieldError};
use crate::ids;
use crate::read::ReadState;
use crate::read::intelligence::{self, NextAction, Risk};
use crate::read::ranking::{self, Ranked, effective_score};
use crate::read::read_query::{self, Cursor, ListQuery, SortOrder};
use crate::read::read_store::{self, ReadError, ReadStore, ScoreState, StageCounts, StoredLead};

/// The read API's routes, for a router whose state holds a [`ReadState`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<ReadState>: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
{
    Router::new()
        .route("/api/leads", get(list_leads))
        .route("/api/leads/{id}", get(get_lead))
        .route("/api/leads/{id}/history", get(get_history))
        .route("/api/leads/{id}/intelligence", get(get_intelligence))
        .route("/api/leaderboard", get(get_leaderboard))
}

/// A lead in lists: who, how it stands, and whether the CRM has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadSummary {
    pub lead_id: String,
    /// Profile, country, status (the review's decision when a person decided, else the
    /// enrichment's) and stage: what the CRM shows.
    #[serde(flatten)]
    pub shown: CrmFields,
    /// As of the newest event; null until scored.
    pub score: Option<f64>,
    /// The score decayed to the time of the request (for a later page sorted by score, to the
    /// time its first page was read), what `sort=score` and the leaderboard rank by; null until
    /// scored. Never above `score`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_score: Option<f64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_activity_at: Option<OffsetDateTime>,
    pub version: u64,
    pub synced_version: u64,
    pub in_crm: bool,
    /// Set when the lead merged into another (an identity merge): the lead that now holds its
    /// events and score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

/// The summary of `view`, with the score it ranks by now (see [`ranking::rank_score`]).
pub fn summary(view: &LeadView, effective_score: Option<f64>) -> LeadSummary {
    LeadSummary {
        lead_id: view.lead_id().to_owned(),
        shown: view.crm_fields(),
        score: view.scoring.as_ref().map(|s| s.score),
        effective_score: view.scoring.as_ref().and(effective_score),
        last_activity_at: view.last_activity_at(),
        version: view.version,
        synced_version: view.synced_version,
        in_crm: view.synced_version > 0,
        merged_into: view.scoring.as_ref().and_then(|s| s.merged_into.clone()),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadPage {
    pub leads: Vec<LeadSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page in recent order from up to `limit + 1` leads read (the extra one only says that more
/// follow), each with its score now.
pub fn page(mut found: Vec<(StoredLead, f64)>, query: &ListQuery) -> LeadPage {
    let more = found.len() > query.limit as usize;
    found.truncate(query.limit as usize);
    let next_cursor = if more { found.last().map(|(l, _)| l.cursor().encode()) } else { None };
    LeadPage { leads: found.iter().map(|(l, score)| summary(&l.view, Some(*score))).collect(), next_cursor }
}

/// A page in score order from up to `limit + 1` leads ranked at `ranked_at`. Its cursor holds
/// the last lead's rank score and `ranked_at`, so that the next page ranks at the same instant and
/// continues exactly after it.
pub fn ranked_page(mut found: Vec<Ranked>, query: &ListQuery, ranked_at: OffsetDateTime) -> LeadPage {
    let more = found.len() > query.limit as usize;
    found.truncate(query.limit as usize);
    let at_ms = (ranked_at.unix_timestamp_nanos() / 1_000_000) as i64;
    let next_cursor = if more {
        found.last().map(|r| Cursor::after(r.score, at_ms, r.lead.view.lead_id()).encode())
    } else {
        None
    };
    LeadPage { leads: found.iter().map(|r| summary(&r.lead.view, Some(r.score))).collect(), next_cursor }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoringDetail {
    #[serde(flatten)]
    pub scoring: Scoring,
    /// The score decayed to the time of the request under the rules in force.
    pub effective_score: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDetail {
    pub version: u64,
    pub destination: String,
    pub status: DeliveryStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmSync {
    pub version: u64,
    pub synced_version: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub synced_at: Option<OffsetDateTime>,
    pub last_delivery: Option<DeliveryDetail>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadDetail {
    #[serde(flatten)]
    pub summary: LeadSummary,
    pub enrichment: Option<Enrichment>,
    pub scoring: Option<ScoringDetail>,
    pub review: Option<Review>,
    pub crm: CrmSync,
}

pub fn detail(
    view: &LeadView,
    state: Option<&ScoreState>,
    rules: &ScoringRules,
    now: OffsetDateTime,
) -> LeadDetail {
    LeadDetail {
        summary: summary(view, view.scoring.as_ref().map(|s| effective_score(rules, s, state, now))),
        enrichment: view.enrichment.clone(),
        scoring: view.scoring.as_ref().map(|s| ScoringDetail {
            effective_score: effective_score(rules, s, state, now),
            scoring: s.clone(),
        }),
        review: view.review.clone(),
        crm: CrmSync {
            version: view.version,
            synced_version: view.synced_version,
            synced_at: view.synced_at,
            last_delivery: view.last_delivery.as_ref().map(|d| DeliveryDetail {
                version: d.version,
                destination: d.destination.clone(),
                status: d.status,
                at: d.at,
                error: d.error.clone(),
            }),
        },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    pub event_id: String,
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// What the event itself added: its rule's points, 0 when `reason` says why not.
    pub points: f64,
    /// The change of the running total: the previous total's decay over the gap, plus `points`.
    pub delta: f64,
    /// The running total after this event.
    pub score: f64,
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The event arrived after an event with a later timestamp, and was placed where it belongs.
    pub late: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryAnswer {
    pub lead_id: String,
    pub rules_version: String,
    pub entries: Vec<HistoryItem>,
}

/// The chronological history of a lead's applied events (its `score_history`, any order) under
/// `rules`, with the running total after each. An event the scorer found too late is listed in
/// its place with 0 points and the total carried, but left out of the fold: it scored nothing,
/// and a 0-point event would still split a decay gap.
pub fn history_items(rules: &ScoringRules, entries: &[HistoryDoc]) -> Vec<HistoryItem> {
    // Late: some event applied before it (a lower `seq`) carries a later timestamp.
    let mut applied_order: Vec<&HistoryDoc> = entries.iter().collect();
    applied_order.sort_by_key(|h| h.seq);
    let mut late = std::collections::HashSet::new();
    let mut newest: Option<OffsetDateTime> = None;
    for entry in &applied_order {
        let timestamp = entry.record.event_timestamp;
        if newest.is_some_and(|n| timestamp < n) {
            late.insert(entry.event_id.as_str());
        }
        newest = newest.max(Some(timestamp));
    }
    let as_event = |h: &HistoryDoc| ScoringEvent {
        event_id: h.event_id.clone(),
        event_type: h.record.event_type.clone(),
        timestamp: h.record.event_timestamp,
    };
    let (too_late, scored): (Vec<&HistoryDoc>, Vec<&HistoryDoc>) =
        entries.iter().partition(|h| h.record.reason.as_deref() == Some(REASON_TOO_LATE));
    let scored: Vec<ScoringEvent> = scored.into_iter().map(as_event).collect();
    let mut too_late: Vec<ScoringEvent> = too_late.into_iter().map(as_event).collect();
    too_late.sort_by(|a, b| history_order(a).cmp(&history_order(b)));
    let mut too_late = too_late.into_iter().peekable();

    let mut items = Vec::with_capacity(entries.len());
    let mut previous = (0.0, rules.stage_for(0.0));
    let carried = |items: &mut Vec<HistoryItem>, event: ScoringEvent, (score, stage): (f64, Stage)| {
        items.push(HistoryItem {
            late: late.contains(event.event_id.as_str()),
            event_id: event.event_id,
            event_type: event.event_type,
            timestamp: event.timestamp,
            points: 0.0,
            delta: 0.0,
            score,
            stage,
            reason: Some(REASON_TOO_LATE),
        });
    };
    for entry in scoring::history(rules, &scored) {
        let key = (entry.timestamp, entry.event_id.as_str(), entry.event_type.as_str());
        while let Some(event) = too_late.next_if(|e| history_order(e) < key) {
            carried(&mut items, event, previous);
        }
        let delta = ((entry.score - previous.0) * 1e6).round() / 1e6;
        previous = (entry.score, entry.stage);
        items.push(HistoryItem {
            late: late.contains(entry.event_id.as_str()),
            event_id: entry.event_id,
            event_type: entry.event_type,
            timestamp: entry.timestamp,
            points: entry.points,
            delta,
            score: entry.score,
            stage: entry.stage,
            reason: entry.reason,
        });
    }
    for event in too_late {
        carried(&mut items, event, previous);
    }
    items
}

/// The order of a history: timestamp, then eventId, then type, as the scoring model sorts.
fn history_order(event: &ScoringEvent) -> (OffsetDateTime, &str, &str) {
    (event.timestamp, event.event_id.as_str(), event.event_type.as_str())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntelligenceAnswer {
    pub lead_id: String,
    pub velocity: usize,
    pub risk: Risk,
    pub next_action: NextAction,
    pub stage: Option<Stage>,
    pub score: Option<f64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_event_at: Option<OffsetDateTime>,
}

/// The stage and score are the read model's, else the scorer's when the read model has not
/// caught up; the newest event is the scorer's, and `velocity` is counted from its history.
pub fn intelligence_of(
    lead_id: &str,
    view: Option<&LeadView>,
    state: Option<&ScoreState>,
    velocity: usize,
    now: OffsetDateTime,
) -> IntelligenceAnswer {
    let scoring = view.and_then(|v| v.scoring.as_ref());
    let stage = scoring.map(|s| s.stage).or(state.map(|s| s.stage));
    let score = scoring.map(|s| s.score).or(state.map(|s| s.score));
    let assessment = intelligence::assess_counted(stage, velocity, state.and_then(|s| s.as_of), now);
    IntelligenceAnswer {
        lead_id: lead_id.to_owned(),
        velocity: assessment.velocity,
        risk: assessment.risk,
        next_action: assessment.next_action,
        stage,
        score,
        last_event_at: assessment.last_event_at,
    }
}

#[derive(Debug, Serialize)]
pub struct Leaderboard {
    pub top: Vec<LeadSummary>,
    pub stages: StageCounts,
    pub total: u64,
}

// Handlers.

pub(crate) fn bad_query(rejection: QueryRejection) -> AppError {
    AppError::invalid_fields(vec![FieldError {
        field: "query".to_owned(),
        reason: "invalid_format",
        message: format!("the query string cannot be read: {}", rejection.body_text()),
    }])
}

fn checked_id(path: Result<Path<String>, PathRejection>) -> Result<String, FieldError> {
    let id = match path {
        Ok(Path(id)) => id,
        Err(rejection) => {
            return Err(FieldError {
                field: "id".to_owned(),
                reason: "invalid_format",
                message: format!("id is not a valid path segment: {rejection}"),
            });
        }
    };
    ids::check_lead_id("id", &id)?;
    Ok(id)
}

/// The path id and an empty query string, both checked before any read.
fn checked_lead_request(
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<String, AppError> {
    let Query(pairs) = query.map_err(bad_query)?;
    let mut errors = Vec::new();
    let id = checked_id(path).map_err(|e| errors.push(e)).ok();
    errors.extend(read_query::parse_no_query(&pairs).err().unwrap_or_default());
    match id {
        Some(id) if errors.is_empty() => Ok(id),
        _ => Err(AppError::invalid_fields(errors)),
    }
}

impl ReadState {
    fn read_failure(&self, error: ReadError) -> AppError {
        tracing::warn!(error = %error, "read failed");
        match error {
            ReadError::Unavailable(message) => {
                AppError::unavailable(format!("the read model is unavailable: {message}"), self.retry_after)
            }
            ReadError::Corrupt(message) => AppError::internal(message),
        }
    }

    /// The project's rules in force (its own, else the seeds').
    fn rules_in_force(&self, project: &str) -> Arc<ScoringRules> {
        self.rules.borrow().for_project(project).rules.clone()
    }

    /// The project's lead's view and the scorer's state of it, read together. Another
    /// project's lead of the same id is not found: its answer is the 404 of a missing lead.
    async fn lead_and_score_state(
        &self,
        project: &str,
        lead_id: &str,
    ) -> Result<(Option<StoredLead>, Option<ScoreState>), AppError> {
        tokio::try_join!(self.reads.lead(project, lead_id), self.reads.score_state(project, lead_id))
            .map_err(|e| self.read_failure(e))
    }

    /// As [`Self::lead_and_score_state`], for answers that need either: a 404 when neither is known.
    async fn lead_or_score_state(
        &self,
        project: &str,
        lead_id: &str,
    ) -> Result<(Option<StoredLead>, Option<ScoreState>), AppError> {
        match self.lead_and_score_state(project, lead_id).await? {
            (None, None) => Err(lead_not_found(lead_id)),
            found => Ok(found),
        }
    }
}

fn lead_not_found(lead_id: &str) -> AppError {
    AppError::no_such("id", format!("no lead {lead_id:?} in the read model"))
}

/// `GET /api/leads`.
pub async fn list_leads(
    State(state): State<Arc<ReadState>>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<LeadPage>, AppError> {
    let project = caller.in_project(Scope::Read)?.project_id;
    let Query(pairs) = query.map_err(bad_query)?;
    let query = read_query::parse_list_query(&pairs).map_err(AppError::invalid_fields)?;
    let rules = state.rules_in_force(&project);
    let page = match query.sort {
        SortOrder::Recent => {
            let found = state.reads.list(&project, &query).await.map_err(|e| state.read_failure(e))?;
            let keys: Vec<String> = found.iter().map(|l| l.view.key.clone()).collect();
            let states = state.reads.score_states(&keys).await.map_err(|e| state.read_failure(e))?;
            let now = OffsetDateTime::now_utc();
            let found = found
                .into_iter()
                .map(|l| {
                    let score = ranking::rank_score(&rules, &l, states.get(&l.view.key), now);
                    (l, score)
                })
                .collect();
            page(found, &query)
        }
        SortOrder::Score => {
            // A later page ranks at the instant of the first, which its cursor carries.
            let ranked_at = match &query.after {
                Some(cursor) => OffsetDateTime::from_unix_timestamp_nanos(i128::from(cursor.at) * 1_000_000)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                None => OffsetDateTime::now_utc(),
            };
            let filter = read_store::list_filter(&project, &ListQuery { after: None, ..query.clone() });
            let after = query.after.as_ref().map(|c| (c.score, c.id.clone()));
            let rank = |lead: &StoredLead, score: Option<&ScoreState>| {
                ranking::rank_score(&rules, lead, score, ranked_at)
            };
            let found = state
                .reads
                .ranked(filter, query.limit as usize + 1, after, rank)
                .await
                .map_err(|e| state.read_failure(e))?;
            ranked_page(found, &query, ranked_at)
        }
    };
    Ok(Json(page))
}

/// `GET /api/leads/{id}`.
pub async fn get_lead(
    State(state): State<Arc<ReadState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<LeadDetail>, AppError> {
    let project = caller.in_project(Scope::Read)?.project_id;
    let lead_id = checked_lead_request(path, query)?;
    let (lead, score_state) = state.lead_and_score_state(&project, &lead_id).await?;
    let lead = lead.ok_or_else(|| lead_not_found(&lead_id))?;
    let rules = state.rules_in_force(&project);
    Ok(Json(detail(&lead.view, score_state.as_ref(), &rules, OffsetDateTime::now_utc())))
}

/// `GET /api/leads/{id}/history`.
pub async fn get_history(
    State(state): State<Arc<ReadState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<HistoryAnswer>, AppError> {
    let project = caller.in_project(Scope::Read)?.project_id;
    let lead_id = checked_lead_request(path, query)?;
    let (_, history) = tokio::try_join!(state.lead_or_score_state(&project, &lead_id), async {
        state.reads.history(&project, &lead_id).await.map_err(|e| state.read_failure(e))
    },)?;
    let rules = state.rules_in_force(&project);
    let entries = history_items(&rules, &history);
    Ok(Json(HistoryAnswer { lead_id, rules_version: rules.version.clone(), entries }))
}

/// `GET /api/leads/{id}/intelligence`.
pub async fn get_intelligence(
    State(state): State<Arc<ReadState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<IntelligenceAnswer>, AppError> {
    let project = caller.in_project(Scope::Read)?.project_id;
    let lead_id = checked_lead_request(path, query)?;
    let now = OffsetDateTime::now_utc();
    let ((lead, score_state), velocity) =
        tokio::try_join!(state.lead_or_score_state(&project, &lead_id), async {
            state.reads.velocity(&project, &lead_id, now).await.map_err(|e| state.read_failure(e))
        },)?;
    let view = lead.map(|l| l.view);
    Ok(Json(intelligence_of(&lead_id, view.as_ref(), score_state.as_ref(), velocity, now)))
}

/// `GET /api/leaderboard`.
pub async fn get_leaderboard(
    State(state): State<Arc<ReadState>>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Leaderboard>, AppError> {
    let project = caller.in_project(Scope::Read)?.project_id;
    let Query(pairs) = query.map_err(bad_query)?;
    let limit = read_query::parse_leaderboard_query(&pairs).map_err(AppError::invalid_fields)?;
    let rules = state.rules_in_force(&project);
    let now = OffsetDateTime::now_utc();
    let rank = |lead: &StoredLead, score: Option<&ScoreState>| ranking::rank_score(&rules, lead, score, now);
    let top = state.reads.ranked(ReadStore::scored_filter(&project), limit as usize, None, rank);
    let (top, (stages, total)) =
        tokio::try_join!(top, state.reads.stage_counts(&project)).map_err(|e| state.read_failure(e))?;
    let top = top.iter().map(|r| summary(&r.lead.view, Some(r.score))).collect();
    Ok(Json(Leaderboard { top, stages, total }))
}

#[cfg(test)]
mod tests;
