//! The client-side limits on calls to the prediction API, pure (the clock is passed in): a
//! request rate, a quota per UTC day, and a block set by the server (a 429's Retry-After, or a
//! rate-limit header saying nothing is left).

use std::time::{Duration, Instant};

use time::{Date, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Spacing between requests; short, part of normal running.
    RequestRate,
    /// The local daily quota is spent: wait for the next UTC day.
    DailyQuota,
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
    daily_quota: Option<u64>,
    day: Date,
    used_today: u64,
    blocked_until: Option<Instant>,
    server_remaining: Option<u64>,
}

impl RateLimiter {
    /// `daily_quota` of `None` means no local quota.
    pub fn new(requests_per_second: f64, daily_quota: Option<u64>, now_utc: OffsetDateTime) -> Self {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / requests_per_second),
            next_free: None,
            daily_quota,
            day: now_utc.date(),
            used_today: 0,
            blocked_until: None,
            server_remaining: None,
        }
    }

    /// Takes a request slot, or says how long to wait for one.
    pub fn admit(&mut self, now: Instant, now_utc: OffsetDateTime) -> Admission {
        if now_utc.date() != self.day {
            self.day = now_utc.date();
            self.used_today = 0;
        }
        if let Some(until) = self.blocked_until.filter(|until| *until > now) {
            return Admission::Wait { for_: until - now, reason: WaitReason::ServerLimit };
        }
        if self.daily_quota.is_some_and(|quota| self.used_today >= quota) {
            return Admission::Wait { for_: until_next_utc_day(now_utc), reason: WaitReason::DailyQuota };
        }
        if let Some(next) = self.next_free.filter(|next| *next > now) {
            return Admission::Wait { for_: next - now, reason: WaitReason::RequestRate };
        }
        self.used_today += 1;
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

    /// The requests left today: the smaller of the local quota's and the server's count.
    pub fn remaining_today(&self) -> Option<u64> {
        let local = self.daily_quota.map(|quota| quota.saturating_sub(self.used_today));
        match (local, self.server_remaining) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn until_next_utc_day(now_utc: OffsetDateTime) -> Duration {
    let utc = now_utc.to_offset(time::UtcOffset::UTC);
    let midnight = utc.date().next_day().map(|d| d.midnight().assume_utc());
    midnight.map_or(Duration::from_secs(86_400), |m| (m - utc).try_into().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOON: OffsetDateTime = datetime!(2026-11-22 12:00:00 UTC);

    #[test]
    fn requests_are_spaced_by_the_rate() {
        let mut limiter = RateLimiter::new(2.0, None, NOON);
        let t0 = Instant::now();
        assert_eq!(limiter.admit(t0, NOON), Admission::Granted);
        assert_eq!(
            limiter.admit(t0, NOON),
            Admission::Wait { for_: Duration::from_millis(500), reason: WaitReason::RequestRate }
        );
        assert_eq!(limiter.admit(t0 + Duration::from_millis(500), NOON), Admission::Granted);
    }

    #[test]
    fn until_free_is_the_wait_for_the_next_request_slot() {
        let mut limiter = RateLimiter::new(2.0, None, NOON);
        let t0 = Instant::now();
        assert_eq!(limiter.until_free(t0), Duration::ZERO, "nothing sent yet");
        assert_eq!(limiter.admit(t0, NOON), Admission::Granted);
        assert_eq!(limiter.until_free(t0 + Duration::from_millis(100)), Duration::from_millis(400));
        assert_eq!(limiter.until_free(t0 + Duration::from_millis(600)), Duration::ZERO);
    }

    #[test]
    fn the_daily_quota_waits_for_the_next_utc_day_and_then_refills() {
        let mut limiter = RateLimiter::new(1000.0, Some(2), NOON);
        let mut t = Instant::now();
        for _ in 0..2 {
            assert_eq!(limiter.admit(t, NOON), Admission::Granted);
            t += Duration::from_secs(1);
        }
        assert_eq!(limiter.remaining_today(), Some(0));
        assert_eq!(
            limiter.admit(t, NOON),
            Admission::Wait { for_: Duration::from_secs(12 * 3600), reason: WaitReason::DailyQuota }
        );
        let tomorrow = datetime!(2026-11-23 00:00:01 UTC);
        assert_eq!(limiter.admit(t, tomorrow), Admission::Granted);
        assert_eq!(limiter.remaining_today(), Some(1));
    }

    #[test]
    fn a_server_block_holds_every_request_until_it_ends() {
        let mut limiter = RateLimiter::new(1000.0, None, NOON);
        let t0 = Instant::now();
        limiter.block_until(t0 + Duration::from_secs(3));
        limiter.block_until(t0 + Duration::from_secs(1)); // an earlier end does not shorten it
        assert_eq!(
            limiter.admit(t0, NOON),
            Admission::Wait { for_: Duration::from_secs(3), reason: WaitReason::ServerLimit }
        );
        assert_eq!(limiter.admit(t0 + Duration::from_secs(3), NOON), Admission::Granted);
    }

    #[test]
    fn the_remaining_quota_is_the_smaller_of_the_local_and_server_counts() {
        let mut limiter = RateLimiter::new(1.0, Some(100), NOON);
        assert_eq!(limiter.remaining_today(), Some(100));
        limiter.observe_server_remaining(7);
        assert_eq!(limiter.remaining_today(), Some(7));
        let mut unlimited = RateLimiter::new(1.0, None, NOON);
        assert_eq!(unlimited.remaining_today(), None);
        unlimited.observe_server_remaining(40);
        assert_eq!(unlimited.remaining_today(), Some(40));
    }
}
