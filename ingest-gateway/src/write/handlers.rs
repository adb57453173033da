//! The write API's handlers: events (one or a batch), leads, reviews of leads, and the scoring
//! rules (read the rules in force, publish a new rule set), with the routes they serve.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use leadflow_core::contract::records::{LeadEvent, NameSubmitted, ReviewDecision, TopicRecord};
use leadflow_core::model::scoring::ScoringRules;

use crate::auth::AuthState;
use crate::auth::caller::{Caller, InProject};
use crate::auth::scope::Scope;

use crate::error::{AppError, FieldError};
use crate::write::WriteState;
use crate::write::json_body::JsonBody;
use crate::write::publisher::{PublishError, Publisher};
use crate::write::validation::{self, MAX_EVENTS_PER_BATCH, MAX_NAMES_PER_BATCH};

pub const EVENT_BODY_LIMIT: usize = 64 * 1024;
pub const EVENTS_BATCH_BODY_LIMIT: usize = 1024 * 1024;
pub const LEADS_BODY_LIMIT: usize = 256 * 1024;
pub const RULES_BODY_LIMIT: usize = 64 * 1024;
/// Roomy: a 2000-character note of escaped astral characters alone is about 24 KB of JSON.
pub const REVIEW_BODY_LIMIT: usize = 64 * 1024;

/// The write API's routes, for a router whose state holds a [`WriteState`].
pub fn routes<P, S>() -> Router<S>
where
    P: Publisher,
    S: Clone + Send + Sync + 'static,
    Arc<WriteState<P>>: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
{
    Router::new()
        .route("/api/events", post(post_event::<P>))
        .route("/api/events/batch", post(post_event_batch::<P>))
        .route("/api/leads", post(post_leads::<P>))
        .route("/api/leads/{id}/review", post(post_review::<P>))
        .route("/api/scoring-rules", get(get_scoring_rules::<P>).put(put_scoring_rules::<P>))
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventAccepted {
    pub event_id: String,
    pub lead_id: String,
}

impl<P: Publisher> WriteState<P> {
    fn count_rejected(&self, errors: &[FieldError]) {
        for error in errors {
            self.metrics.records_rejected.with_label_values(&[error.reason]).inc();
        }
    }

    /// Publishes and counts what Kafka acknowledged.
    pub(crate) async fn publish<R: TopicRecord>(&self, records: &[R]) -> Vec<Result<(), PublishError>> {
        let results = self.publisher.publish_all(records).await;
        let acknowledged = results.iter().filter(|r| r.is_ok()).count();
        self.metrics.records_published.with_label_values(&[R::TOPIC]).inc_by(acknowledged as u64);
        results
    }

    pub(crate) fn publish_failure(&self, error: &PublishError) -> AppError {
        tracing::warn!(error = %error, "publish failed");
        match error {
            PublishError::Unavailable(message) => AppError::unavailable(message.clone(), self.retry_after),
            PublishError::Contract(message) => AppError::contract(message.clone()),
        }
    }
}

/// The credential comes first: a caller who may not post learns nothing of the input rules.
/// Every answer past it carries the key's `RateLimit-*` headers.
async fn post_event<P: Publisher>(
    State(state): State<Arc<WriteState<P>>>,
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    JsonBody(body): JsonBody<EVENT_BODY_LIMIT>,
) -> Result<Response, AppError> {
    let caller = caller.in_project(Scope::Ingest)?;
    auth.with_limits(&caller, accept_event(&state, &auth, &caller, body)).await
}

async fn accept_event<P: Publisher>(
    state: &WriteState<P>,
    auth: &AuthState,
    caller: &InProject,
    body: Value,
) -> Result<Response, AppError> {
    let mut event = validation::validate_event(&body, OffsetDateTime::now_utc()).map_err(|errors| {
        state.count_rejected(&errors);
        AppError::invalid_fields(errors)
    })?;
    event.project_id = caller.project_id.clone();
    let limits = auth.admit(caller, 1).await?;
    match state.publish(std::slice::from_ref(&event)).await.remove(0) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            limits,
            Json(EventAccepted { event_id: event.event_id, lead_id: event.lead_id }),
        )
            .into_response()),
        Err(e) => Err(state.publish_failure(&e)),
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase", rename_all_fields = "camelCase")]
pub enum ItemResult {
    /// Acknowledged by Kafka: durable.
    Accepted { index: usize, event_id: String, lead_id: String },
    /// Invalid; nothing was published for it.
    Rejected { index: usize, errors: Vec<FieldError> },
    /// Valid, but Kafka did not acknowledge it; retry this item.
    Unavailable { index: usize, message: String },
}

