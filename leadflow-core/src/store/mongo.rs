//! The MongoDB client every service builds the same way.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    pub uri: String,
    pub database: String,
}

/// A client that gives up on an unreachable server within seconds, not the driver's default
/// 30 s, so that an outage shows up as a prompt error (and, where the caller can, a retry).
pub async fn client(config: &MongoConfig, app_name: &str) -> mongodb::error::Result<mongodb::Client> {
    let mut options = mongodb::options::ClientOptions::parse(&config.uri).await?;
    options.server_selection_timeout = Some(Duration::from_secs(3));
    options.connect_timeout = Some(Duration::from_secs(3));
    options.app_name = Some(app_name.to_owned());
    mongodb::Client::with_options(options)
}

/// MongoDB's error code for a write that breaks a unique index.
pub const DUPLICATE_KEY: i32 = 11000;

/// Why a batch's conditional writes did not all apply.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed a document since the batch read it (a zombie instance, a
    /// rebalance race), or inserted one it meant to create: re-read and redo the batch.
    #[error("a lead changed under this batch: {0}")]
    Conflict(String),
    #[error(transparent)]
    Mongo(#[from] mongodb::error::Error),
}

impl StoreError {
    /// A duplicate key is a conflict (someone else wrote first); anything else is MongoDB's.
    pub fn classify(error: mongodb::error::Error) -> Self {
        if is_duplicate_key(&error) {
            StoreError::Conflict(error.to_string())
        } else {
            StoreError::Mongo(error)
        }
    }
}

pub fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => {
            e.write_errors.as_ref().is_some_and(|w| w.iter().any(|e| e.code == DUPLICATE_KEY))
        }
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// Checks the reply of an `update` command whose updates are each conditional on a document's
/// `check` field (its version or revision): all `expected` must have matched, none failed.
pub fn expect_all_matched(
    reply: &mongodb::bson::Document,
    expected: usize,
    check: &str,
) -> Result<(), StoreError> {
    let matched = reply.get_i32("n").map(i64::from).or_else(|_| reply.get_i64("n")).unwrap_or(-1);
    let write_errors = reply.get_array("writeErrors").map(|a| a.len()).unwrap_or(0);
    if matched != expected as i64 || write_errors > 0 {
        return Err(StoreError::Conflict(format!(
            "{matched} of {expected} leads matched their {check}, {write_errors} write errors"
        )));
    }
    Ok(())
}
