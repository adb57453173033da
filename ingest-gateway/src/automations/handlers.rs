//! The automation rules' handlers and the routes they serve, and the executions log. Reads need
//! the `read` scope, every write `admin`; each is in the caller's project, so another project's
//! rule is a 404 as if it did not exist. A write answers once Kafka has acknowledged it.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use time::OffsetDateTime;

use leadflow_core::contract::topics;
use leadflow_core::model::automation::AutomationRule;
use leadflow_core::stage::automation_feed::RuleInForce;

use crate::auth::AuthState;
use crate::auth::caller::Caller;
use crate::auth::scope::Scope;
use crate::automations::executions::parse_query;
use crate::automations::{AutomationsState, MAX_RULES, input};
use crate::error::{AppError, FieldError};
use crate::ids::slug_from_path;
use crate::read::handlers::bad_query;
use crate::webhooks::views::epoch_ms;
use crate::write::WriteState;
use crate::write::json_body::JsonBody;
use crate::write::publisher::Publisher;

pub const RULE_BODY_LIMIT: usize = 64 * 1024;

/// The offset of a rule this gateway wrote and has not read back from the topic yet.
const NOT_READ_BACK: i64 = -1;

pub fn routes<P, S>() -> Router<S>
where
    P: Publisher,
    S: Clone + Send + Sync + 'static,
    Arc<WriteState<P>>: FromRef<S>,
    Arc<AutomationsState>: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
{
    Router::new()
        .route("/api/automations", get(list_rules).post(create_rule::<P>))
        .route("/api/automations/executions", get(list_executions))
        .route("/api/automations/{id}", get(get_rule).put(put_rule::<P>).delete(delete_rule::<P>))
}

fn no_such_rule(id: &str) -> AppError {
    AppError::no_such("id", format!("no automation rule {id:?}"))
}

fn rule_answer(rule: &AutomationRule) -> Json<Value> {
    Json(json!({ "rule": rule }))
}

impl AutomationsState {
    fn in_force(&self, project_id: &str, id: &str) -> Option<Arc<AutomationRule>> {
        self.book.borrow().get(project_id, id).map(|r| r.rule.clone())
    }

