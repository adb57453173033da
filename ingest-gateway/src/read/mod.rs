//! The read API, from the MongoDB read model that the crm-sink and the scorer write: leads
//! (filtered, sorted, paged by cursor), one lead in full, its score history, its intelligence,
//! and the leaderboard. [`read_query`] checks a request before any query, [`read_store`] runs
//! every query, [`ranking`] orders leads by their score as of now, [`intelligence`] judges a
//! lead's activity, and [`handlers`] shapes the answers.
//!
//! Every read is of the caller's project only (`projectId` in MongoDB, the lead key as `_id`):
//! another project's lead answers 404, exactly as a missing one.
//!
//! Its state holds no publisher: reading never writes, and this half of the API does not
//! depend on the write half.

pub mod handlers;
pub mod intelligence;
pub mod ranking;
pub mod read_query;
pub mod read_store;

use std::time::Duration;

use tokio::sync::watch;

use leadflow_core::stage::rules_feed::RuleBook;

use crate::read::read_store::ReadStore;

/// What the read handlers use.
pub struct ReadState {
    pub reads: ReadStore,
    /// Every project's scoring rules in force, for the effective score and the history's
    /// running total (each lead under its own project's rules).
    pub rules: watch::Receiver<RuleBook>,
    /// Sent as `Retry-After` with a 503 (MongoDB unreachable).
    pub retry_after: Duration,
}
