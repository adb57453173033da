//! Lead updates as they happen: [`tail`] follows the topics that change what a lead looks like
//! and keeps the newest updates for reconnecting clients; [`sse`] streams them to each client
//! of `GET /api/stream`.

pub mod sse;
pub mod tail;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::live::tail::LiveUpdates;

/// What the stream handler uses.
pub struct LiveState {
    pub updates: Arc<LiveUpdates>,
    /// Cancelled at shutdown: ends the streams, which would otherwise hold the server open.
    pub shutdown: CancellationToken,
}
