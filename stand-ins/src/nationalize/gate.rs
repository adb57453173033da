//! Decides, per request, whether the stand-in answers it or refuses it (bad key, quota spent,
//! injected failure), and keeps the counters `/__admin/stats` reports. Time is passed in, so the
//! window's rules are tested without waiting.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::faults::Faults;

/// What `X-Rate-Limit-Limit` says when no quota is set, so clients always see the headers.
pub const UNLIMITED: u64 = 1_000_000;

/// The counters `GET /__admin/stats` returns, since start or the last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Every request to `/`.
    pub requests: u64,
    /// Names in requests answered 200.
    pub names: u64,
    pub rate_limited: u64,
    pub injected_errors: u64,
    pub successful: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Unauthorized,
    RateLimited,
    Injected,
    Admitted,
}

/// The values of the `X-Rate-Limit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    pub reset_s: u64,
}

#[derive(Debug)]
pub struct Gate {
    faults: Faults,
    window_start: Instant,
    used_in_window: u64,
    /// Admitted requests since the faults were set: the index into the failure sequence.
    admitted: u64,
    stats: Stats,
}

impl Gate {
    pub fn new(faults: Faults, now: Instant) -> Self {
        Gate { faults, window_start: now, used_in_window: 0, admitted: 0, stats: Stats::default() }
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Replaces the faults and starts a new window and failure sequence; the stats carry on.
    pub fn set_faults(&mut self, faults: Faults, now: Instant) {
        let stats = self.stats;
        *self = Gate { stats, ..Gate::new(faults, now) };
    }

    /// Judges one request to `/`. Only admitted requests use up quota and advance the failure
    /// sequence; a refused key is not anyone's quota.
    pub fn judge(&mut self, now: Instant, api_key: Option<&str>) -> (Verdict, RateLimit) {
        self.stats.requests += 1;
        self.roll_window(now);
        let verdict = if self.faults.api_key.as_deref().is_some_and(|key| api_key != Some(key)) {
            Verdict::Unauthorized
        } else if self.faults.quota.is_some_and(|quota| self.used_in_window >= quota) {
            self.stats.rate_limited += 1;
            Verdict::RateLimited
        } else {
            self.used_in_window += 1;
            self.admitted += 1;
            if injected(self.admitted, self.faults.error_rate) {
                self.stats.injected_errors += 1;
                Verdict::Injected
            } else {
                Verdict::Admitted
            }
        };
        (verdict, self.rate_limit(now))
    }

    /// Counts an admitted request that was answered 200 (a malformed one is not).
    pub fn record_success(&mut self, names: usize) {
        self.stats.successful += 1;
        self.stats.names += names as u64;
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.faults.window_s.max(1))
    }

    /// Moves the window forward by whole windows, so resets keep falling on the same schedule
    /// however long the stand-in sat idle.
    fn roll_window(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        let windows = elapsed.as_secs() / self.window().as_secs();
        if windows > 0 {
            self.window_start += Duration::from_secs(windows * self.window().as_secs());
            self.used_in_window = 0;
        }
    }

    fn rate_limit(&self, now: Instant) -> RateLimit {
        let limit = self.faults.quota.unwrap_or(UNLIMITED);
        let left = self.window().saturating_sub(now.saturating_duration_since(self.window_start));
        // Rounded up: a client that waits this long must find a fresh window.
        let reset_s = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
        RateLimit { limit, remaining: limit.saturating_sub(self.used_in_window), reset_s }
    }
}

/// The n-th term of the golden-ratio (Weyl) sequence, in 64-bit fixed point, is below `rate`:
/// evenly spread failures, the same on every run.
fn injected(n: u64, rate: f64) -> bool {
    let fraction = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) as f64 / 18_446_744_073_709_551_616.0;
    fraction < rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(faults: Faults) -> (Gate, Instant) {
        let t0 = Instant::now();
        (Gate::new(faults, t0), t0)
    }

    #[test]
    fn the_quota_is_spent_then_refused_until_the_window_rolls() {
        let (mut g, t0) = gate(Faults { quota: Some(2), window_s: 10, ..Faults::default() });
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        assert_eq!(
            g.judge(at(0.0), None),
            (Verdict::Admitted, RateLimit { limit: 2, remaining: 1, reset_s: 10 })
        );
        assert_eq!(g.judge(at(1.0), None).1.remaining, 0);
        assert_eq!(
            g.judge(at(2.5), None),
            (Verdict::RateLimited, RateLimit { limit: 2, remaining: 0, reset_s: 8 })
        );
        assert_eq!(
            g.judge(at(9.9), None),
            (Verdict::RateLimited, RateLimit { limit: 2, remaining: 0, reset_s: 1 })
        );
        // 35 s is in the fourth window, which started at 30 s.
        assert_eq!(
            g.judge(at(35.0), None),
            (Verdict::Admitted, RateLimit { limit: 2, remaining: 1, reset_s: 5 })
        );
        assert_eq!(g.stats(), Stats { requests: 5, rate_limited: 2, ..Stats::default() });
    }

    #[test]
    fn without_a_quota_the_headers_count_down_from_unlimited() {
        let (mut g, t0) = gate(Faults::default());
        g.judge(t0, None);
        let (verdict, limit) = g.judge(t0, None);
        assert_eq!(verdict, Verdict::Admitted);
        assert_eq!(limit, RateLimit { limit: UNLIMITED, remaining: UNLIMITED - 2, reset_s: 86_400 });
    }

    #[test]
    fn setting_faults_restarts_the_window_but_keeps_the_stats() {
        let (mut g, t0) = gate(Faults { quota: Some(1), ..Faults::default() });
        g.judge(t0, None);
        assert_eq!(g.judge(t0, None).0, Verdict::RateLimited);
        g.set_faults(Faults { quota: Some(1), ..Faults::default() }, t0);
        assert_eq!(g.judge(t0, None).0, Verdict::Admitted);
        assert_eq!(g.stats().requests, 3);
    }

    #[test]
    fn a_wrong_key_is_refused_without_using_quota() {
        let (mut g, t0) = gate(Faults { api_key: Some("k".into()), quota: Some(1), ..Faults::default() });
        assert_eq!(g.judge(t0, None).0, Verdict::Unauthorized);
        assert_eq!(g.judge(t0, Some("x")).0, Verdict::Unauthorized);
        assert_eq!(g.judge(t0, Some("k")).0, Verdict::Admitted);
    }

    #[test]
    fn the_failure_sequence_matches_the_rate() {
        assert!((1..=1000).all(|n| injected(n, 1.0)));
        assert!((1..=1000).all(|n| !injected(n, 0.0)));
        let failures = (1..=1000).filter(|&n| injected(n, 0.3)).count();
        assert!((290..=310).contains(&failures), "{failures} of 1000 at rate 0.3");
    }
}
