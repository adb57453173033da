//! This process's limits on calls to the prediction API, pure (the clock is passed in): the
//! spacing of requests, and a block set by the server (a 429's Retry-After, or a rate-limit
//! header saying nothing is left). It also keeps what is known of the day's remaining requests,
//! for the gauge. The daily quota itself is counted across replicas, in MongoDB
//! (`crate::quota`), not here.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Spacing between requests; short, part of normal running.
    RequestRate,
    /// The daily quota, shared by every replica, is spent: wait for the next UTC day.
    DailyQuota,
    /// The shared quota cannot be asked (MongoDB unreachable): wait, never send unmetered.
    QuotaUnavailable,
    /// The server said to wait.
    ServerLimit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Granted,
    Wait { for_: Duration, reason: WaitReason },
}

#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next_free: Option<Instant>,
    blocked_until: Option<Instant>,
    quota_remaining: Option<u64>,
    server_remaining: Option<u64>,
}

impl RateLimiter {
    pub fn new(requests_per_second: f64) -> Self {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / requests_per_second),
            next_free: None,
            blocked_until: None,
            quota_remaining: None,
            server_remaining: None,
        }
    }

    /// Takes a request slot, or says how long to wait for one.
    pub fn admit(&mut self, now: Instant) -> Admission {
        if let Some(until) = self.blocked_until.filter(|until| *until > now) {
            return Admission::Wait { for_: until - now, reason: WaitReason::ServerLimit };
        }
        if let Some(next) = self.next_free.filter(|next| *next > now) {
            return Admission::Wait { for_: next - now, reason: WaitReason::RequestRate };
        }
        self.next_free = Some(self.next_free.map_or(now, |next| next.max(now)) + self.interval);
        Admission::Granted
    }

    /// How long from `now` until the request rate lets the next request go (zero if it may go
    /// now). Quota and server blocks are not counted: those pause the stage instead.
    pub fn until_free(&self, now: Instant) -> Duration {
        self.next_free.map_or(Duration::ZERO, |next| next.saturating_duration_since(now))
    }

    /// The server asked for a pause (429 Retry-After, or nothing remaining until its reset).
    pub fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |current| current.max(until)));
    }

    /// What the server's rate-limit headers said was left.
    pub fn observe_server_remaining(&mut self, remaining: u64) {
        self.server_remaining = Some(remaining);
    }

    /// What the shared daily quota said was left after this process's last take of it.
    pub fn observe_quota_remaining(&mut self, remaining: u64) {
        self.quota_remaining = Some(remaining);
    }

    /// The requests left today, as last heard: the smaller of the shared quota's and the
    /// server's count.
    pub fn remaining_today(&self) -> Option<u64> {
        match (self.quota_remaining, self.server_remaining) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_spaced_by_the_rate() {
        let mut limiter = RateLimiter::new(2.0);
        let t0 = Instant::now();
        assert_eq!(limiter.admit(t0), Admission::Granted);
        assert_eq!(
            limiter.admit(t0),
            Admission::Wait { for_: Duration::from_millis(500), reason: WaitReason::RequestRate }
        );
        assert_eq!(limiter.admit(t0 + Duration::from_millis(500)), Admission::Granted);
    }

    #[test]
    fn until_free_is_the_wait_for_the_next_request_slot() {
        let mut limiter = RateLimiter::new(2.0);
        let t0 = Instant::now();
        assert_eq!(limiter.until_free(t0), Duration::ZERO, "nothing sent yet");
        assert_eq!(limiter.admit(t0), Admission::Granted);
        assert_eq!(limiter.until_free(t0 + Duration::from_millis(100)), Duration::from_millis(400));
        assert_eq!(limiter.until_free(t0 + Duration::from_millis(600)), Duration::ZERO);
    }

    #[test]
    fn a_server_block_holds_every_request_until_it_ends() {
        let mut limiter = RateLimiter::new(1000.0);
        let t0 = Instant::now();
        limiter.block_until(t0 + Duration::from_secs(3));
        limiter.block_until(t0 + Duration::from_secs(1)); // an earlier end does not shorten it
        assert_eq!(
            limiter.admit(t0),
            Admission::Wait { for_: Duration::from_secs(3), reason: WaitReason::ServerLimit }
        );
        assert_eq!(limiter.admit(t0 + Duration::from_secs(3)), Admission::Granted);
    }

    #[test]
    fn the_remaining_count_is_the_smaller_of_the_quota_s_and_the_server_s() {
        let mut limiter = RateLimiter::new(1.0);
        assert_eq!(limiter.remaining_today(), None, "nothing heard yet");
        limiter.observe_quota_remaining(100);
        assert_eq!(limiter.remaining_today(), Some(100));
        limiter.observe_server_remaining(7);
        assert_eq!(limiter.remaining_today(), Some(7));
        limiter.observe_quota_remaining(3);
        assert_eq!(limiter.remaining_today(), Some(3));
        let mut no_quota = RateLimiter::new(1.0);
        no_quota.observe_server_remaining(40);
        assert_eq!(no_quota.remaining_today(), Some(40));
    }
}
