//! Where projects, keys and rate-limit states live. [`AuthStore`] is the interface; MongoDB
//! ([`MongoAuthStore`]) is the one every replica shares, and [`MemoryAuthStore`] is the same
//! behaviour in memory for handler tests, which run without a network.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::TryStreamExt;
use futures::future::BoxFuture;
use mongodb::bson::{self, doc};
use mongodb::{Client, Collection};
use time::OffsetDateTime;

use leadflow_core::store::mongo::is_duplicate_key;

use crate::auth::documents::{
    API_KEYS, ApiKeyDoc, PROJECTS, ProjectDoc, RATE_LIMITS, RateLimitDoc, bson_date,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer: the request is answered 503 and may be retried.
    #[error("the auth store is unavailable: {0}")]
    Unavailable(String),
    /// A document with that id exists already.
    #[error("it exists already")]
    Exists,
}

impl From<mongodb::error::Error> for StoreError {
    fn from(error: mongodb::error::Error) -> Self {
        if is_duplicate_key(&error) { StoreError::Exists } else { StoreError::Unavailable(error.to_string()) }
    }
}

impl From<bson::ser::Error> for StoreError {
    fn from(error: bson::ser::Error) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

/// The changes a `PATCH /api/projects/{id}` makes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    /// `Some(None)` clears the project's own limit.
    pub events_per_minute: Option<Option<u32>>,
    /// Replaces the project's whole event-name map.
    pub event_types: Option<BTreeMap<String, String>>,
}

type Answer<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

pub trait AuthStore: Send + Sync + 'static {
    /// Creates the indexes the queries use (idempotent); nothing to do for a store without any.
    fn ensure_indexes(&self) -> Answer<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn project(&self, id: &str) -> Answer<'_, Option<ProjectDoc>>;
    fn projects(&self) -> Answer<'_, Vec<ProjectDoc>>;
    /// [`StoreError::Exists`] when a project has that id.
    fn insert_project(&self, project: ProjectDoc) -> Answer<'_, ()>;
    /// The project after the changes, `None` when there is none.
    fn update_project(&self, id: &str, changes: ProjectChanges) -> Answer<'_, Option<ProjectDoc>>;
    fn key(&self, key_id: &str) -> Answer<'_, Option<ApiKeyDoc>>;
    fn keys(&self, project_id: &str) -> Answer<'_, Vec<ApiKeyDoc>>;
    fn insert_key(&self, key: ApiKeyDoc) -> Answer<'_, ()>;
    /// Marks the key revoked at `at` unless it already is; `false` when the project has no
    /// such key.
    fn revoke_key(&self, project_id: &str, key_id: &str, at: OffsetDateTime) -> Answer<'_, bool>;
    /// The key's GCRA state; `None` before its first counted request.
    fn rate_tat(&self, key_id: &str) -> Answer<'_, Option<i64>>;
    /// Sets the state to `new` if it still is `old` (`None`: absent, so insert); `false` when
    /// another request (on any replica) changed it first.
    fn swap_rate_tat(&self, key_id: &str, old: Option<i64>, new: i64) -> Answer<'_, bool>;
}

#[derive(Clone)]
pub struct MongoAuthStore {
    projects: Collection<ProjectDoc>,
    keys: Collection<ApiKeyDoc>,
    rates: Collection<RateLimitDoc>,
}

impl MongoAuthStore {
    pub fn new(client: Client, database: &str) -> Self {
        let database = client.database(database);
        MongoAuthStore {
            projects: database.collection(PROJECTS),
            keys: database.collection(API_KEYS),
            rates: database.collection(RATE_LIMITS),
        }
    }
}

