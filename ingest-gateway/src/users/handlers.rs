//! `/api/auth/*`: register a user (the admin token, or a project's admin key for its own
//! project), log in (a session cookie and its CSRF token), who am I, log out.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::AuthState;
use crate::auth::caller::Caller;
use crate::auth::scope::Scope;
use crate::error::{AppError, FieldError};
use crate::users::session::{check_csrf, cleared_cookie, session_cookie};
use crate::users::session_check::unavailable;
use crate::users::store::{UserDoc, UserStoreError};
use crate::users::{UsersState, input, password};
use crate::write::json_body::JsonBody;

/// A body of an email, a password of at most 256 characters and a list of project ids.
pub const AUTH_BODY_LIMIT: usize = 16 * 1024;

/// The `/api/auth/*` routes, for a router whose state holds a [`UsersState`] and an [`AuthState`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<UsersState>: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
{
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/me", get(me))
        .route("/api/auth/logout", post(logout))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub email: String,
    pub projects: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedIn {
    pub email: String,
    pub projects: Vec<String>,
    pub csrf_token: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub email: String,
    pub projects: Vec<String>,
    pub csrf_token: String,
}

async fn register(
    State(users): State<Arc<UsersState>>,
    State(auth): State<Arc<AuthState>>,
    caller: Caller,
    body: Result<JsonBody<AUTH_BODY_LIMIT>, AppError>,
) -> Result<Response, AppError> {
    // Who may register comes first: a caller who may not learns nothing from the body's checks.
    may_register(&caller)?;
    let JsonBody(body) = body?;
    let registration = input::registration(&body)?;
    let projects = projects_to_register(&caller, registration.projects)?;
    let mut unknown = Vec::new();
    for (i, id) in projects.iter().enumerate() {
        if auth.project(id).await?.is_none() {
            unknown.push(FieldError::new(
                format!("projects[{i}]"),
                "invalid_value",
                format!("no project {id:?}"),
            ));
        }
    }
    if !unknown.is_empty() {
        return Err(AppError::invalid_fields(unknown));
    }
    let password = registration.password;
    let password_hash = off_the_runtime(move || password::hash(&password)).await?.map_err(|e| {
        tracing::error!(error = %e, "cannot hash a password");
        AppError::internal("cannot hash the password")
    })?;
    let user = UserDoc {
        email: registration.email,
        password_hash,
        projects,
        created_at: mongodb::bson::DateTime::now(),
    };
    let registered = Registered { email: user.email.clone(), projects: user.projects.clone() };
    match users.store.insert(user).await {
        Ok(()) => {}
        Err(UserStoreError::Exists) => {
            return Err(AppError::conflict("email", "a user with this email exists"));
        }
        Err(e) => return Err(unavailable(e, users.retry_after)),
    }
    tracing::info!(projects = ?registered.projects, "registered a dashboard user");
    Ok((StatusCode::CREATED, Json(registered)).into_response())
}

/// The admin token, or a project key with the `admin` scope.
fn may_register(caller: &Caller) -> Result<(), AppError> {
    match caller {
        Caller::Admin => Ok(()),
        Caller::Key(key) if key.scopes.contains(&Scope::Admin) => Ok(()),
        Caller::Key(_) => Err(AppError::forbidden("this key lacks the admin scope")),
        Caller::User(_) => {
            Err(AppError::forbidden("users are registered with the admin token or a project's admin key"))
        }
    }
}

/// The admin token names any existing projects; an admin key registers users of its own
/// project only (`projects` left out, or just that project).
fn projects_to_register(caller: &Caller, asked: Option<Vec<String>>) -> Result<Vec<String>, AppError> {
    match caller {
        Caller::Admin => asked.ok_or_else(|| {
            AppError::invalid_fields(vec![FieldError::new(
                "projects",
                "required",
                "projects is required with the admin token: the ids of the projects the user belongs to",
            )])
        }),
        Caller::Key(key) => match asked {
            None => Ok(vec![key.project_id.clone()]),
            Some(asked) if asked == [key.project_id.clone()] => Ok(asked),
            Some(_) => Err(AppError::forbidden(format!(
                "a project key registers users of its own project only: send projects as [{:?}] or leave it out",
                key.project_id
            ))),
        },
        Caller::User(_) => may_register(caller).map(|()| Vec::new()),
    }
}

async fn login(
    State(users): State<Arc<UsersState>>,
    JsonBody(body): JsonBody<AUTH_BODY_LIMIT>,
) -> Result<Response, AppError> {
    let credentials = input::credentials(&body)?;
    // Before any password is checked: a throttled guess must learn nothing.
    users.throttle.attempt(&credentials.email)?;
    let user = users.store.user(&credentials.email).await.map_err(|e| unavailable(e, users.retry_after))?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let password = credentials.password;
    let matched = off_the_runtime(move || match stored {
        Some(stored) => password::verify(&password, &stored),
        None => Ok(password::verify_against_nobody(&password)),
    })
    .await?;
    let user = match (matched, user) {
        (Ok(true), Some(user)) => user,
        (Ok(_), _) => return Err(invalid_credentials()),
        (Err(e), _) => {
            tracing::error!(error = %e, "a stored user's password hash cannot be read");
            return Err(AppError::internal("the stored account cannot be checked"));
        }
    };
    users.throttle.succeeded(&user.email);
    let now = OffsetDateTime::now_utc();
    let (token, claims) =
        users.sessions.keys.issue(&user.email, now.unix_timestamp() as u64).map_err(|e| {
            tracing::error!(error = %e, "cannot issue a session");
            AppError::internal("cannot start a session")
        })?;
    let expires_at = OffsetDateTime::from_unix_timestamp(claims.exp as i64)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default();
    let body = LoggedIn { email: user.email, projects: user.projects, csrf_token: claims.csrf, expires_at };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::SET_COOKIE, session_cookie(&token, users.sessions.keys.ttl, users.cookie_secure));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The one answer to a wrong password and to an unknown email alike.
pub fn invalid_credentials() -> AppError {
    let mut error = AppError::unauthorized("email or password is wrong");
    error.body.error = "invalid_credentials";
    error
}

fn no_session() -> AppError {
    AppError::unauthorized("no dashboard session: log in with POST /api/auth/login")
}

async fn me(State(users): State<Arc<UsersState>>, headers: HeaderMap) -> Result<Response, AppError> {
    let claims = users.sessions.claims(&headers).ok_or_else(no_session)?;
    let projects = users.sessions.projects_of(&claims.sub).await?.ok_or_else(no_session)?;
    let mut response = Json(Me { email: claims.sub, projects, csrf_token: claims.csrf }).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Clears the cookie. A live session must send its CSRF token, so another site cannot log a
/// person out; without one (expired, or none) there is nothing to protect and it is 204 too.
async fn logout(State(users): State<Arc<UsersState>>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(claims) = users.sessions.claims(&headers) {
        check_csrf(&Method::POST, &headers, &claims)?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cleared_cookie(users.cookie_secure));
    Ok(response)
}

/// argon2 takes tens of milliseconds of CPU by design: not on an async worker.
async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::internal(format!("the password check failed: {e}")))
}

#[cfg(test)]
mod tests;
