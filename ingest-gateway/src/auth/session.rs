//! The dashboard's session users, as the credential check sees them. `crate::users` (the
//! "users-dashboard" part: users, passwords, login routes) implements [`SessionCheck`] and the
//! gateway plugs it into [`crate::auth::AuthState::sessions`]; until then [`NoSessions`]
//! answers "no session" to every request. The exact interface:
//!
//! ```ignore
//! pub struct SessionUser { pub email: String, pub projects: Vec<String> }
//! pub trait SessionCheck: Send + Sync {
//!     fn check(&self, headers: &HeaderMap, method: &Method)
//!         -> BoxFuture<'_, Result<Option<SessionUser>, AppError>>;
//! }
//! ```
//!
//! `check` is called only when the request carries no `Authorization` or `X-API-Key` header.
//! It reads the `leadflow_session` cookie from `headers`: no cookie (or one that is not a valid,
//! unexpired session) is `Ok(None)`, which the caller answers 401; for an unsafe `method`
//! (POST, PUT, PATCH, DELETE) it also checks `X-CSRF-Token` against the JWT's `csrf` claim
//! and answers `Err(403 csrf_failed)` when it differs. The future may not borrow `headers`:
//! copy the cookie out before the first await. The user's project is then chosen here, from
//! `X-LeadFlow-Project` or the user's only project; a user has `read` and `admin` there.

use axum::http::{HeaderMap, Method};
use futures::future::BoxFuture;

use crate::error::AppError;

/// A signed-in dashboard user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// Lowercased.
    pub email: String,
    /// The projects the user belongs to.
    pub projects: Vec<String>,
}

pub trait SessionCheck: Send + Sync {
    fn check(
        &self,
        headers: &HeaderMap,
        method: &Method,
    ) -> BoxFuture<'_, Result<Option<SessionUser>, AppError>>;
}

/// No dashboard sessions: every request without a key is unauthenticated.
pub struct NoSessions;

impl SessionCheck for NoSessions {
    fn check(&self, _: &HeaderMap, _: &Method) -> BoxFuture<'_, Result<Option<SessionUser>, AppError>> {
        Box::pin(std::future::ready(Ok(None)))
    }
}
