//! HubSpot's two request limits: a rolling ten-second window (`burstLimit` per `burstWindowMs`)
//! and a daily budget (`dailyLimit`, per UTC day), with the `X-HubSpot-RateLimit-*` headers that
//! report them. Time is passed in, so the rules are tested without waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::Date;

use super::super::faults::Faults;
use super::errors::correlation_id;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    TenSecondly,
    Daily,
}

impl Policy {
    /// The 429 body HubSpot sends for this policy.
    pub fn body(self) -> Value {
        let (message, policy) = match self {
            Policy::TenSecondly => {
                ("You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING")
            }
            Policy::Daily => ("You have reached your daily limit.", "DAILY"),
        };
        json!({"status": "error", "message": message, "errorType": "RATE_LIMIT",
               "correlationId": correlation_id(), "policyName": policy,
               "groupName": "publicapi:private-app:crm-standin"})
    }
}

/// What is left of each limit after a request, as the headers say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `(max, remaining, interval_ms)` of the rolling window, when it is limited.
    pub window: Option<(u64, u64, u64)>,
    /// `(max, remaining)` of the day, when it is limited.
    pub daily: Option<(u64, u64)>,
}

impl Budget {
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some((max, remaining, interval)) = self.window {
            headers.push(("x-hubspot-ratelimit-max", max.to_string()));
            headers.push(("x-hubspot-ratelimit-remaining", remaining.to_string()));
            headers.push(("x-hubspot-ratelimit-interval-milliseconds", interval.to_string()));
        }
        if let Some((max, remaining)) = self.daily {
            headers.push(("x-hubspot-ratelimit-daily", max.to_string()));
            headers.push(("x-hubspot-ratelimit-daily-remaining", remaining.to_string()));
        }
        headers
    }
}

#[derive(Debug)]
pub struct Limits {
    /// When each request admitted within the last window arrived, oldest first.
    recent: VecDeque<Instant>,
    day: Date,
    used_today: u64,
}

impl Limits {
    pub fn new(today: Date) -> Self {
        Limits { recent: VecDeque::new(), day: today, used_today: 0 }
    }

    /// Forgets the rolling window (when the faults change); the day's count carries on.
    pub fn restart_window(&mut self) {
        self.recent.clear();
    }

    pub fn reset_daily(&mut self) {
        self.used_today = 0;
    }

    /// Judges one request: the daily limit first, then the window. Only admitted requests count
    /// against either.
    pub fn admit(&mut self, faults: &Faults, now: Instant, today: Date) -> (Budget, Option<Policy>) {
        self.roll(faults, now, today);
        let refused = if faults.daily_limit.is_some_and(|limit| self.used_today >= limit) {
            Some(Policy::Daily)
        } else if faults.burst_limit.is_some_and(|limit| self.recent.len() as u64 >= limit) {
            Some(Policy::TenSecondly)
        } else {
            self.recent.push_back(now);
            self.used_today += 1;
            None
        };
        (self.budget(faults), refused)
    }

    /// The budget without spending any of it (for answers that do not count, like a 401).
    pub fn peek(&mut self, faults: &Faults, now: Instant, today: Date) -> Budget {
        self.roll(faults, now, today);
        self.budget(faults)
    }

    fn roll(&mut self, faults: &Faults, now: Instant, today: Date) {
        let window = Duration::from_millis(faults.burst_window_ms.max(1));
        while self.recent.front().is_some_and(|&at| now.saturating_duration_since(at) >= window) {
            self.recent.pop_front();
        }
        if today != self.day {
            (self.day, self.used_today) = (today, 0);
        }
    }

    fn budget(&self, faults: &Faults) -> Budget {
        let used = self.recent.len() as u64;
        Budget {
            window: faults.burst_limit.map(|max| (max, max.saturating_sub(used), faults.burst_window_ms)),
            daily: faults.daily_limit.map(|max| (max, max.saturating_sub(self.used_today))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const DAY: Date = date!(2026 - 12 - 01);

    fn faults(burst: Option<u64>, daily: Option<u64>) -> Faults {
        Faults { burst_limit: burst, burst_window_ms: 10_000, daily_limit: daily, ..Faults::default() }
    }

    #[test]
    fn the_window_rolls_per_request_not_per_fixed_slot() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let f = faults(Some(2), None);
        let mut limits = Limits::new(DAY);
        assert_eq!(limits.admit(&f, at(0), DAY).1, None);
        assert_eq!(
            limits.admit(&f, at(5_000), DAY),
            (Budget { window: Some((2, 0, 10_000)), daily: None }, None)
        );
        assert_eq!(limits.admit(&f, at(9_999), DAY).1, Some(Policy::TenSecondly));
        // The first request has left the window, the second has not.
        assert_eq!(limits.admit(&f, at(10_000), DAY).1, None);
        assert_eq!(limits.admit(&f, at(14_999), DAY).1, Some(Policy::TenSecondly));
        assert_eq!(limits.peek(&f, at(15_000), DAY).window, Some((2, 1, 10_000)));
    }

    #[test]
    fn the_daily_limit_holds_until_reset_or_a_new_day_and_is_judged_first() {
        let t0 = Instant::now();
        let f = faults(Some(1), Some(2));
        let mut limits = Limits::new(DAY);
        assert_eq!(limits.admit(&f, t0, DAY).1, None);
        assert_eq!(limits.admit(&f, t0, DAY).1, Some(Policy::TenSecondly), "refusals do not count");
        let later = t0 + Duration::from_secs(20);
        assert_eq!(
            limits.admit(&f, later, DAY),
            (Budget { window: Some((1, 0, 10_000)), daily: Some((2, 0)) }, None)
        );
        let much_later = later + Duration::from_secs(20);
        assert_eq!(limits.admit(&f, much_later, DAY).1, Some(Policy::Daily));
        limits.reset_daily();
        assert_eq!(limits.peek(&f, much_later, DAY).daily, Some((2, 2)));
        limits.admit(&f, much_later, DAY);
        assert_eq!(limits.peek(&f, much_later, DAY.next_day().unwrap()).daily, Some((2, 2)));
    }

    #[test]
    fn headers_name_only_the_limits_that_are_set() {
        let names = |b: Budget| b.headers().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert!(names(Budget { window: None, daily: None }).is_empty());
        assert_eq!(names(Budget { window: Some((3, 1, 10)), daily: None }).len(), 3);
        let both = Budget { window: Some((3, 1, 10)), daily: Some((9, 4)) };
        assert_eq!(both.headers()[4], ("x-hubspot-ratelimit-daily-remaining", "4".to_owned()));
        for policy in [Policy::TenSecondly, Policy::Daily] {
            let body = policy.body();
            assert_eq!((&body["status"], &body["errorType"]), (&json!("error"), &json!("RATE_LIMIT")));
        }
        assert_eq!(Policy::Daily.body()["policyName"], "DAILY");
    }
}
