//! The (project, name) → prediction cache: an in-process LRU in front of a MongoDB collection
//! whose documents expire after a TTL (a TTL index, and an age check on read for servers that
//! do not expire documents themselves). The cache saves API requests; it never decides an
//! outcome, so when MongoDB is down the predictor asks the API instead (but the daily quota is
//! counted in MongoDB too: while a quota is set, an outage holds requests back, `crate::quota`).
//!
//! Both levels are keyed by [`LookupKey`], the project and the name: one tenant's lookups must
//! not reveal or shape another's. A cache shared across projects would tell a project, by a hit
//! it did not pay for (a faster answer, an API quota left unspent), that another project had
//! asked about that name, and would hand it answers another project's lookup fetched, as old as
//! that lookup. The LRU's capacity (`cache.memory_entries`) is still shared: a busy project can
//! evict another's entries, which costs that project API requests but shows it nothing.
//!
//! The documents are [`PredictionDoc`]s, declared in `leadflow_core::store::documents` with the
//! collection's default name, `NATIONALIZE_CACHE` (the `cache.collection` setting), and their
//! `_id` ([`PredictionDoc::id_of`]): the bare name in the default project, as before projects.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadflow_core::store::documents::{PredictedCountry, PredictionDoc};
use lru::LruCache;
use mongodb::bson::{self, doc};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use time::OffsetDateTime;

use crate::config::CacheConfig;
use crate::rules::CountryProbability;

pub type Countries = Arc<[CountryProbability]>;

/// What a prediction is looked up and cached by: the project that asks, and the name's lookup
/// key (`rules::lookup_key`). See the module doc for why the project is part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupKey {
    pub project: String,
    pub name: String,
}

impl LookupKey {
    pub fn new(project: &str, name: &str) -> Self {
        LookupKey { project: project.to_owned(), name: name.to_owned() }
    }

    /// The `_id` of its stored prediction.
    pub fn stored_id(&self) -> String {
        PredictionDoc::id_of(&self.project, &self.name)
    }
}

#[derive(Clone)]
struct Cached {
    countries: Countries,
    fetched_at: OffsetDateTime,
}

pub struct PredictionCache {
    memory: Mutex<LruCache<LookupKey, Cached>>,
    database: Database,
    store: Collection<PredictionDoc>,
    ttl: Duration,
}

impl PredictionCache {
    pub fn new(database: &Database, config: &CacheConfig) -> Self {
        let capacity = NonZeroUsize::new(config.memory_entries).unwrap_or(NonZeroUsize::MIN);
        PredictionCache {
            memory: Mutex::new(LruCache::new(capacity)),
            database: database.clone(),
            store: database.collection(&config.collection),
            ttl: config.ttl,
        }
    }

    /// The database the cache is kept in; the enricher's other MongoDB state (the shared daily
    /// quota) is kept there too.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Creates the TTL index on `fetchedAt` (a no-op when it exists).
    pub async fn ensure_ttl_index(&self) -> mongodb::error::Result<()> {
        let index = IndexModel::builder()
            .keys(doc! { "fetchedAt": 1 })
            .options(IndexOptions::builder().expire_after(self.ttl).build())
            .build();
        self.store.create_index(index).await.map(|_| ())
    }

    fn fresh(&self, fetched_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        now - fetched_at < self.ttl
    }

    pub fn get_memory(&self, key: &LookupKey) -> Option<Countries> {
        let now = OffsetDateTime::now_utc();
        let mut memory = self.memory.lock().expect("not poisoned");
        let cached = memory.get(key)?.clone();
        if self.fresh(cached.fetched_at, now) {
            Some(cached.countries)
        } else {
            memory.pop(key);
            None
        }
    }

    /// The unexpired stored predictions among `keys`; found ones are kept in memory too.
    pub async fn get_stored(
        &self,
        keys: &[LookupKey],
    ) -> mongodb::error::Result<HashMap<LookupKey, Countries>> {
        use futures::TryStreamExt;
        let now = OffsetDateTime::now_utc();
        let oldest =
            bson::DateTime::from_millis(((now - self.ttl).unix_timestamp_nanos() / 1_000_000) as i64);
        let mut wanted: HashMap<String, &LookupKey> = keys.iter().map(|key| (key.stored_id(), key)).collect();
        let ids: Vec<String> = wanted.keys().cloned().collect();
        let found: Vec<PredictionDoc> = self
            .store
            .find(doc! { "_id": { "$in": ids }, "fetchedAt": { "$gt": oldest } })
            .await?
            .try_collect()
            .await?;
        let mut memory = self.memory.lock().expect("not poisoned");
        Ok(found
            .into_iter()
            .filter_map(|stored| {
                // A document of another project under this id (one written before projects, whose
                // name held a `:`) is not this project's prediction.
                let key = wanted.remove(&stored.id).filter(|key| key.project == stored.project_id)?;
                Some((key.clone(), stored))
            })
            .map(|(key, stored)| {
                let fetched_at = OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(stored.fetched_at.timestamp_millis()) * 1_000_000,
                )
                .unwrap_or(now);
                let countries: Countries = stored
                    .countries
                    .into_iter()
                    .map(|c| CountryProbability { country_id: c.country_id, probability: c.probability })
                    .collect();
                memory.put(key.clone(), Cached { countries: countries.clone(), fetched_at });
                (key, countries)
            })
            .collect())
    }

    /// Keeps fresh predictions in memory, then in MongoDB: one `update` command with an upsert
    /// per name, since a command per name costs a round trip each (and on the local
    /// MongoDB-wire server, a cost that grows with the collection).
    pub async fn put_many(&self, predictions: &[(LookupKey, Countries)]) -> mongodb::error::Result<()> {
        if predictions.is_empty() {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        {
            let mut memory = self.memory.lock().expect("not poisoned");
            for (key, countries) in predictions {
                memory.put(key.clone(), Cached { countries: countries.clone(), fetched_at: now });
            }
        }
        let fetched_at = bson::DateTime::now();
        let updates: Vec<bson::Document> = predictions
            .iter()
            .map(|(key, countries)| {
                let id = key.stored_id();
                let stored = PredictionDoc {
                    id: id.clone(),
                    project_id: key.project.clone(),
                    countries: countries
                        .iter()
                        .map(|c| PredictedCountry {
                            country_id: c.country_id.clone(),
                            probability: c.probability,
                        })
                        .collect(),
                    fetched_at,
                };
                let replacement = bson::to_document(&stored).expect("a prediction serialises to BSON");
                doc! { "q": { "_id": id }, "u": replacement, "upsert": true }
            })
            .collect();
        let reply = self
            .database
            .run_command(doc! { "update": self.store.name(), "updates": updates, "ordered": false })
            .await?;
        match reply.get_array("writeErrors") {
            Ok(errors) if !errors.is_empty() => Err(mongodb::error::Error::custom(format!(
                "{} of {} cache writes failed, first: {}",
                errors.len(),
                predictions.len(),
                errors[0]
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use leadflow_core::runtime::config::{SHARED_DEFAULTS, load};
    use leadflow_core::store::documents::NATIONALIZE_CACHE;

    use crate::config::{DEFAULTS, EnricherConfig};

    #[test]
    fn the_defaults_name_the_declared_collection() {
        let config: EnricherConfig = load(&[SHARED_DEFAULTS, DEFAULTS], None).unwrap();
        assert_eq!(config.cache.collection, NATIONALIZE_CACHE);
    }
}