impl AuthStore for MongoAuthStore {
    /// A project's keys are listed by `projectId`; every other lookup is by `_id`.
    fn ensure_indexes(&self) -> Answer<'_, ()> {
        Box::pin(async move {
            let index = mongodb::IndexModel::builder().keys(doc! { "projectId": 1, "createdAt": 1 }).build();
            self.keys.create_index(index).await?;
            Ok(())
        })
    }

    fn project(&self, id: &str) -> Answer<'_, Option<ProjectDoc>> {
        let id = id.to_owned();
        Box::pin(async move { Ok(self.projects.find_one(doc! { "_id": id }).await?) })
    }

    fn projects(&self) -> Answer<'_, Vec<ProjectDoc>> {
        Box::pin(async move {
            Ok(self.projects.find(doc! {}).sort(doc! { "_id": 1 }).await?.try_collect().await?)
        })
    }

    fn insert_project(&self, project: ProjectDoc) -> Answer<'_, ()> {
        Box::pin(async move {
            self.projects.insert_one(project).await?;
            Ok(())
        })
    }

    fn update_project(&self, id: &str, changes: ProjectChanges) -> Answer<'_, Option<ProjectDoc>> {
        let id = id.to_owned();
        Box::pin(async move {
            let mut set = bson::Document::new();
            if let Some(name) = changes.name {
                set.insert("name", name);
            }
            if let Some(origins) = changes.allowed_origins {
                set.insert("allowedOrigins", origins);
            }
            if let Some(limit) = changes.events_per_minute {
                set.insert("eventsPerMinute", limit.map(i64::from));
            }
            if let Some(event_types) = changes.event_types {
                // As the document stores it (see `ProjectDoc::event_types`).
                let pairs: Vec<bson::Document> = event_types
                    .into_iter()
                    .map(|(name, event_type)| doc! { "name": name, "eventType": event_type })
                    .collect();
                set.insert("eventTypes", pairs);
            }
            if set.is_empty() {
                return Ok(self.projects.find_one(doc! { "_id": id }).await?);
            }
            Ok(self
                .projects
                .find_one_and_update(doc! { "_id": id }, doc! { "$set": set })
                .return_document(mongodb::options::ReturnDocument::After)
                .await?)
        })
    }

    fn key(&self, key_id: &str) -> Answer<'_, Option<ApiKeyDoc>> {
        let key_id = key_id.to_owned();
        Box::pin(async move { Ok(self.keys.find_one(doc! { "_id": key_id }).await?) })
    }

    fn keys(&self, project_id: &str) -> Answer<'_, Vec<ApiKeyDoc>> {
        let project_id = project_id.to_owned();
        Box::pin(async move {
            Ok(self
                .keys
                .find(doc! { "projectId": project_id })
                .sort(doc! { "createdAt": 1, "_id": 1 })
                .await?
                .try_collect()
                .await?)
        })
    }

    fn insert_key(&self, key: ApiKeyDoc) -> Answer<'_, ()> {
        Box::pin(async move {
            self.keys.insert_one(key).await?;
            Ok(())
        })
    }

    fn revoke_key(&self, project_id: &str, key_id: &str, at: OffsetDateTime) -> Answer<'_, bool> {
        let filter = doc! { "_id": key_id, "projectId": project_id };
        Box::pin(async move {
            let mut unrevoked = filter.clone();
            unrevoked.insert("revokedAt", bson::Bson::Null);
            self.keys.update_one(unrevoked, doc! { "$set": { "revokedAt": bson_date(at) } }).await?;
            Ok(self.keys.count_documents(filter).await? > 0)
        })
    }

    fn rate_tat(&self, key_id: &str) -> Answer<'_, Option<i64>> {
        let key_id = key_id.to_owned();
        Box::pin(async move { Ok(self.rates.find_one(doc! { "_id": key_id }).await?.map(|d| d.tat)) })
    }

    fn swap_rate_tat(&self, key_id: &str, old: Option<i64>, new: i64) -> Answer<'_, bool> {
        let key_id = key_id.to_owned();
        Box::pin(async move {
            match old {
                None => match self.rates.insert_one(RateLimitDoc { key_id, tat: new }).await {
                    Ok(_) => Ok(true),
                    Err(e) if is_duplicate_key(&e) => Ok(false),
                    Err(e) => Err(e.into()),
                },
                Some(old) => {
                    let result = self
                        .rates
                        .update_one(doc! { "_id": key_id, "tat": old }, doc! { "$set": { "tat": new } })
                        .await?;
                    Ok(result.matched_count == 1)
                }
            }
        })
    }
}

