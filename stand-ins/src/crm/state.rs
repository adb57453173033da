//! The CRM's contacts and the stand-in's judgement of each request (burst limit, injected
//! failure, dropped connection), with the counters `/__admin/stats` reports. Time is passed in, so
//! the burst window's rules are tested without waiting.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::batch::Upsert;
use super::faults::Faults;

/// The counters `GET /__admin/stats` returns, since start or the last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Every request to the upsert endpoint, whatever its answer.
    pub requests: u64,
    /// Inputs in applied requests (answered 200, or dropped after the write).
    pub inputs: u64,
    /// Inputs that created a contact or raised its version.
    pub applied_writes: u64,
    /// Inputs whose idempotency key came in an earlier applied request.
    pub repeated_idempotency_keys: u64,
    pub rate_limited: u64,
    pub injected_errors: u64,
    pub dropped_connections: u64,
}

/// One contact as `GET /__admin/contacts` shows it: the properties of the highest version seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub version: u64,
    pub properties: Map<String, Value>,
    /// How many inputs changed this contact (its creation included).
    pub writes: u64,
    /// When the last input changed it, as HubSpot's `updatedAt`: what end-to-end benchmarks
    /// time the CRM hop by.
    #[serde(rename = "updatedAt", with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One entry of a 200's `results`: `version` is the contact's version after the input, so a stale
/// input shows the newer one it lost to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpsertResult {
    pub id: String,
    pub version: u64,
    pub new: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    RateLimited { retry_after_s: u64 },
    Injected,
    Admitted,
}

#[derive(Debug)]
pub struct Crm {
    faults: Faults,
    window_start: Instant,
    used_in_window: u64,
    /// Requests admitted, and applied, since the faults were set: indices into the fault sequences.
    admitted: u64,
    applied: u64,
    stats: Stats,
    contacts: BTreeMap<String, Contact>,
    seen_keys: HashSet<String>,
}

impl Crm {
    pub fn new(faults: Faults, now: Instant) -> Self {
        Crm {
            faults,
            window_start: now,
            used_in_window: 0,
            admitted: 0,
            applied: 0,
            stats: Stats::default(),
            contacts: BTreeMap::new(),
            seen_keys: HashSet::new(),
        }
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn contacts(&self) -> &BTreeMap<String, Contact> {
        &self.contacts
    }

    /// Replaces the faults and restarts the burst window and fault sequences; contacts and stats
    /// carry on.
    pub fn set_faults(&mut self, faults: Faults, now: Instant) {
        (self.faults, self.window_start, self.used_in_window, self.admitted, self.applied) =
            (faults, now, 0, 0, 0);
    }

    /// Judges one request before its body is read: every request counts against the burst limit.
    pub fn admit(&mut self, now: Instant) -> Admission {
        self.stats.requests += 1;
        let window = Duration::from_millis(self.faults.burst_window_ms.max(1));
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= window {
            // Whole windows, so the schedule holds however long the stand-in sat idle.
            self.window_start = now - Duration::from_nanos((elapsed.as_nanos() % window.as_nanos()) as u64);
            self.used_in_window = 0;
        }
        if self.faults.burst_limit.is_some_and(|limit| self.used_in_window >= limit) {
            self.stats.rate_limited += 1;
            let left = window.saturating_sub(now.saturating_duration_since(self.window_start));
            // Rounded up: a client that waits this long must find a fresh window.
            let retry_after_s = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
            return Admission::RateLimited { retry_after_s };
        }
        self.used_in_window += 1;
        self.admitted += 1;
        if on_sequence(self.admitted, self.faults.error_rate) {
            self.stats.injected_errors += 1;
            return Admission::Injected;
        }
        Admission::Admitted
    }

    /// Applies an admitted, valid batch in order, at `now`; the flag says whether to drop the
    /// connection instead of answering.
    pub fn apply(&mut self, batch: Vec<Upsert>, now: OffsetDateTime) -> (Vec<UpsertResult>, bool) {
        let repeated = batch.iter().filter(|u| self.seen_keys.contains(&u.idempotency_key)).count();
        self.stats.inputs += batch.len() as u64;
        self.stats.repeated_idempotency_keys += repeated as u64;
        let mut results = Vec::with_capacity(batch.len());
        for Upsert { id, version, properties, idempotency_key } in batch {
            self.seen_keys.insert(idempotency_key);
            let new = !self.contacts.contains_key(&id);
            let stored = self.contacts.entry(id.clone()).or_insert_with(|| Contact {
                version,
                properties: Map::new(),
                writes: 0,
                updated_at: now,
            });
            if new || version > stored.version {
                *stored = Contact { version, properties, writes: stored.writes + 1, updated_at: now };
                self.stats.applied_writes += 1;
            }
            results.push(UpsertResult { id, version: stored.version, new });
        }
        self.applied += 1;
        let drop = on_sequence(self.applied, self.faults.drop_after_write_rate);
        self.stats.dropped_connections += u64::from(drop);
        (results, drop)
    }
}

/// The n-th term of the golden-ratio (Weyl) sequence, in 64-bit fixed point, is below `rate`:
/// evenly spread faults, the same on every run.
pub(super) fn on_sequence(n: u64, rate: f64) -> bool {
    let fraction = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) as f64 / 18_446_744_073_709_551_616.0;
    fraction < rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(id: &str, version: u64, key: &str) -> Upsert {
        let properties = Map::from_iter([("leadflow_version".to_owned(), Value::from(version))]);
        Upsert { id: id.into(), version, properties, idempotency_key: key.into() }
    }

    #[test]
    fn the_highest_version_wins_and_a_stale_one_changes_nothing() {
        let mut crm = Crm::new(Faults::default(), Instant::now());
        let (results, _) = crm.apply(
            vec![upsert("a", 2, "a:2"), upsert("a", 1, "a:1"), upsert("a", 3, "a:3")],
            OffsetDateTime::UNIX_EPOCH,
        );
        let versions: Vec<_> = results.iter().map(|r| (r.version, r.new)).collect();
        assert_eq!(versions, [(2, true), (2, false), (3, false)]);
        assert_eq!((crm.contacts()["a"].version, crm.contacts()["a"].writes), (3, 2));
        assert_eq!((crm.stats().inputs, crm.stats().applied_writes), (3, 2));
    }

    #[test]
    fn the_burst_limit_refuses_until_the_window_rolls() {
        let t0 = Instant::now();
        let mut crm =
            Crm::new(Faults { burst_limit: Some(2), burst_window_ms: 10_000, ..Faults::default() }, t0);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(crm.admit(at(0)), Admission::Admitted);
        assert_eq!(crm.admit(at(100)), Admission::Admitted);
        assert_eq!(crm.admit(at(2_500)), Admission::RateLimited { retry_after_s: 8 });
        assert_eq!(crm.admit(at(9_999)), Admission::RateLimited { retry_after_s: 1 });
        assert_eq!(crm.admit(at(35_000)), Admission::Admitted);
        crm.set_faults(Faults { burst_limit: Some(1), ..Faults::default() }, at(35_001));
        assert_eq!(crm.admit(at(35_002)), Admission::Admitted);
        assert_eq!(crm.stats(), Stats { requests: 6, rate_limited: 2, ..Stats::default() });
    }

    #[test]
    fn the_fault_sequence_matches_the_rate() {
        assert!((1..=1000).all(|n| on_sequence(n, 1.0) && !on_sequence(n, 0.0)));
        let hits = (1..=1000).filter(|&n| on_sequence(n, 0.3)).count();
        assert!((290..=310).contains(&hits), "{hits} of 1000 at rate 0.3");
    }
}
