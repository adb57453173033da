//! Webhook subscriptions (`/api/webhooks`): made, listed and deleted here, stored in MongoDB's
//! `webhook_endpoints` ([`store`]), where the automator reads them to deliver. A URL is checked
//! against the SSRF rules ([`url_check`]) when the subscription is made, and nothing is sent
//! then. The gateway sends one delivery itself, the test ([`sender`]); it shows the delivery
//! log and replays a subscription's undelivered messages after it is fixed.

pub mod handlers;
pub mod input;
pub mod sender;
pub mod store;
pub mod url_check;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use leadflow_core::model::webhook::UrlPolicy;

use crate::error::AppError;
use crate::webhooks::store::{WebhookStore, WebhookStoreError};

/// What the webhook handlers use.
pub struct WebhooksState {
    pub store: Arc<dyn WebhookStore>,
    /// Where webhooks may go (`[webhooks] allow_loopback_http`, `allow_private`).
    pub policy: UrlPolicy,
    /// The bound on a test delivery's answer.
    pub test_timeout: Duration,
    /// Sent as `Retry-After` with a 503.
    pub retry_after: Duration,
}

/// At most this many subscriptions per project.
pub const MAX_SUBSCRIPTIONS: u64 = 20;

impl WebhooksState {
    pub fn unavailable(&self, error: WebhookStoreError) -> AppError {
        tracing::warn!(error = %error, "webhook store failed");
        AppError::unavailable(error.to_string(), self.retry_after)
    }
}