/// The same contract in memory.
#[derive(Default)]
pub struct MemoryAuthStore {
    projects: Mutex<HashMap<String, ProjectDoc>>,
    keys: Mutex<HashMap<String, ApiKeyDoc>>,
    rates: Mutex<HashMap<String, i64>>,
}

fn ready<'a, T: Send + 'a>(value: Result<T, StoreError>) -> Answer<'a, T> {
    Box::pin(std::future::ready(value))
}

impl AuthStore for MemoryAuthStore {
    fn project(&self, id: &str) -> Answer<'_, Option<ProjectDoc>> {
        ready(Ok(self.projects.lock().unwrap().get(id).cloned()))
    }

    fn projects(&self) -> Answer<'_, Vec<ProjectDoc>> {
        let mut all: Vec<ProjectDoc> = self.projects.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        ready(Ok(all))
    }

    fn insert_project(&self, project: ProjectDoc) -> Answer<'_, ()> {
        let mut projects = self.projects.lock().unwrap();
        if projects.contains_key(&project.id) {
            return ready(Err(StoreError::Exists));
        }
        projects.insert(project.id.clone(), project);
        ready(Ok(()))
    }

    fn update_project(&self, id: &str, changes: ProjectChanges) -> Answer<'_, Option<ProjectDoc>> {
        let mut projects = self.projects.lock().unwrap();
        let updated = projects.get_mut(id).map(|p| {
            if let Some(name) = changes.name {
                p.name = name;
            }
            if let Some(origins) = changes.allowed_origins {
                p.allowed_origins = origins;
            }
            if let Some(limit) = changes.events_per_minute {
                p.events_per_minute = limit;
            }
            if let Some(event_types) = changes.event_types {
                p.event_types = event_types;
            }
            p.clone()
        });
        ready(Ok(updated))
    }

    fn key(&self, key_id: &str) -> Answer<'_, Option<ApiKeyDoc>> {
        ready(Ok(self.keys.lock().unwrap().get(key_id).cloned()))
    }

    fn keys(&self, project_id: &str) -> Answer<'_, Vec<ApiKeyDoc>> {
        let mut keys: Vec<ApiKeyDoc> =
            self.keys.lock().unwrap().values().filter(|k| k.project_id == project_id).cloned().collect();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        ready(Ok(keys))
    }

    fn insert_key(&self, key: ApiKeyDoc) -> Answer<'_, ()> {
        let mut keys = self.keys.lock().unwrap();
        if keys.contains_key(&key.id) {
            return ready(Err(StoreError::Exists));
        }
        keys.insert(key.id.clone(), key);
        ready(Ok(()))
    }

    fn revoke_key(&self, project_id: &str, key_id: &str, at: OffsetDateTime) -> Answer<'_, bool> {
        let mut keys = self.keys.lock().unwrap();
        let found = keys.get_mut(key_id).filter(|k| k.project_id == project_id).map(|k| {
            k.revoked_at.get_or_insert(at);
        });
        ready(Ok(found.is_some()))
    }

    fn rate_tat(&self, key_id: &str) -> Answer<'_, Option<i64>> {
        ready(Ok(self.rates.lock().unwrap().get(key_id).copied()))
    }

    fn swap_rate_tat(&self, key_id: &str, old: Option<i64>, new: i64) -> Answer<'_, bool> {
        let mut rates = self.rates.lock().unwrap();
        let current = rates.get(key_id).copied();
        let swapped = current == old;
        if swapped {
            rates.insert(key_id.to_owned(), new);
        }
        ready(Ok(swapped))
    }
}
