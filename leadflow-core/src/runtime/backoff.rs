//! Exponential backoff with full jitter: attempt `n` waits a random time in
//! `[0, min(max, initial * 2^n))`, so that clients retrying the same outage spread out instead
//! of arriving together.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first retry); `unit` is a random
    /// number in `[0, 1)`, passed in so that the computation stays a pure function.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.initial.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
        ceiling.min(self.max).mul_f64(unit.clamp(0.0, 1.0))
    }

    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2) };

    #[test]
    fn the_ceiling_doubles_per_attempt_up_to_the_maximum() {
        let almost_one = 0.999_999;
        assert!(BACKOFF.delay_with(0, almost_one) <= Duration::from_millis(100));
        assert!(BACKOFF.delay_with(0, almost_one) > Duration::from_millis(99));
        assert!(BACKOFF.delay_with(3, almost_one) > Duration::from_millis(799));
        assert_eq!(BACKOFF.delay_with(10, 1.0), Duration::from_secs(2));
        assert_eq!(BACKOFF.delay_with(u32::MAX, 1.0), Duration::from_secs(2), "no overflow");
    }

    #[test]
    fn the_jitter_spans_zero_to_the_ceiling() {
        assert_eq!(BACKOFF.delay_with(2, 0.0), Duration::ZERO);
        assert_eq!(BACKOFF.delay_with(2, 0.5), Duration::from_millis(200));
        for _ in 0..1000 {
            assert!(BACKOFF.delay(1) < Duration::from_millis(200));
        }
    }
}