#[derive(Debug, Serialize)]
pub struct BatchOutcome {
    pub accepted: usize,
    pub rejected: usize,
    pub unavailable: usize,
    pub results: Vec<ItemResult>,
}

/// Publishes every valid item and reports on each in input order: 202 when every valid item
/// was acknowledged, 503 with `Retry-After` when some were not, 400 when none was valid. The
/// rate limit counts the valid items (what would be published), all or none: 429 publishes
/// nothing.
async fn post_event_batch<P: Publisher>(
    State(state): State<Arc<WriteState<P>>>,
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    JsonBody(body): JsonBody<EVENTS_BATCH_BODY_LIMIT>,
) -> Result<Response, AppError> {
    let caller = caller.in_project(Scope::Ingest)?;
    auth.with_limits(&caller, accept_event_batch(&state, &auth, &caller, body)).await
}

async fn accept_event_batch<P: Publisher>(
    state: &WriteState<P>,
    auth: &AuthState,
    caller: &InProject,
    body: Value,
) -> Result<Response, AppError> {
    let items = validation::batch_items(&body, "events", MAX_EVENTS_PER_BATCH)
        .map_err(|e| AppError::invalid_fields(vec![e]))?;
    let now = OffsetDateTime::now_utc();
    let mut results: Vec<Option<ItemResult>> = Vec::with_capacity(items.len());
    let mut valid: Vec<(usize, LeadEvent)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match validation::validate_event(item, now) {
            Ok(mut event) => {
                event.project_id = caller.project_id.clone();
                valid.push((index, event));
                results.push(None);
            }
            Err(errors) => {
                state.count_rejected(&errors);
                let prefix = format!("events[{index}]");
                let errors = errors.into_iter().map(|e| e.under(&prefix)).collect();
                results.push(Some(ItemResult::Rejected { index, errors }));
            }
        }
    }
    let limits = if valid.is_empty() {
        auth.current_limits(caller).await.unwrap_or_default()
    } else {
        auth.admit(caller, valid.len()).await?
    };
    let events: Vec<LeadEvent> = valid.iter().map(|(_, e)| e.clone()).collect();
    let published = state.publish(&events).await;
    for ((index, event), outcome) in valid.into_iter().zip(published) {
        results[index] = Some(match outcome {
            Ok(()) => ItemResult::Accepted { index, event_id: event.event_id, lead_id: event.lead_id },
            Err(e) => ItemResult::Unavailable { index, message: e.to_string() },
        });
    }
    let results: Vec<ItemResult> = results.into_iter().map(|r| r.expect("every item has a result")).collect();
    let count = |f: fn(&ItemResult) -> bool| results.iter().filter(|r| f(r)).count();
    let outcome = BatchOutcome {
        accepted: count(|r| matches!(r, ItemResult::Accepted { .. })),
        rejected: count(|r| matches!(r, ItemResult::Rejected { .. })),
        unavailable: count(|r| matches!(r, ItemResult::Unavailable { .. })),
        results,
    };
    let status = if outcome.unavailable > 0 {
        StatusCode::SERVICE_UNAVAILABLE
    } else if outcome.accepted == 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::ACCEPTED
    };
    let mut response = (status, limits, Json(outcome)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let seconds = state.retry_after.as_secs().max(1).to_string();
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.parse().expect("digits"));
    }
    Ok(response)
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LeadAccepted {
    pub lead_id: String,
    pub name: String,
}

