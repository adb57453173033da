//! Automation rules (`/api/automations`) and the log of their executions. Rules live on the
//! compacted topic `automations.rules.v1`, as the scoring rules live on theirs: the gateway
//! publishes each rule it is given (a delete is a tombstone) and reads the topic back with
//! `leadflow_core::stage::automation_feed::follow`, as every automator does, into the
//! [`AutomationBook`] its reads answer from. A rule it wrote goes into its own book at once, so
//! a read right after a write sees it. The executions are the automator's, read from MongoDB
//! ([`executions`]).

pub mod executions;
pub mod handlers;
pub mod input;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use leadflow_core::stage::automation_feed::AutomationBook;

use crate::automations::executions::ExecutionStore;
use crate::webhooks::store::WebhookStore;

/// At most this many rules per project.
pub const MAX_RULES: usize = 100;

/// What the automation handlers use (the publisher is the write API's).
pub struct AutomationsState {
    /// Every project's rules as read from the topic, plus this gateway's own writes.
    pub book: watch::Sender<AutomationBook>,
    pub executions: Arc<dyn ExecutionStore>,
    /// A `webhook` action must name a subscription of the project.
    pub subscriptions: Arc<dyn WebhookStore>,
    /// Sent as `Retry-After` with a 503.
    pub retry_after: Duration,
}
