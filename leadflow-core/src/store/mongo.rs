//! The MongoDB client every service builds the same way.

use std::fmt;
use std::time::Duration;

use mongodb::bson::{self, Document, doc};
use mongodb::{Client, Database};
use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    /// A connection string, which may hold a password (`mongodb://user:pass@host/`): print
    /// [`MongoConfig::redacted_uri`], never this. The driver's own errors leave it out.
    pub uri: String,
    pub database: String,
}

impl MongoConfig {
    /// The URI with its password and any credential options as `***`.
    pub fn redacted_uri(&self) -> String {
        redact_uri(&self.uri)
    }
}

/// The password stays out of logs.
impl fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConfig")
            .field("uri", &self.redacted_uri())
            .field("database", &self.database)
            .finish()
    }
}

/// `scheme://user:password@hosts/db?options`: the password, and the value of any option that
/// carries a credential (`tlsCertificateKeyFilePassword`, `authMechanismProperties`), become
/// `***`. Userinfo ends at the last `@` before the options, as the driver reads it.
fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else { return "***".to_owned() };
    let (before_options, options) = match rest.split_once('?') {
        Some((before, options)) => (before, Some(options)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}://");
    match before_options.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => out.push_str(&format!("{user}:***@")),
                None => out.push_str(&format!("{userinfo}@")),
            }
            out.push_str(hosts);
        }
        None => out.push_str(before_options),
    }
    if let Some(options) = options {
        let options: Vec<String> = options
            .split('&')
            .map(|option| match option.split_once('=') {
                Some((name, _)) if is_credential_option(name) => format!("{name}=***"),
                _ => option.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&options.join("&"));
    }
    out
}

fn is_credential_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("password") || name == "authmechanismproperties"
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

/// One batch's writes to commit together: new documents to insert (each collection's in one
/// `insert_many`, a duplicate `_id` a conflict) and documents to replace only if they are still at
/// the version the batch read (0: create).
#[derive(Default)]
pub struct BatchCommit {
    inserts: Vec<(&'static str, Vec<Document>)>,
    versioned: Option<(&'static str, Vec<Document>)>,
}

impl BatchCommit {
    /// Inserts `documents` into `collection`.
    pub fn insert<T: serde::Serialize>(mut self, collection: &'static str, documents: &[T]) -> Self {
        if !documents.is_empty() {
            let documents =
                documents.iter().map(|d| bson::to_document(d).expect("a document serialises to BSON"));
            self.inserts.push((collection, documents.collect()));
        }
        self
    }

    /// Replaces each document of `collection` keyed `_id` if its `version` is still the one it was
    /// read at; one read at 0 is created. Each document carries its new version itself.
    pub fn replace_versioned<T: serde::Serialize>(
        mut self,
        collection: &'static str,
        documents: impl IntoIterator<Item = (String, T, u64)>,
    ) -> Self {
        let updates: Vec<Document> = documents
            .into_iter()
            .map(|(id, document, read_version)| {
                let replacement = bson::to_document(&document).expect("a document serialises to BSON");
                doc! {
                    "q": { "_id": id, "version": read_version as i64 },
                    "u": replacement,
                    "upsert": read_version == 0,
                }
            })
            .collect();
        if !updates.is_empty() {
            self.versioned = Some((collection, updates));
        }
        self
    }

    /// Writes everything in one MongoDB transaction. A duplicate `_id` or a document no longer at
    /// the version read is a [`StoreError::Conflict`], and nothing is written.
    pub async fn commit(self, client: &Client, database: &Database) -> Result<(), StoreError> {
        if self.inserts.is_empty() && self.versioned.is_none() {
            return Ok(());
        }
        let mut session = client.start_session().await?;
        session.start_transaction().await?;
        let written = async {
            for (collection, documents) in &self.inserts {
                database
                    .collection::<Document>(collection)
                    .insert_many(documents)
                    .session(&mut session)
                    .await?;
            }
            let Some((collection, updates)) = &self.versioned else { return Ok(None) };
            let command = doc! { "update": *collection, "updates": updates, "ordered": true };
            let reply = database.run_command(command).session(&mut session).await?;
            Ok::<_, mongodb::error::Error>(Some((reply, updates.len())))
        }
        .await;
        let reply = match written {
            Ok(reply) => reply,
            Err(e) => {
                let _ = session.abort_transaction().await;
                return Err(StoreError::classify(e));
            }
        };
        if let Some((reply, expected)) = reply
            && let Err(conflict) = expect_all_matched(&reply, expected, "version")
        {
            let _ = session.abort_transaction().await;
            return Err(conflict);
        }
        session.commit_transaction().await.map_err(StoreError::classify)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(uri: &str) -> MongoConfig {
        MongoConfig { uri: uri.to_owned(), database: "leadflow".to_owned() }
    }

    #[test]
    fn the_password_never_prints() {
        let with_password =
            config("mongodb://app:p%40ss@mongo-1:27017,mongo-2:27017/leadflow?replicaSet=rs0");
        assert_eq!(
            with_password.redacted_uri(),
            "mongodb://app:***@mongo-1:27017,mongo-2:27017/leadflow?replicaSet=rs0"
        );
        assert!(!format!("{with_password:?}").contains("p%40ss"));
        assert_eq!(config("mongodb://127.0.0.1:27017").redacted_uri(), "mongodb://127.0.0.1:27017");
        assert_eq!(
            config("mongodb://app@h/?authSource=admin").redacted_uri(),
            "mongodb://app@h/?authSource=admin"
        );
        assert_eq!(
            config("mongodb://h/?tls=true&tlsCertificateKeyFilePassword=k3y").redacted_uri(),
            "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***"
        );
        assert_eq!(config("not a uri with s3cret").redacted_uri(), "***");
    }
}
