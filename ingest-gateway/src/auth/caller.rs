//! The credential a request carries, in the order the design gives: `Authorization: Bearer
//! <key>` or `X-API-Key: <key>` (a project key), `Authorization: Bearer <admin token>` (the
//! admin, for the management API only), then the `leadflow_session` cookie (a dashboard user,
//! checked by [`crate::auth::session::SessionCheck`]).
//!
//! A missing, malformed, unknown or revoked credential is a 401 that does not say which. A valid
//! one without the scope a route needs is a 403 naming the scope. Another project's resources
//! are answered 404, exactly as missing ones, never 403: that would confirm they exist.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri, header};

use leadflow_core::contract::project::check_project_id;

use crate::auth::AuthState;
use crate::auth::keys;
use crate::auth::scope::Scope;
use crate::error::{AppError, FieldError};

/// The header that picks a dashboard user's project.
pub const PROJECT_HEADER: &str = "x-leadflow-project";
/// The query parameter that picks it where a browser cannot send headers (`EventSource`, for
/// `GET /api/stream?project=<id>`); the header wins when both are sent.
pub const PROJECT_PARAMETER: &str = "project";
pub const API_KEY_HEADER: &str = "x-api-key";

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The admin token: the management API only.
    Admin,
    Key(KeyCaller),
    User(UserCaller),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCaller {
    pub key_id: String,
    pub project_id: String,
    pub scopes: Vec<Scope>,
    pub events_per_minute: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCaller {
    pub email: String,
    pub projects: Vec<String>,
    /// `X-LeadFlow-Project` (or the `project` query parameter), as sent.
    pub chosen: Option<String>,
}

/// A caller acting in one project, with the scope the route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InProject {
    pub project_id: String,
    /// The key, when the caller is one: the rate limit is per key.
    pub key: Option<KeyCaller>,
}

/// A user has `read` and `admin` in each of their projects, never `ingest`.
pub const USER_SCOPES: [Scope; 2] = [Scope::Read, Scope::Admin];

impl Caller {
    /// The project this caller acts in, for a route that needs `scope`.
    pub fn in_project(&self, scope: Scope) -> Result<InProject, AppError> {
        match self {
            Caller::Admin => Err(AppError::forbidden(format!(
                "the admin token is for the management API (projects and keys) only; use a project key \
                 with the {} scope",
                scope.as_str()
            ))),
            Caller::Key(key) => {
                if !key.scopes.contains(&scope) {
                    return Err(AppError::forbidden(format!("this key lacks the {} scope", scope.as_str())));
                }
                Ok(InProject { project_id: key.project_id.clone(), key: Some(key.clone()) })
            }
            Caller::User(user) => {
                if !USER_SCOPES.contains(&scope) {
                    return Err(AppError::forbidden(format!(
                        "a dashboard user lacks the {} scope; send events with a project key",
                        scope.as_str()
                    )));
                }
                Ok(InProject { project_id: user.project()?, key: None })
            }
        }
    }

    /// May this caller manage (read, change the keys of) `project_id`? The admin token may
    /// manage every project; a key or user only its own, with the `admin` scope. Another
    /// project is a 404, as if it did not exist.
    pub fn manages(&self, project_id: &str) -> Result<(), AppError> {
        let (own, scoped) = match self {
            Caller::Admin => return Ok(()),
            Caller::Key(key) => (key.project_id == project_id, key.scopes.contains(&Scope::Admin)),
            Caller::User(user) => (user.projects.iter().any(|p| p == project_id), true),
        };
        if !own {
            return Err(no_such_project(project_id));
        }
        if !scoped {
            return Err(AppError::forbidden("this key lacks the admin scope"));
        }
        Ok(())
    }

    /// Only the admin token creates, lists and changes projects.
    pub fn is_admin(&self) -> Result<(), AppError> {
        match self {
            Caller::Admin => Ok(()),
            _ => Err(AppError::forbidden("only the admin token may create, list or change projects")),
        }
    }
}

pub fn no_such_project(project_id: &str) -> AppError {
    AppError::no_such("id", format!("no project {project_id:?}"))
}

impl UserCaller {
    /// `X-LeadFlow-Project` when sent (one of the user's), else the user's only project.
    fn project(&self) -> Result<String, AppError> {
        match &self.chosen {
            Some(chosen) if self.projects.contains(chosen) => Ok(chosen.clone()),
            Some(chosen) => {
                Err(AppError::forbidden(format!("this user is not a member of project {chosen:?}")))
            }
            None => match self.projects.as_slice() {
                [only] => Ok(only.clone()),
                [] => Err(AppError::forbidden("this user belongs to no project")),
                _ => Err(AppError::invalid_fields(vec![FieldError::new(
                    "X-LeadFlow-Project",
                    "required",
                    "this user belongs to several projects; name one in the X-LeadFlow-Project header (or \
                     ?project= on the stream)",
                )])),
            },
        }
    }
}

