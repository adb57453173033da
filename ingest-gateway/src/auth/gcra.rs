//! The rate limit's arithmetic, pure: the generic cell rate algorithm over one minute. A key
//! limited to L events per minute earns one event every T = 60 s / L; its state is one number,
//! the theoretical arrival time (TAT). For n events at `now`: new TAT = max(TAT, now) + n·T, and
//! they are allowed iff new TAT − now ≤ 60 s (a full minute's budget may be spent at once).
//!
//! Times are epoch microseconds, as stored. The cost n·T is rounded up to whole microseconds, so
//! rounding never allows more than the limit, and even the highest limit (1,000,000 a minute,
//! T = 60 µs) is charged exactly.

/// The window the limit is stated over.
pub const PERIOD_US: i64 = 60_000_000;

/// What [`decide`] concludes for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The TAT to store when allowed; the old one (unchanged) when not.
    pub tat: i64,
    /// Events per minute.
    pub limit: u32,
    /// Events that would still be allowed right now, after this request.
    pub remaining: u32,
    /// Seconds until the whole budget is available again (`RateLimit-Reset`).
    pub reset_secs: u64,
    /// When refused: seconds until these `n` events would fit (`Retry-After`); `None` when the
    /// request can never fit (more events than the limit).
    pub retry_after_secs: Option<u64>,
}

/// The cost of `n` events at `limit` per minute, in microseconds, rounded up.
pub fn cost_us(n: u32, limit: u32) -> i64 {
    let numerator = i128::from(n) * i128::from(PERIOD_US);
    let limit = i128::from(limit.max(1));
    ((numerator + limit - 1) / limit) as i64
}

fn ceil_secs(us: i64) -> u64 {
    (us.max(0) as u64).div_ceil(1_000_000)
}

/// Decides `n` events at `now` for a key at `tat` (`None`: never used), `limit` per minute.
pub fn decide(tat: Option<i64>, now: i64, n: u32, limit: u32) -> Decision {
    let limit = limit.max(1);
    let base = tat.unwrap_or(now).max(now);
    let new_tat = base.saturating_add(cost_us(n, limit));
    let allowed = new_tat - now <= PERIOD_US;
    let held = if allowed { new_tat } else { base };
    let remaining_us = (PERIOD_US - (held - now)).max(0);
    // Events that fit in what is left: the largest m with cost_us(m) <= remaining_us.
    let remaining = ((i128::from(remaining_us) * i128::from(limit)) / i128::from(PERIOD_US)) as u32;
    // Allowed needs no retry, and more events than the limit can never fit.
    let retry_after_secs =
        if allowed || n > limit { None } else { Some(ceil_secs(new_tat - now - PERIOD_US).max(1)) };
    Decision {
        allowed,
        tat: if allowed { new_tat } else { tat.unwrap_or(now) },
        limit,
        remaining: remaining.min(limit),
        reset_secs: ceil_secs(held - now),
        retry_after_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_fresh_key_takes_exactly_its_limit_at_once_and_then_one_per_period() {
        let now = 1_700_000_000_000_000;
        let mut tat = None;
        for i in 0..100 {
            let d = decide(tat, now, 1, 100);
            assert!(d.allowed, "event {i}");
            assert_eq!(d.remaining, 99 - i);
            tat = Some(d.tat);
        }
        let refused = decide(tat, now, 1, 100);
        assert!(!refused.allowed);
        assert_eq!(refused.tat, tat.unwrap(), "a refusal changes nothing");
        assert_eq!((refused.remaining, refused.reset_secs, refused.retry_after_secs), (0, 60, Some(1)));
        assert!(decide(tat, now + 600_000, 1, 100).allowed, "T = 600 ms later, one more fits");
        assert!(!decide(tat, now + 599_999, 1, 100).allowed);
    }

    #[test]
    fn a_batch_counts_its_events_and_one_larger_than_the_limit_never_fits() {
        let now = 5_000_000_000;
        let d = decide(None, now, 60, 100);
        assert!(d.allowed);
        assert_eq!((d.remaining, d.reset_secs), (40, 36));
        let over = decide(Some(d.tat), now, 41, 100);
        assert!(!over.allowed);
        assert_eq!(over.retry_after_secs, Some(1), "one event's period frees the 41st slot");
        let late = decide(Some(d.tat), now, 50, 100);
        assert_eq!(late.retry_after_secs, Some(6), "10 × 600 ms");
        let never = decide(None, now, 101, 100);
        assert!(!never.allowed && never.retry_after_secs.is_none());
    }

    #[test]
    fn the_highest_limit_is_charged_exactly() {
        let now = 1_700_000_000_000_000;
        let mut tat = None;
        for _ in 0..1_000 {
            let d = decide(tat, now, 1, 1_000_000);
            assert!(d.allowed);
            tat = Some(d.tat);
        }
        assert_eq!(tat, Some(now + 60_000), "1,000 events at 60 µs each, not 1 ms each");
    }

    proptest! {
        /// However requests arrive, what is allowed in any span of time never exceeds the limit
        /// plus what the span earns: L + L·span/60 s.
        #[test]
        fn never_more_than_the_limit_plus_what_time_earns(
            limit in 1u32..2000,
            steps in prop::collection::vec((0i64..3_000_000, 1u32..50), 1..200),
        ) {
            let mut now = 1_000_000_000i64;
            let mut tat = None;
            let mut allowed: Vec<(i64, u32)> = Vec::new();
            for (gap, n) in steps {
                now += gap;
                let d = decide(tat, now, n, limit);
                prop_assert!(d.remaining <= limit);
                if d.allowed {
                    tat = Some(d.tat);
                    allowed.push((now, n));
                } else {
                    prop_assert_eq!(d.tat, tat.unwrap_or(now));
                    prop_assert!(d.retry_after_secs.is_none() == (n > limit));
                }
            }
            for (i, (start, _)) in allowed.iter().enumerate() {
                let mut total = 0u64;
                for (at, n) in &allowed[i..] {
                    total += u64::from(*n);
                    let earned = (u64::from(limit) * (at - start) as u64).div_ceil(PERIOD_US as u64);
                    prop_assert!(total <= u64::from(limit) + earned,
                        "{total} events in {} µs at {limit}/min", at - start);
                }
            }
        }

        /// A key left alone for a minute has its whole budget back, and a refusal's Retry-After
        /// is enough: after it, the same request is allowed.
        #[test]
        fn retry_after_is_enough_and_a_minute_restores_the_budget(
            limit in 1u32..5000, used in 1u32..5000, n in 1u32..5000,
        ) {
            let now = 10_000_000_000i64;
            let used = used.min(limit);
            let tat = decide(None, now, used, limit).tat;
            prop_assert!(decide(Some(tat), now + PERIOD_US, limit, limit).allowed);
            let d = decide(Some(tat), now, n, limit);
            if let (false, Some(after)) = (d.allowed, d.retry_after_secs) {
                prop_assert!(decide(Some(tat), now + after as i64 * 1_000_000, n, limit).allowed);
            }
        }
    }
}
