//! What one replica remembers of the store, for `auth.cache_ttl`: keys by id, projects by id,
//! and every project's allowed origins. The TTL is the bound on staleness that the design states
//! (a revoked key works on another replica for at most that long); a replica that changes
//! something itself forgets its own entry at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

/// Past this many entries, expired ones are dropped on the next insert, so unknown key ids
/// sent by a scanner cannot grow the map without bound for longer than one TTL.
const SWEEP_AT: usize = 10_000;

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The value read less than one TTL ago, if any.
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().expect("not poisoned");
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: &str, value: V) {
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.len() >= SWEEP_AT {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        entries.insert(key.to_owned(), (Instant::now(), value));
    }

    pub fn forget(&self, key: &str) {
        self.entries.lock().expect("not poisoned").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_for_one_ttl_and_can_be_forgotten() {
        // An hour: a loaded machine can take longer than a short TTL between two lines.
        let cache = TtlCache::new(Duration::from_secs(3600));
        cache.put("k", 1);
        assert_eq!(cache.get("k"), Some(1));
        cache.forget("k");
        assert_eq!(cache.get("k"), None);
        let expired = TtlCache::new(Duration::ZERO);
        expired.put("k", 1);
        assert_eq!(expired.get("k"), None, "a zero TTL keeps nothing");
    }
}
