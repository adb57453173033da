//! The management API: projects (admin token) and each project's keys (the admin token, or an
//! admin key or dashboard user of that project). A key's text is in the answer that creates it
//! and nowhere else; lists never hold a key or its hash.

pub mod input;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use time::OffsetDateTime;

use crate::auth::AuthState;
use crate::auth::caller::{Caller, no_such_project};
use crate::auth::documents::{ApiKeyDoc, ProjectDoc};
use crate::auth::keys;
use crate::auth::scope::Scope;
use crate::auth::store::StoreError;
use crate::error::{AppError, FieldError};
use crate::write::json_body::JsonBody;

pub const MANAGEMENT_BODY_LIMIT: usize = 32 * 1024;

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<AuthState>: FromRef<S>,
{
    Router::new()
        .route("/api/projects", post(create_project).get(list_projects))
        .route("/api/projects/{id}", get(get_project).patch(patch_project))
        .route("/api/projects/{id}/keys", post(create_key).get(list_keys))
        .route("/api/projects/{id}/keys/{keyId}", axum::routing::delete(revoke_key))
        .route("/api/projects/{id}/keys/{keyId}/rotate", post(rotate_key))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectAnswer {
    pub id: String,
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub events_per_minute: Option<u32>,
    /// Segment event names → event types, for the `/v1` API.
    pub event_types: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<ProjectDoc> for ProjectAnswer {
    fn from(p: ProjectDoc) -> Self {
        ProjectAnswer {
            id: p.id,
            name: p.name,
            allowed_origins: p.allowed_origins,
            events_per_minute: p.events_per_minute,
            event_types: p.event_types,
            created_at: p.created_at,
        }
    }
}

/// What every answer about a key says: never its text or its hash.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyFields {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub events_per_minute: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&ApiKeyDoc> for KeyFields {
    fn from(k: &ApiKeyDoc) -> Self {
        KeyFields {
            id: k.id.clone(),
            project_id: k.project_id.clone(),
            name: k.name.clone(),
            scopes: k.scopes.clone(),
            events_per_minute: k.events_per_minute,
            created_at: k.created_at,
        }
    }
}

/// A key as listed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAnswer {
    #[serde(flatten)]
    pub fields: KeyFields,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<ApiKeyDoc> for KeyAnswer {
    fn from(k: ApiKeyDoc) -> Self {
        KeyAnswer { fields: KeyFields::from(&k), revoked_at: k.revoked_at }
    }
}

/// A key just made: the only answer that holds its text.
#[derive(Serialize)]
pub struct NewKeyAnswer {
    #[serde(flatten)]
    pub fields: KeyFields,
    pub key: String,
}

fn path_error(rejection: PathRejection) -> AppError {
    AppError::invalid_fields(vec![FieldError::new(
        "id",
        "invalid_format",
        format!("the path is not valid: {}", rejection.body_text()),
    )])
}

fn project_path(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    let Path(id) = path.map_err(path_error)?;
    input::checked_project_id("id", &id).map_err(|e| AppError::invalid_fields(vec![e]))?;
    Ok(id)
}

fn key_path(path: Result<Path<(String, String)>, PathRejection>) -> Result<(String, String), AppError> {
    let Path((id, key_id)) = path.map_err(path_error)?;
    input::checked_project_id("id", &id).map_err(|e| AppError::invalid_fields(vec![e]))?;
    Ok((id, key_id))
}

fn no_such_key(key_id: &str) -> AppError {
    AppError::no_such("keyId", format!("no key {key_id:?} in this project"))
}

impl AuthState {
    /// The project as stored now, or a 404.
    async fn existing_project(&self, id: &str) -> Result<ProjectDoc, AppError> {
        self.store.project(id).await.map_err(|e| self.unavailable(e))?.ok_or_else(|| no_such_project(id))
    }

    /// Makes and stores a new key; the answer holds its text.
    async fn issue_key(
        &self,
        project_id: &str,
        name: String,
        scopes: Vec<Scope>,
        events_per_minute: Option<u32>,
    ) -> Result<NewKeyAnswer, AppError> {
        let made = keys::generate().map_err(|e| AppError::internal(e.to_string()))?;
        let doc = ApiKeyDoc {
            id: made.id.clone(),
            project_id: project_id.to_owned(),
            name,
            scopes,
            events_per_minute,
            hash: made.hash,
            created_at: OffsetDateTime::now_utc(),
            revoked_at: None,
        };
        // A 48-bit id collides with another key's about never; if it does, the insert refuses it.
        self.store.insert_key(doc.clone()).await.map_err(|e| self.unavailable(e))?;
        tracing::info!(project = project_id, key = %doc.id, "API key created");
        Ok(NewKeyAnswer { fields: KeyFields::from(&doc), key: made.text.expose().to_owned() })
    }
}

/// `POST /api/projects`.
async fn create_project(
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    JsonBody(body): JsonBody<MANAGEMENT_BODY_LIMIT>,
) -> Result<(StatusCode, Json<ProjectAnswer>), AppError> {
    caller.is_admin()?;
    let new = input::new_project(&body).map_err(AppError::invalid_fields)?;
    let project = ProjectDoc {
        id: new.id,
        name: new.name,
        allowed_origins: new.allowed_origins,
        events_per_minute: new.events_per_minute,
        event_types: new.event_types,
        created_at: OffsetDateTime::now_utc(),
    };
    match auth.store.insert_project(project.clone()).await {
        Ok(()) => {}
        Err(StoreError::Exists) => {
            return Err(AppError::conflict("id", format!("project {:?} exists already", project.id)));
        }
        Err(e) => return Err(auth.unavailable(e)),
    }
    auth.forget_project(&project.id);
    tracing::info!(project = %project.id, "project created");
    Ok((StatusCode::CREATED, Json(project.into())))
}

#[derive(Serialize)]
struct ProjectList {
    projects: Vec<ProjectAnswer>,
}

/// `GET /api/projects`.
async fn list_projects(State(auth): State<Arc<AuthState>>, caller: Caller) -> Result<Response, AppError> {
    caller.is_admin()?;
    let projects = auth.store.projects().await.map_err(|e| auth.unavailable(e))?;
    Ok(Json(ProjectList { projects: projects.into_iter().map(ProjectAnswer::from).collect() })
        .into_response())
}

/// `GET /api/projects/{id}`.
async fn get_project(
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ProjectAnswer>, AppError> {
    let id = project_path(path)?;
    caller.manages(&id)?;
    Ok(Json(auth.existing_project(&id).await?.into()))
}

/// `PATCH /api/projects/{id}`.
async fn patch_project(
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<MANAGEMENT_BODY_LIMIT>,
) -> Result<Json<ProjectAnswer>, AppError> {
    caller.is_admin()?;
    let id = project_path(path)?;
    let changes = input::project_changes(&body).map_err(AppError::invalid_fields)?;
    let updated = auth.store.update_project(&id, changes).await.map_err(|e| auth.unavailable(e))?;
    auth.forget_project(&id);
    Ok(Json(updated.ok_or_else(|| no_such_project(&id))?.into()))
}

/// `POST /api/projects/{id}/keys`.
async fn create_key(
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<MANAGEMENT_BODY_LIMIT>,
) -> Result<(StatusCode, Json<NewKeyAnswer>), AppError> {
    let id = project_path(path)?;
    caller.manages(&id)?;
    let request = input::new_key(&body).map_err(AppError::invalid_fields)?;
    auth.existing_project(&id).await?;
    let made = auth.issue_key(&id, request.name, request.scopes, request.events_per_minute).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

#[derive(Serialize)]
struct KeyList {
    keys: Vec<KeyAnswer>,
}

/// `GET /api/projects/{id}/keys`.
async fn list_keys(
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let id = project_path(path)?;
    caller.manages(&id)?;
    auth.existing_project(&id).await?;
    let keys = auth.store.keys(&id).await.map_err(|e| auth.unavailable(e))?;
    Ok(Json(KeyList { keys: keys.into_iter().map(KeyAnswer::from).collect() }).into_response())
}

/// `DELETE /api/projects/{id}/keys/{keyId}`: revokes; revoking a revoked key changes nothing.
async fn revoke_key(
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, AppError> {
    let (id, key_id) = key_path(path)?;
    caller.manages(&id)?;
    let found = auth
        .store
        .revoke_key(&id, &key_id, OffsetDateTime::now_utc())
        .await
        .map_err(|e| auth.unavailable(e))?;
    auth.forget_key(&key_id);
    if !found {
        return Err(no_such_key(&key_id));
    }
    tracing::info!(project = %id, key = %key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/projects/{id}/keys/{keyId}/rotate`: a new key with the same name, scopes and
/// limit; the old one is revoked once the new one is stored.
async fn rotate_key(
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(StatusCode, Json<NewKeyAnswer>), AppError> {
    let (id, key_id) = key_path(path)?;
    caller.manages(&id)?;
    let old = auth
        .store
        .key(&key_id)
        .await
        .map_err(|e| auth.unavailable(e))?
        .filter(|k| k.project_id == id)
        .ok_or_else(|| no_such_key(&key_id))?;
    if old.revoked_at.is_some() {
        return Err(AppError::conflict(
            "keyId",
            format!("key {key_id:?} is revoked; create a new key instead"),
        ));
    }
    let made = auth.issue_key(&id, old.name, old.scopes, old.events_per_minute).await?;
    auth.store.revoke_key(&id, &key_id, OffsetDateTime::now_utc()).await.map_err(|e| auth.unavailable(e))?;
    auth.forget_key(&key_id);
    tracing::info!(project = %id, old = %key_id, new = %made.fields.id, "API key rotated");
    Ok((StatusCode::CREATED, Json(made)))
}

#[cfg(test)]
mod tests;