/// One lead (`{"name", …}`) or a batch (`{"names": [...]}`); all or nothing: any invalid item
/// rejects the request, naming the item, and nothing is published.
async fn post_leads<P: Publisher>(
    State(state): State<Arc<WriteState<P>>>,
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    JsonBody(body): JsonBody<LEADS_BODY_LIMIT>,
) -> Result<Response, AppError> {
    let caller = caller.in_project(Scope::Ingest)?;
    auth.with_limits(&caller, accept_leads(&state, &auth, &caller, body)).await
}

async fn accept_leads<P: Publisher>(
    state: &WriteState<P>,
    auth: &AuthState,
    caller: &InProject,
    body: Value,
) -> Result<Response, AppError> {
    let now = OffsetDateTime::now_utc();
    let is_batch = body.as_object().is_some_and(|o| o.contains_key("names"));
    let leads: Vec<NameSubmitted> = if is_batch {
        let items = validation::batch_items(&body, "names", MAX_NAMES_PER_BATCH)
            .map_err(|e| AppError::invalid_fields(vec![e]))?;
        let mut leads = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match validation::validate_lead(item, now) {
                Ok(lead) => leads.push(lead),
                Err(item_errors) => {
                    errors.extend(item_errors.into_iter().map(|e| e.under(&format!("names[{index}]"))))
                }
            }
        }
        if !errors.is_empty() {
            state.count_rejected(&errors);
            return Err(AppError::invalid_fields(errors));
        }
        leads
    } else if !body.is_object() {
        // A bare name is a batch item only: the document's body is a lead object or a batch.
        let errors = vec![validation::expect_object(&body, "lead").unwrap_err()];
        state.count_rejected(&errors);
        return Err(AppError::invalid_fields(errors));
    } else {
        vec![validation::validate_lead(&body, now).map_err(|errors| {
            state.count_rejected(&errors);
            AppError::invalid_fields(errors)
        })?]
    };
    let mut leads = leads;
    for lead in &mut leads {
        lead.project_id = caller.project_id.clone();
    }
    // Each name is a record on Kafka, as each event is: a batch of names counts its names.
    let limits = auth.admit(caller, leads.len()).await?;
    let results = state.publish(&leads).await;
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        return Err(state.publish_failure(e));
    }
    let accepted: Vec<LeadAccepted> =
        leads.into_iter().map(|l| LeadAccepted { lead_id: l.lead_id, name: l.name }).collect();
    Ok((StatusCode::ACCEPTED, limits, Json(accepted)).into_response())
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReviewAccepted {
    pub lead_id: String,
    pub decision: ReviewDecision,
    #[serde(with = "time::serde::rfc3339")]
    pub reviewed_at: OffsetDateTime,
}