/// The token of `Authorization: Bearer <token>` or `X-API-Key: <token>`; `Ok(None)` when
/// neither header is there.
fn presented(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text =
            value.to_str().map_err(|_| AppError::unauthorized("the Authorization header is not text"))?;
        let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AppError::unauthorized("Authorization must be \"Bearer <key>\""));
        }
        return Ok(Some(token.trim().to_owned()));
    }
    if let Some(value) = headers.get(API_KEY_HEADER) {
        let text = value.to_str().map_err(|_| AppError::unauthorized("the X-API-Key header is not text"))?;
        return Ok(Some(text.trim().to_owned()));
    }
    Ok(None)
}

/// The project a user names: `X-LeadFlow-Project`, else `?project=`; checked as a project id.
fn chosen_project(headers: &HeaderMap, uri: &Uri) -> Result<Option<String>, AppError> {
    let (field, text) = match headers.get(PROJECT_HEADER) {
        Some(value) => ("X-LeadFlow-Project", value.to_str().unwrap_or_default().trim().to_owned()),
        None => {
            let parameter = uri.query().and_then(|query| {
                query.split('&').find_map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (name == PROJECT_PARAMETER).then(|| value.to_owned())
                })
            });
            match parameter {
                Some(text) => (PROJECT_PARAMETER, text),
                None => return Ok(None),
            }
        }
    };
    check_project_id(&text).map_err(|e| {
        AppError::invalid_fields(vec![FieldError::new(field, e.reason(), format!("{field}: {e}"))])
    })?;
    Ok(Some(text))
}

const BAD_CREDENTIAL: &str = "the credential is not valid: unknown, revoked or mistyped";

impl AuthState {
    /// Who sent the request, or the 401/403/503 that answers it.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        method: &Method,
        uri: &Uri,
    ) -> Result<Caller, AppError> {
        match presented(headers)? {
            Some(token) => self.by_token(&token).await,
            None => match self.sessions.check(headers, method).await? {
                Some(user) => {
                    let chosen = chosen_project(headers, uri)?;
                    Ok(Caller::User(UserCaller { email: user.email, projects: user.projects, chosen }))
                }
                None => Err(AppError::unauthorized(
                    "a credential is required: Authorization: Bearer <key>, X-API-Key: <key>, or a dashboard session",
                )),
            },
        }
    }

    /// The caller a presented token names (a project key or the admin token), or the 401; for
    /// credentials that come another way than the headers [`Self::authenticate`] reads (the
    /// Segment API's Basic auth and body `writeKey`).
    pub(crate) async fn by_token(&self, token: &str) -> Result<Caller, AppError> {
        let Some(key_id) = keys::key_id_of(token) else {
            return if self.is_admin_token(token) {
                Ok(Caller::Admin)
            } else {
                Err(AppError::unauthorized(BAD_CREDENTIAL))
            };
        };
        match self.key(key_id).await? {
            Some(key) if key.revoked_at.is_none() && keys::matches(token, &key.hash) => {
                Ok(Caller::Key(KeyCaller {
                    key_id: key.id,
                    project_id: key.project_id,
                    scopes: key.scopes,
                    events_per_minute: key.events_per_minute,
                }))
            }
            _ => Err(AppError::unauthorized(BAD_CREDENTIAL)),
        }
    }

    /// Is the key still valid, as stored now? For an open stream, which re-checks its key.
    pub async fn still_valid(&self, key_id: &str) -> Result<bool, AppError> {
        Ok(self.fresh_key(key_id).await?.is_some_and(|k| k.revoked_at.is_none()))
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<AuthState>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let auth = Arc::<AuthState>::from_ref(state);
        project_from_stream_query(parts);
        let caller = auth.authenticate(&parts.headers, &parts.method, &parts.uri).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A browser's EventSource cannot send headers, so the dashboard names its project on
/// `/api/stream` as `?project=<id>`; it counts as `X-LeadFlow-Project` when that is absent
/// (and is checked as a project id there).
fn project_from_stream_query(parts: &mut Parts) {
    if parts.uri.path() != "/api/stream" || parts.headers.contains_key(PROJECT_HEADER) {
        return;
    }
    let query = parts.uri.query().unwrap_or_default();
    let named = query.split('&').find_map(|pair| pair.strip_prefix("project="));
    if let Some(value) = named.and_then(|p| axum::http::HeaderValue::from_str(p).ok()) {
        parts.headers.insert(PROJECT_HEADER, value);
    }
}