    /// Each `webhook` action must name a subscription of the rule's project.
    async fn check_subscriptions(&self, rule: &AutomationRule) -> Result<(), AppError> {
        let mut errors = Vec::new();
        for (field, id) in input::subscription_ids(rule) {
            let found = self.subscriptions.endpoint(&rule.project_id, id).await.map_err(|e| {
                tracing::warn!(error = %e, "webhook store failed");
                AppError::unavailable(e.to_string(), self.retry_after)
            })?;
            if found.is_none() {
                errors.push(FieldError::new(
                    field.clone(),
                    "invalid_value",
                    format!("{field} names no webhook subscription of this project: {id:?}"),
                ));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(AppError::invalid_fields(errors)) }
    }

    /// Publishes the rule and puts it in this gateway's book at once.
    async fn publish<P: Publisher>(
        &self,
        write: &WriteState<P>,
        rule: AutomationRule,
    ) -> Result<(), AppError> {
        if let Err(e) = write.publish(std::slice::from_ref(&rule)).await.remove(0) {
            return Err(write.publish_failure(&e));
        }
        tracing::info!(project = %rule.project_id, rule = %rule.id, version = %rule.version, "automation rule published");
        self.book.send_modify(|book| book.set(RuleInForce { rule: Arc::new(rule), offset: NOT_READ_BACK }));
        Ok(())
    }
}

async fn list_rules(
    State(state): State<Arc<AutomationsState>>,
    caller: Caller,
) -> Result<Json<Value>, AppError> {
    let project_id = caller.in_project(Scope::Read)?.project_id;
    let book = state.book.borrow();
    let rules: Vec<&AutomationRule> = book.for_project(&project_id).map(|r| r.rule.as_ref()).collect();
    Ok(Json(json!({ "rules": rules })))
}

async fn get_rule(
    State(state): State<Arc<AutomationsState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let project_id = caller.in_project(Scope::Read)?.project_id;
    let id = slug_from_path(path)?;
    let rule = state.in_force(&project_id, &id).ok_or_else(|| no_such_rule(&id))?;
    Ok(rule_answer(&rule))
}

/// `POST /api/automations`: a new rule; its id must be free in the project.
async fn create_rule<P: Publisher>(
    State(write): State<Arc<WriteState<P>>>,
    State(state): State<Arc<AutomationsState>>,
    caller: Caller,
    JsonBody(body): JsonBody<RULE_BODY_LIMIT>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let project_id = caller.in_project(Scope::Admin)?.project_id;
    let rule = input::rule(&body, &project_id, None).map_err(AppError::invalid_fields)?;
    {
        let book = state.book.borrow();
        if book.get(&project_id, &rule.id).is_some() {
            return Err(AppError::conflict(
                "id",
                format!("a rule {:?} exists already; PUT /api/automations/{} changes it", rule.id, rule.id),
            ));
        }
        if book.for_project(&project_id).count() >= MAX_RULES {
            return Err(AppError::conflict(
                "id",
                format!("a project has at most {MAX_RULES} automation rules; delete one first"),
            ));
        }
    }
    state.check_subscriptions(&rule).await?;
    let answer = rule_answer(&rule);
    state.publish(&write, rule).await?;
    Ok((StatusCode::CREATED, answer))
}

/// `PUT /api/automations/{id}`: the whole rule again. A version names one revision: other
/// content under the version in force is a 409; the rule in force again writes nothing.
async fn put_rule<P: Publisher>(
    State(write): State<Arc<WriteState<P>>>,
    State(state): State<Arc<AutomationsState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<RULE_BODY_LIMIT>,
) -> Result<Json<Value>, AppError> {
    let project_id = caller.in_project(Scope::Admin)?.project_id;
    let id = slug_from_path(path)?;
    let rule = input::rule(&body, &project_id, Some(&id)).map_err(AppError::invalid_fields)?;
    let stored = state.in_force(&project_id, &id).ok_or_else(|| no_such_rule(&id))?;
    if *stored == rule {
        return Ok(rule_answer(&rule));
    }
    if stored.version == rule.version {
        return Err(AppError::conflict(
            "version",
            format!(
                "version {:?} already names the rule in force, with other content; a version names one \
                 revision; pick a new version",
                rule.version
            ),
        ));
    }
    state.check_subscriptions(&rule).await?;
    let answer = rule_answer(&rule);
    state.publish(&write, rule).await?;
    Ok(answer)
}

/// `DELETE /api/automations/{id}`: a tombstone under the rule's key; every reader drops it.
async fn delete_rule<P: Publisher>(
    State(write): State<Arc<WriteState<P>>>,
    State(state): State<Arc<AutomationsState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, AppError> {
    let project_id = caller.in_project(Scope::Admin)?.project_id;
    let id = slug_from_path(path)?;
    if state.in_force(&project_id, &id).is_none() {
        return Err(no_such_rule(&id));
    }
    let key = AutomationRule::topic_key(&project_id, &id);
    write
        .publisher
        .publish_tombstone(topics::AUTOMATION_RULES, &key)
        .await
        .map_err(|e| write.publish_failure(&e))?;
    tracing::info!(project = %project_id, rule = %id, "automation rule deleted");
    state.book.send_modify(|book| book.remove(&project_id, &id));
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/automations/executions`: the project's executions of the last `days`, newest first.
async fn list_executions(
    State(state): State<Arc<AutomationsState>>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let project_id = caller.in_project(Scope::Read)?.project_id;
    let Query(pairs) = query.map_err(bad_query)?;
    let query = parse_query(&pairs).map_err(AppError::invalid_fields)?;
    let now_ms = epoch_ms(OffsetDateTime::now_utc());
    let executions =
        state.executions.executions(&project_id, query.since_ms(now_ms), &query).await.map_err(|e| {
            tracing::warn!(error = %e, "executions read failed");
            AppError::unavailable(e.to_string(), state.retry_after)
        })?;
    Ok(Json(json!({ "executions": executions })))
}

#[cfg(test)]
mod tests;
