//! The webhook subscriptions' handlers and the routes they serve. Reads need the `read`
//! scope, every write `admin`; each names the caller's project, so another project's
//! subscription is a 404 as if it did not exist.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use leadflow_core::model::webhook::payload::{EventKind, test_body};
use leadflow_core::model::webhook::{WebhookSecret, message_id};
use leadflow_core::store::documents::{
    DeliveryAttempt, DeliveryDoc, DeliveryState, DeliveryTarget, WebhookEndpointDoc,
};

use crate::auth::AuthState;
use crate::auth::caller::Caller;
use crate::auth::scope::Scope;
use crate::error::{AppError, FieldError};
use crate::ids::slug_from_path;
use crate::read::handlers::bad_query;
use crate::read::read_query::{known_once, limit};
use crate::webhooks::sender::{self, Attempt};
use crate::webhooks::store::TEST_PARTITION;
use crate::webhooks::url_check;
use crate::webhooks::views::{Created, Delivery, Subscription, epoch_ms};
use crate::webhooks::{MAX_SUBSCRIPTIONS, WebhooksState, input};
use crate::write::json_body::JsonBody;

pub const WEBHOOK_BODY_LIMIT: usize = 16 * 1024;
pub const DEFAULT_DELIVERIES_LIMIT: u32 = 50;
pub const MAX_DELIVERIES_LIMIT: u32 = 200;

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<WebhooksState>: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
{
    Router::new()
        .route("/api/webhooks", get(list_subscriptions).post(create_subscription))
        .route("/api/webhooks/{id}", get(get_subscription).delete(delete_subscription))
        .route("/api/webhooks/{id}/test", post(test_subscription))
        .route("/api/webhooks/{id}/deliveries", get(list_deliveries))
        .route("/api/webhooks/{id}/replay", post(replay_subscription))
}

fn no_such_subscription(id: &str) -> AppError {
    AppError::no_such("id", format!("no webhook subscription {id:?}"))
}

impl WebhooksState {
    async fn subscription(&self, project_id: &str, id: &str) -> Result<WebhookEndpointDoc, AppError> {
        self.store
            .endpoint(project_id, id)
            .await
            .map_err(|e| self.unavailable(e))?
            .ok_or_else(|| no_such_subscription(id))
    }
}

/// `POST /api/webhooks`: checked (fields, the count, then the URL and the addresses it
/// resolves to), stored, and answered with its secret, the only time it is shown. Nothing is
/// sent to the URL.
async fn create_subscription(
    State(state): State<Arc<WebhooksState>>,
    caller: Caller,
    JsonBody(body): JsonBody<WEBHOOK_BODY_LIMIT>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let project_id = caller.in_project(Scope::Admin)?.project_id;
    let input = input::subscription(&body).map_err(AppError::invalid_fields)?;
    let count = state.store.count_endpoints(&project_id).await.map_err(|e| state.unavailable(e))?;
    if count >= MAX_SUBSCRIPTIONS {
        return Err(AppError::conflict(
            "url",
            format!("a project has at most {MAX_SUBSCRIPTIONS} webhook subscriptions; delete one first"),
        ));
    }
    let checked = url_check::check(&input.url, state.policy).await.map_err(|refusal| {
        AppError::invalid_fields(vec![FieldError::new(
            "url",
            "invalid_value",
            format!("url is refused: {refusal}"),
        )])
    })?;
    let secret = WebhookSecret::generate().map_err(|e| AppError::internal(e.to_string()))?;
    let doc = WebhookEndpointDoc {
        id: uuid::Uuid::new_v4().hyphenated().to_string(),
        project_id,
        // As `check_url` normalised it: the form the automator will call.
        url: checked.url.to_string(),
        event_kinds: input.event_kinds,
        description: input.description,
        secret: secret.expose(),
        enabled: true,
        disabled_reason: None,
        disabled_at_ms: None,
        failing_since_ms: None,
        created_at_ms: epoch_ms(OffsetDateTime::now_utc()),
    };
    state.store.insert_endpoint(doc.clone()).await.map_err(|e| state.unavailable(e))?;
    tracing::info!(project = %doc.project_id, subscription = %doc.id, "webhook subscription created");
    Ok((StatusCode::CREATED, Json(Created { subscription: Subscription::from(&doc), secret: doc.secret })))
}

