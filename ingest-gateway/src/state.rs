//! The gateway's state, as the router holds it: one part per layer. Each layer's handlers take
//! only their part (axum's `FromRef`), so the read API and the live stream never reach the
//! publisher, and no layer depends on another to get its state.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;

use crate::auth::AuthState;
use crate::automations::AutomationsState;
use crate::live::LiveState;
use crate::read::ReadState;
use crate::users::UsersState;
use crate::webhooks::WebhooksState;
use crate::write::WriteState;

pub struct AppState<P> {
    pub write: Arc<WriteState<P>>,
    pub read: Arc<ReadState>,
    pub live: Arc<LiveState>,
    /// Credentials, scopes, the rate limit and CORS; every layer's handlers check their caller
    /// through it.
    pub auth: Arc<AuthState>,
    /// Dashboard users: register, login, sessions.
    pub users: Arc<UsersState>,
    /// Automation rules and their executions.
    pub automations: Arc<AutomationsState>,
    /// Webhook subscriptions and their deliveries.
    pub webhooks: Arc<WebhooksState>,
    /// The server-side bound on one request, publishing included.
    pub request_timeout: Duration,
}

// By hand: a derive would require `P: Clone`, and only the `Arc`s are cloned.
impl<P> Clone for AppState<P> {
    fn clone(&self) -> Self {
        AppState {
            write: self.write.clone(),
            read: self.read.clone(),
            live: self.live.clone(),
            auth: self.auth.clone(),
            users: self.users.clone(),
            automations: self.automations.clone(),
            webhooks: self.webhooks.clone(),
            request_timeout: self.request_timeout,
        }
    }
}

impl<P> FromRef<AppState<P>> for Arc<WriteState<P>> {
    fn from_ref(state: &AppState<P>) -> Self {
        state.write.clone()
    }
}

impl<P> FromRef<AppState<P>> for Arc<ReadState> {
    fn from_ref(state: &AppState<P>) -> Self {
        state.read.clone()
    }
}

impl<P> FromRef<AppState<P>> for Arc<LiveState> {
    fn from_ref(state: &AppState<P>) -> Self {
        state.live.clone()
    }
}

impl<P> FromRef<AppState<P>> for Arc<AuthState> {
    fn from_ref(state: &AppState<P>) -> Self {
        state.auth.clone()
    }
}

impl<P> FromRef<AppState<P>> for Arc<UsersState> {
    fn from_ref(state: &AppState<P>) -> Self {
        state.users.clone()
    }
}

impl<P> FromRef<AppState<P>> for Arc<AutomationsState> {
    fn from_ref(state: &AppState<P>) -> Self {
        state.automations.clone()
    }
}

impl<P> FromRef<AppState<P>> for Arc<WebhooksState> {
    fn from_ref(state: &AppState<P>) -> Self {
        state.webhooks.clone()
    }
}
