//! The client-side limit on requests to the CRM, pure (the clock is passed in, nothing sleeps
//! here): at most `limit` requests in any sliding window of length `window` (HubSpot's burst
//! limit, which the sink runs at 190 per 10 s), plus a block the server can set with a 429's
//! `Retry-After`.
//!
//! A sliding window rather than fixed windows: with fixed windows a client may send `limit`
//! requests at the end of one window and `limit` more at the start of the next, twice the limit
//! within one window's length of time, and the server, whose windows need not line up with ours,
//! would refuse half of them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct WindowLimiter {
    limit: usize,
    window: Duration,
    /// The times of the last (at most `limit`) sends that are still inside the window, oldest
    /// first.
    sends: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl WindowLimiter {
    /// `limit` requests per `window`; a `limit` of 0 is taken as 1, so that the limiter always
    /// lets requests through eventually.
    pub fn new(limit: u32, window: Duration) -> Self {
        let limit = limit.max(1) as usize;
        WindowLimiter { limit, window, sends: VecDeque::with_capacity(limit), blocked_until: None }
    }

    /// `None`: a request may go now, and this records it as sent at `now`. `Some(wait)`: ask
    /// again `wait` from now (nothing is recorded). `now` must not go backwards between calls.
    pub fn wait_before_next(&mut self, now: Instant) -> Option<Duration> {
        if let Some(until) = self.blocked_until {
            if until > now {
                return Some(until - now);
            }
            self.blocked_until = None;
        }
        // A send at `t` counts against every window [a, a + window) that holds it, so it stops
        // counting once `t + window <= now`.
        while self.sends.front().is_some_and(|&sent| sent + self.window <= now) {
            self.sends.pop_front();
        }
        if self.sends.len() < self.limit {
            self.sends.push_back(now);
            return None;
        }
        // Full: the oldest send leaves the window first.
        Some(self.sends[0] + self.window - now)
    }

    /// How long from `now` until a request keeps to the even pace of `limit` per `window` after
    /// the last one sent (zero if that is past). Waiting this long before each request spends
    /// the budget evenly: a steady stream never runs it dry and then stalls for the window.
    pub fn until_paced(&self, now: Instant) -> Duration {
        let spacing = self.window / self.limit as u32;
        self.sends.back().map_or(Duration::ZERO, |&last| (last + spacing).saturating_duration_since(now))
    }

    /// Holds every request until `until` (the server's `Retry-After`); an earlier end than one
    /// already set does not shorten the block.
    pub fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |current| current.max(until)));
    }

    /// How long from `now` a block set by the server still holds requests back.
    pub fn blocked_for(&self, now: Instant) -> Duration {
        self.blocked_until.map_or(Duration::ZERO, |until| until.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn up_to_the_limit_go_at_once_then_each_waits_for_the_oldest_to_leave_the_window() {
        let t0 = Instant::now();
        let mut limiter = WindowLimiter::new(3, SECOND);
        assert_eq!(limiter.wait_before_next(t0), None);
        assert_eq!(limiter.wait_before_next(t0 + ms(100)), None);
        assert_eq!(limiter.wait_before_next(t0 + ms(200)), None);
        assert_eq!(limiter.wait_before_next(t0 + ms(300)), Some(ms(700)));
        assert_eq!(limiter.wait_before_next(t0 + ms(999)), Some(ms(1)), "asking does not send");
        assert_eq!(limiter.wait_before_next(t0 + ms(1000)), None, "the first send left the window");
        assert_eq!(limiter.wait_before_next(t0 + ms(1000)), Some(ms(100)));
        assert_eq!(limiter.wait_before_next(t0 + ms(5000)), None, "after a quiet spell, a burst again");
        assert_eq!(limiter.wait_before_next(t0 + ms(5000)), None);
        assert_eq!(limiter.wait_before_next(t0 + ms(5000)), None);
        assert_eq!(limiter.wait_before_next(t0 + ms(5000)), Some(SECOND));
    }

    #[test]
    fn the_pace_is_the_window_over_the_limit_after_the_last_send() {
        let t0 = Instant::now();
        let mut limiter = WindowLimiter::new(4, SECOND);
        assert_eq!(limiter.until_paced(t0), Duration::ZERO, "nothing sent yet");
        assert_eq!(limiter.wait_before_next(t0), None);
        assert_eq!(limiter.until_paced(t0), ms(250));
        assert_eq!(limiter.until_paced(t0 + ms(100)), ms(150));
        assert_eq!(limiter.until_paced(t0 + ms(400)), Duration::ZERO, "past the pace");
        assert_eq!(limiter.wait_before_next(t0 + ms(400)), None);
        assert_eq!(limiter.until_paced(t0 + ms(400)), ms(250), "from the newest send");
    }

    #[test]
    fn seven_requests_at_three_per_second_take_more_than_two_windows() {
        let t0 = Instant::now();
        let mut limiter = WindowLimiter::new(3, SECOND);
        let mut now = t0;
        let mut sent = Vec::new();
        while sent.len() < 7 {
            match limiter.wait_before_next(now) {
                None => sent.push(now - t0),
                Some(wait) => now += wait,
            }
        }
        assert_eq!(sent, [ms(0), ms(0), ms(0), ms(1000), ms(1000), ms(1000), ms(2000)]);
    }

    #[test]
    fn a_server_block_holds_every_request_until_it_ends() {
        let t0 = Instant::now();
        let mut limiter = WindowLimiter::new(190, 10 * SECOND);
        limiter.block_until(t0 + 3 * SECOND);
        limiter.block_until(t0 + SECOND); // an earlier end does not shorten it
        assert_eq!(limiter.wait_before_next(t0), Some(3 * SECOND));
        assert_eq!(limiter.wait_before_next(t0 + 2 * SECOND), Some(SECOND));
        assert_eq!(limiter.wait_before_next(t0 + 3 * SECOND), None);
        assert_eq!(limiter.wait_before_next(t0 + 3 * SECOND), None, "the block is over");
    }

    #[test]
    fn a_limit_of_zero_still_lets_one_request_per_window_through() {
        let t0 = Instant::now();
        let mut limiter = WindowLimiter::new(0, SECOND);
        assert_eq!(limiter.wait_before_next(t0), None);
        assert_eq!(limiter.wait_before_next(t0), Some(SECOND));
    }

    proptest! {
        /// Requests arrive at arbitrary times (and sometimes a 429 blocks); whatever the limiter
        /// lets through, no window of its length holds more than its limit, and a request that
        /// waits as told gets through.
        #[test]
        fn no_window_holds_more_than_the_limit(
            limit in 1u32..8,
            // Small windows and gaps on a 1 ms grid, so that sends often land on a window's edge.
            window_ms in 1u64..40,
            steps in proptest::collection::vec((0u64..50, proptest::bool::weighted(0.1), 0u64..100), 1..200),
        ) {
            let window = ms(window_ms);
            let t0 = Instant::now();
            let mut limiter = WindowLimiter::new(limit, window);
            let mut now = t0;
            let mut sent = Vec::new();
            for (gap_ms, block, block_ms) in steps {
                now += ms(gap_ms);
                if block {
                    limiter.block_until(now + ms(block_ms));
                }
                // At most two waits: the server's block, then the window.
                let mut waits = 0;
                while let Some(wait) = limiter.wait_before_next(now) {
                    prop_assert!(wait > Duration::ZERO);
                    waits += 1;
                    prop_assert!(waits <= 2, "still waiting after {:?}", now - t0);
                    now += wait;
                }
                sent.push(now);
            }
            for (i, &start) in sent.iter().enumerate() {
                let in_window = sent[i..].iter().take_while(|&&t| t < start + window).count();
                prop_assert!(in_window <= limit as usize, "{} sends in [{:?}, +{:?})", in_window, start - t0, window);
            }
        }
    }
}