async fn list_subscriptions(
    State(state): State<Arc<WebhooksState>>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, AppError> {
    let project_id = caller.in_project(Scope::Read)?.project_id;
    let found = state.store.endpoints(&project_id).await.map_err(|e| state.unavailable(e))?;
    let webhooks: Vec<Subscription> = found.iter().map(Subscription::from).collect();
    Ok(Json(json!({ "webhooks": webhooks })))
}

async fn get_subscription(
    State(state): State<Arc<WebhooksState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Subscription>, AppError> {
    let project_id = caller.in_project(Scope::Read)?.project_id;
    let id = slug_from_path(path)?;
    Ok(Json(Subscription::from(&state.subscription(&project_id, &id).await?)))
}

/// Deletes the subscription; its pending deliveries become `dropped`, and rules naming it
/// record `subscription_not_found` from then on.
async fn delete_subscription(
    State(state): State<Arc<WebhooksState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, AppError> {
    let project_id = caller.in_project(Scope::Admin)?.project_id;
    let id = slug_from_path(path)?;
    if !state.store.delete_endpoint(&project_id, &id).await.map_err(|e| state.unavailable(e))? {
        return Err(no_such_subscription(&id));
    }
    tracing::info!(project = %project_id, subscription = %id, "webhook subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestAnswer {
    pub delivery_id: String,
    pub outcome: &'static str,
    pub response_code: Option<u16>,
    pub latency_ms: u64,
}

/// `POST /api/webhooks/{id}/test`: one signed `webhook.test` delivery now, to the addresses
/// the URL resolves to at this moment (checked again), recorded in the delivery log as one
/// attempt, never retried.
async fn test_subscription(
    State(state): State<Arc<WebhooksState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TestAnswer>, AppError> {
    let project_id = caller.in_project(Scope::Admin)?.project_id;
    let id = slug_from_path(path)?;
    let endpoint = state.subscription(&project_id, &id).await?;
    let secret = WebhookSecret::parse(&endpoint.secret)
        .map_err(|e| AppError::internal(format!("the subscription's stored secret is unusable: {e}")))?;
    let now = OffsetDateTime::now_utc();
    let delivery_id = message_id(&format!("test/{}/{}", endpoint.id, uuid::Uuid::new_v4()));
    let body = test_body(&project_id, &endpoint.id, now);
    let attempt = match url_check::check(&endpoint.url, state.policy).await {
        Ok(target) => {
            sender::send(
                &target,
                &secret,
                &delivery_id,
                now.unix_timestamp(),
                body.clone(),
                state.test_timeout,
            )
            .await
        }
        Err(refusal) => Attempt::refused(&refusal.to_string()),
    };
    let delivered = attempt.outcome == "succeeded";
    let attempted_at_ms = epoch_ms(now);
    let doc = DeliveryDoc {
        id: delivery_id.clone(),
        endpoint_id: endpoint.id.clone(),
        project_id: project_id.clone(),
        target: DeliveryTarget::Webhook,
        partition: TEST_PARTITION,
        kind: EventKind::WebhookTest.name().to_owned(),
        body,
        state: if delivered { DeliveryState::Delivered } else { DeliveryState::Failed },
        attempt_count: 1,
        scheduled_attempts: 1,
        next_attempt_at_ms: attempted_at_ms,
        attempts: vec![DeliveryAttempt {
            attempted_at_ms,
            outcome: attempt.outcome.to_owned(),
            response_code: attempt.response_code,
            latency_ms: attempt.latency_ms,
            error: attempt.error.clone(),
        }],
        created_at_ms: attempted_at_ms,
        delivered_at_ms: delivered.then(|| attempted_at_ms + i64::try_from(attempt.latency_ms).unwrap_or(0)),
        execution_key: None,
    };
    state.store.insert_delivery(doc).await.map_err(|e| state.unavailable(e))?;
    tracing::info!(project = %project_id, subscription = %id, outcome = attempt.outcome, "webhook test sent");
    Ok(Json(TestAnswer {
        delivery_id,
        outcome: attempt.outcome,
        response_code: attempt.response_code,
        latency_ms: attempt.latency_ms,
    }))
}

/// `?limit=` (1 to 200, default 50).
fn deliveries_limit(pairs: &[(String, String)]) -> Result<u32, Vec<FieldError>> {
    let pairs = known_once(pairs, &["limit"])?;
    match pairs.first() {
        Some((_, value)) => limit(value, MAX_DELIVERIES_LIMIT).map_err(|e| vec![e]),
        None => Ok(DEFAULT_DELIVERIES_LIMIT),
    }
}

async fn list_deliveries(
    State(state): State<Arc<WebhooksState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let project_id = caller.in_project(Scope::Read)?.project_id;
    let id = slug_from_path(path)?;
    let Query(pairs) = query.map_err(bad_query)?;
    let limit = deliveries_limit(&pairs).map_err(AppError::invalid_fields)?;
    state.subscription(&project_id, &id).await?;
    let found = state.store.deliveries(&project_id, &id, limit).await.map_err(|e| state.unavailable(e))?;
    let deliveries: Vec<Delivery> = found.iter().map(Delivery::from).collect();
    Ok(Json(json!({ "deliveries": deliveries })))
}

/// `POST /api/webhooks/{id}/replay`: the subscription is enabled again and every undelivered
/// delivery of it (pending, or failed after its whole schedule) is due now, its schedule
/// starting over.
async fn replay_subscription(
    State(state): State<Arc<WebhooksState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let project_id = caller.in_project(Scope::Admin)?.project_id;
    let id = slug_from_path(path)?;
    let now = epoch_ms(OffsetDateTime::now_utc());
    let requeued = state
        .store
        .replay(&project_id, &id, now)
        .await
        .map_err(|e| state.unavailable(e))?
        .ok_or_else(|| no_such_subscription(&id))?;
    tracing::info!(project = %project_id, subscription = %id, requeued, "webhook subscription replayed");
    Ok(Json(json!({ "requeued": requeued })))
}

#[cfg(test)]
mod tests;
