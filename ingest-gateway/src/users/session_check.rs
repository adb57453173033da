//! The dashboard's sessions as the credential check sees them ([`SessionCheck`]): a valid
//! session cookie is the user, with their projects as stored now (cached per replica for
//! `auth.cache_ttl`, so a user taken out of a project loses it within that bound); an unsafe
//! request must also carry the session's CSRF token.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method};
use futures::future::BoxFuture;

use crate::auth::cache::TtlCache;
use crate::auth::session::{SessionCheck, SessionUser};
use crate::error::AppError;
use crate::users::session::{Claims, SessionKeys, check_csrf, token_from};
use crate::users::store::{UserStore, UserStoreError};

pub struct UserSessions {
    pub keys: SessionKeys,
    store: Arc<dyn UserStore>,
    /// Each user's projects (`None`: no such user any more), by email.
    projects: TtlCache<Option<Vec<String>>>,
    retry_after: Duration,
}

impl UserSessions {
    pub fn new(
        keys: SessionKeys,
        store: Arc<dyn UserStore>,
        cache_ttl: Duration,
        retry_after: Duration,
    ) -> Self {
        UserSessions { keys, store, projects: TtlCache::new(cache_ttl), retry_after }
    }

    /// The claims of the request's session cookie, when it holds a valid, unexpired session.
    pub fn claims(&self, headers: &HeaderMap) -> Option<Claims> {
        token_from(headers).and_then(|token| self.keys.verify(token))
    }

    /// The user's projects as stored at most one cache TTL ago; `None` when the user is gone.
    pub async fn projects_of(&self, email: &str) -> Result<Option<Vec<String>>, AppError> {
        if let Some(found) = self.projects.get(email) {
            return Ok(found);
        }
        let found = self.store.user(email).await.map_err(|e| unavailable(e, self.retry_after))?;
        let projects = found.map(|user| user.projects);
        self.projects.put(email, projects.clone());
        Ok(projects)
    }
}

impl SessionCheck for UserSessions {
    fn check(
        &self,
        headers: &HeaderMap,
        method: &Method,
    ) -> BoxFuture<'_, Result<Option<SessionUser>, AppError>> {
        let Some(claims) = self.claims(headers) else {
            return Box::pin(std::future::ready(Ok(None)));
        };
        // Checked now: the future may not borrow the headers.
        if let Err(refused) = check_csrf(method, headers, &claims) {
            return Box::pin(std::future::ready(Err(refused)));
        }
        Box::pin(async move {
            Ok(self
                .projects_of(&claims.sub)
                .await?
                .map(|projects| SessionUser { email: claims.sub, projects }))
        })
    }
}

pub fn unavailable(error: UserStoreError, retry_after: Duration) -> AppError {
    tracing::warn!(error = %error, "the user store failed");
    match error {
        UserStoreError::Exists => AppError::internal("an unexpected duplicate in the user store"),
        UserStoreError::Unavailable(message) => {
            AppError::unavailable(format!("cannot read the users now: {message}"), retry_after)
        }
    }
}
