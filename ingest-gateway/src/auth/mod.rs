//! Who is calling, and what they may do: projects (tenants), their API keys and scopes, the
//! admin token, dashboard session users (through [`session::SessionCheck`]), the shared rate
//! limit, and CORS per project.
//!
//! - [`caller`]: the [`caller::Caller`] extractor (key, admin token or session user) and the
//!   scope checks (401, 403, and 404 for another project's things).
//! - [`keys`]: key text, generation and verification; [`scope`]: the scopes.
//! - [`store`] and [`documents`]: `projects`, `api_keys`, `rate_limits` in MongoDB.
//! - [`cache`]: what a replica remembers of them, for `auth.cache_ttl`.
//! - [`gcra`] (pure) and [`rate_limit`]: the per-key limit, one budget shared by every replica.
//! - [`cors`]: the allow-list of browser origins, per project.
//! - [`management`]: the management API (projects, keys).

pub mod cache;
pub mod caller;
pub mod config;
pub mod cors;
pub mod documents;
pub mod gcra;
pub mod keys;
pub mod management;
pub mod rate_limit;
pub mod scope;
pub mod session;
pub mod store;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use leadflow_core::contract::project::DEFAULT_PROJECT;
use leadflow_core::runtime::secret::Secret;

use crate::auth::cache::TtlCache;
use crate::auth::config::AuthConfig;
use crate::auth::documents::{ApiKeyDoc, ProjectDoc};
use crate::auth::session::SessionCheck;
use crate::auth::store::{AuthStore, StoreError};
use crate::error::AppError;

/// The largest `eventsPerMinute` a project or a key may set: about 166,000 events/s, above what
/// one replica takes in batches (about 70,000 on this project's 2-core bench machine), so that
/// the ceiling never makes the limiter the bottleneck of a deployment's largest producer.
pub const MAX_EVENTS_PER_MINUTE: u32 = 10_000_000;

/// What authentication, the rate limit, CORS and the management API use.
pub struct AuthState {
    pub store: Arc<dyn AuthStore>,
    /// Dashboard sessions; [`session::NoSessions`] until `crate::users` provides its check.
    pub sessions: Arc<dyn SessionCheck>,
    admin_token: Secret,
    /// How long this replica trusts what it read; also how often an open stream re-checks.
    pub cache_ttl: Duration,
    pub default_events_per_minute: u32,
    /// Sent as `Retry-After` with a 503 (the store unreachable).
    pub retry_after: Duration,
    keys: TtlCache<Option<ApiKeyDoc>>,
    projects: TtlCache<Option<ProjectDoc>>,
    origins: TtlCache<Arc<HashSet<String>>>,
    /// Each key's requests waiting to be counted (`rate_limit`).
    bursts: rate_limit::Bursts,
}

impl AuthState {
    pub fn new(
        config: &AuthConfig,
        store: Arc<dyn AuthStore>,
        sessions: Arc<dyn SessionCheck>,
        retry_after: Duration,
    ) -> Self {
        AuthState {
            store,
            sessions,
            admin_token: config.admin_token.clone(),
            cache_ttl: config.cache_ttl,
            default_events_per_minute: config.default_events_per_minute,
            retry_after,
            keys: TtlCache::new(config.cache_ttl),
            projects: TtlCache::new(config.cache_ttl),
            origins: TtlCache::new(config.cache_ttl),
            bursts: rate_limit::Bursts::default(),
        }
    }

    pub fn is_admin_token(&self, presented: &str) -> bool {
        keys::same_secret(presented, self.admin_token.expose())
    }

    pub fn unavailable(&self, error: StoreError) -> AppError {
        tracing::warn!(error = %error, "the auth store failed");
        match error {
            StoreError::Exists => AppError::internal("an unexpected duplicate in the auth store"),
            StoreError::Unavailable(message) => {
                AppError::unavailable(format!("cannot check the credential now: {message}"), self.retry_after)
            }
        }
    }

    /// The key, as read at most one `cache_ttl` ago.
    pub async fn key(&self, key_id: &str) -> Result<Option<ApiKeyDoc>, AppError> {
        if let Some(found) = self.keys.get(key_id) {
            return Ok(found);
        }
        self.fresh_key(key_id).await
    }

    /// The key as stored now (and cached).
    pub async fn fresh_key(&self, key_id: &str) -> Result<Option<ApiKeyDoc>, AppError> {
        let found = self.store.key(key_id).await.map_err(|e| self.unavailable(e))?;
        self.keys.put(key_id, found.clone());
        Ok(found)
    }

    pub fn forget_key(&self, key_id: &str) {
        self.keys.forget(key_id);
    }

    /// The project, as read at most one `cache_ttl` ago.
    pub async fn project(&self, id: &str) -> Result<Option<ProjectDoc>, AppError> {
        if let Some(found) = self.projects.get(id) {
            return Ok(found);
        }
        let found = self.store.project(id).await.map_err(|e| self.unavailable(e))?;
        self.projects.put(id, found.clone());
        Ok(found)
    }

    pub fn forget_project(&self, id: &str) {
        self.projects.forget(id);
        self.origins.forget("");
    }

    /// Every origin any project allows (what a preflight may be allowed for).
    pub async fn all_origins(&self) -> Result<Arc<HashSet<String>>, AppError> {
        if let Some(found) = self.origins.get("") {
            return Ok(found);
        }
        let projects = self.store.projects().await.map_err(|e| self.unavailable(e))?;
        let origins: Arc<HashSet<String>> =
            Arc::new(projects.into_iter().flat_map(|p| p.allowed_origins).collect());
        self.origins.put("", origins.clone());
        Ok(origins)
    }

    /// Creates the store's indexes and the `default` project unless it exists (at start-up;
    /// every replica may race, and both are idempotent).
    pub async fn ensure_default_project(&self) -> Result<(), StoreError> {
        self.store.ensure_indexes().await?;
        let project = ProjectDoc {
            id: DEFAULT_PROJECT.to_owned(),
            name: DEFAULT_PROJECT.to_owned(),
            allowed_origins: Vec::new(),
            events_per_minute: None,
            event_types: Default::default(),
            created_at: OffsetDateTime::now_utc(),
        };
        match self.store.insert_project(project).await {
            Ok(()) => {
                tracing::info!("created the default project");
                Ok(())
            }
            Err(StoreError::Exists) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
