//! The name → prediction cache: an in-process LRU in front of a MongoDB collection whose
//! documents expire after a TTL (a TTL index, and an age check on read for servers that do not
//! expire documents themselves). The cache saves API requests; it never decides an outcome, so
//! when MongoDB is down the predictor asks the API instead.
//!
//! The documents are [`PredictionDoc`]s, declared in `leadflow_core::store::documents` with the
//! collection's default name, `NATIONALIZE_CACHE` (the `cache.collection` setting).

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

#[derive(Clone)]
struct Cached {
    countries: Countries,
    fetched_at: OffsetDateTime,
}

pub struct PredictionCache {
    memory: Mutex<LruCache<String, Cached>>,
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

    pub fn get_memory(&self, name: &str) -> Option<Countries> {
        let now = OffsetDateTime::now_utc();
        let mut memory = self.memory.lock().expect("not poisoned");
        let cached = memory.get(name)?.clone();
        if self.fresh(cached.fetched_at, now) {
            Some(cached.countries)
        } else {
            memory.pop(name);
            None
        }
    }

    /// The unexpired stored predictions among `names`; found ones are kept in memory too.
    pub async fn get_stored(&self, names: &[String]) -> mongodb::error::Result<HashMap<String, Countries>> {
        use futures::TryStreamExt;
        let now = OffsetDateTime::now_utc();
        let oldest =
            bson::DateTime::from_millis(((now - self.ttl).unix_timestamp_nanos() / 1_000_000) as i64);
        let found: Vec<PredictionDoc> = self
            .store
            .find(doc! { "_id": { "$in": names }, "fetchedAt": { "$gt": oldest } })
            .await?
            .try_collect()
            .await?;
        let mut memory = self.memory.lock().expect("not poisoned");
        Ok(found
            .into_iter()
            .map(|stored| {
                let fetched_at = OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(stored.fetched_at.timestamp_millis()) * 1_000_000,
                )
                .unwrap_or(now);
                let countries: Countries = stored
                    .countries
                    .into_iter()
                    .map(|c| CountryProbability { country_id: c.country_id, probability: c.probability })
                    .collect();
                memory.put(stored.name.clone(), Cached { countries: countries.clone(), fetched_at });
                (stored.name, countries)
            })
            .collect())
    }

    /// Keeps fresh predictions in memory, then in MongoDB: one `update` command with an upsert
    /// per name, since a command per name costs a round trip each (and on the local
    /// MongoDB-wire server, a cost that grows with the collection).
    pub async fn put_many(&self, predictions: &[(String, Countries)]) -> mongodb::error::Result<()> {
        if predictions.is_empty() {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        {
            let mut memory = self.memory.lock().expect("not poisoned");
            for (name, countries) in predictions {
                memory.put(name.clone(), Cached { countries: countries.clone(), fetched_at: now });
            }
        }
        let fetched_at = bson::DateTime::now();
        let updates: Vec<bson::Document> = predictions
            .iter()
            .map(|(name, countries)| {
                let stored = PredictionDoc {
                    name: name.clone(),
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
                doc! { "q": { "_id": name }, "u": replacement, "upsert": true }
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