/// A person's decision on a lead (`{"decision": "Verified" | "Rejected", "reviewer"?, "note"?}`),
/// published as a `LeadReviewed` to `leads.reviews.v1` keyed by the lead id, stamped
/// `reviewedAt` with the gateway's clock; 202 once Kafka has acknowledged it. It reaches the
/// lead's state only through Kafka (the crm-sink consumes it), never as a direct write.
///
/// The gateway does not check that the lead exists (the read model may not have caught up with
/// it yet). A review of a lead not seen yet waits in the crm-sink's read model until the lead
/// arrives.
async fn post_review<P: Publisher>(
    State(state): State<Arc<WriteState<P>>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<REVIEW_BODY_LIMIT>,
) -> Result<(StatusCode, Json<ReviewAccepted>), AppError> {
    let caller = caller.in_project(Scope::Admin)?;
    // A segment that does not percent-decode to UTF-8 is a bad id, answered like any other.
    let lead_id = match path {
        Ok(Path(id)) => id,
        Err(rejection) => {
            let error = FieldError {
                field: "id".to_owned(),
                reason: "invalid_format",
                message: format!("id is not a valid path segment: {rejection}"),
            };
            state.count_rejected(std::slice::from_ref(&error));
            return Err(AppError::invalid_fields(vec![error]));
        }
    };
    let mut review =
        validation::validate_review(&lead_id, &body, OffsetDateTime::now_utc()).map_err(|errors| {
            state.count_rejected(&errors);
            AppError::invalid_fields(errors)
        })?;
    // Keyed by the caller's project and this id: a review names a lead of its own project only,
    // and can never reach another project's lead of the same id.
    review.project_id = caller.project_id;
    match state.publish(std::slice::from_ref(&review)).await.remove(0) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(ReviewAccepted {
                lead_id: review.lead_id,
                decision: review.decision,
                reviewed_at: review.reviewed_at,
            }),
        )),
        Err(e) => Err(state.publish_failure(&e)),
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RulesSource {
    /// The newest valid rule set on `scoring.rules.v1`.
    Topic,
    /// The seeds' rules: nothing valid has been read from the topic.
    Default,
}

#[derive(Debug, Serialize)]
pub struct RulesAnswer {
    pub rules: ScoringRules,
    pub source: RulesSource,
    /// The rule set's offset on `scoring.rules.v1`; null for the seeds' rules.
    pub offset: Option<i64>,
}

/// The caller's project's rules in force, as this gateway has read them from the topic.
async fn get_scoring_rules<P: Publisher>(
    State(state): State<Arc<WriteState<P>>>,
    caller: Caller,
) -> Result<Json<RulesAnswer>, AppError> {
    let caller = caller.in_project(Scope::Read)?;
    let in_force = state.rules.borrow().for_project(&caller.project_id);
    Ok(Json(RulesAnswer {
        rules: ScoringRules::clone(&in_force.rules),
        source: if in_force.offset.is_some() { RulesSource::Topic } else { RulesSource::Default },
        offset: in_force.offset,
    }))
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RulesPublished {
    pub version: String,
    pub status: &'static str,
}

/// Publishes a rule set of the caller's project to `scoring.rules.v1` (keyed by the project id),
/// answering 202 once Kafka
/// has acknowledged it. Every scorer instance then switches to it. A version names one rule
/// set: reusing the version in force for other content is a 409; resending the rules in force
/// publishes them again, which changes nothing.
async fn put_scoring_rules<P: Publisher>(
    State(state): State<Arc<WriteState<P>>>,
    caller: Caller,
    JsonBody(body): JsonBody<RULES_BODY_LIMIT>,
) -> Result<(StatusCode, Json<RulesPublished>), AppError> {
    let caller = caller.in_project(Scope::Admin)?;
    let mut rules = validation::validate_scoring_rules(&body).map_err(|errors| {
        state.count_rejected(&errors);
        AppError::invalid_fields(errors)
    })?;
    rules.project_id = caller.project_id.clone();
    {
        let in_force = state.rules.borrow().for_project(&caller.project_id);
        if in_force.rules.version == rules.version && *in_force.rules != rules {
            return Err(AppError::conflict(
                "version",
                format!(
                    "version {:?} already names the rule set in force, with other content; a version \
                     names one rule set; pick a new version",
                    rules.version
                ),
            ));
        }
    }
    match state.publish(std::slice::from_ref(&rules)).await.remove(0) {
        Ok(()) => {
            tracing::info!(project = %rules.project_id, version = %rules.version, "scoring rules published");
            Ok((StatusCode::ACCEPTED, Json(RulesPublished { version: rules.version, status: "published" })))
        }
        Err(e) => Err(state.publish_failure(&e)),
    }
}

#[cfg(test)]
mod tests;
