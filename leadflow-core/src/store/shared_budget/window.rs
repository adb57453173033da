//! The window arithmetic of a shared budget, pure (the time is passed in): which window an
//! instant falls in, what that window is called, where it ends, and how much it may hold.
//!
//! Two shapes:
//! - **Daily**: one window per calendar day at a fixed UTC offset (nationalize.io's quota resets
//!   at midnight UTC; HubSpot's daily limit at midnight in the account's time zone). A fixed
//!   offset does not follow daylight saving: give the offset in force, and expect the window to
//!   be an hour off across a change.
//! - **Rolling**: at most `L` in ANY interval of length `W` (HubSpot's 190 per 10 s). Counted in
//!   fixed sub-windows of `ceil(W / k)`, each allowed `floor(L / (k + 1))`. An interval of length
//!   `W` overlaps at most `k + 1` consecutive sub-windows (they are at least `W / k` long), so it
//!   holds at most `(k + 1) * floor(L / (k + 1)) <= L`, wherever the interval starts and however
//!   the sends fall. The price is the rate: steady use gets `k * floor(L / (k + 1))` per `W`, not
//!   `L` (170 per 10 s for 190 and `k = 10`). A larger `k` gets closer to `L` (180 for `k = 18`)
//!   but allows a smaller burst per sub-window and makes a caller that runs out wait more often,
//!   one sub-window at a time; `k = 10` keeps bursts of 17 and 89% of the rate.

use std::time::Duration;

use time::{OffsetDateTime, UtcOffset};

/// The most a rolling budget's `k` may be: sub-windows shorter than a millisecond are not kept.
pub const MAX_SUB_WINDOWS: u32 = 1000;

/// One window of a budget: its id (unique within the budget's name) and its end, exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub id: String,
    pub end: OffsetDateTime,
}

/// How a budget cuts time into windows, and how much each window holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetShape {
    /// `limit` per calendar day at `offset`.
    Daily { limit: u64, offset: UtcOffset },
    /// `per_sub_window` in each fixed sub-window of `sub_window_ms` milliseconds from the Unix
    /// epoch; built by [`BudgetShape::rolling`] from a rolling limit.
    Rolling { per_sub_window: u64, sub_window_ms: u64 },
}

/// A rolling limit that no fixed sub-windows can keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRolling {
    #[error(
        "a rolling budget of {limit} cannot be split into {k} sub-windows: each needs floor(limit / (k + 1)) >= 1, so k must be at most limit - 1"
    )]
    LimitTooSmall { limit: u64, k: u32 },
    #[error(
        "a rolling budget needs 1 to {MAX_SUB_WINDOWS} sub-windows of at least 1 ms, not {k} of a {window:?} window"
    )]
    BadSubWindows { k: u32, window: Duration },
}

impl BudgetShape {
    pub fn daily(limit: u64, offset: UtcOffset) -> Self {
        BudgetShape::Daily { limit, offset }
    }

    /// At most `limit` in any interval of length `window`, counted in `k` sub-windows per
    /// `window` (see the module doc for the guarantee and the rate it costs).
    pub fn rolling(limit: u64, window: Duration, k: u32) -> Result<Self, InvalidRolling> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        if k == 0 || k > MAX_SUB_WINDOWS || window_ms < u64::from(k) {
            return Err(InvalidRolling::BadSubWindows { k, window });
        }
        let per_sub_window = limit / (u64::from(k) + 1);
        if per_sub_window == 0 {
            return Err(InvalidRolling::LimitTooSmall { limit, k });
        }
        // Rounded up: k sub-windows must cover at least `window`, or an interval of `window`
        // could overlap k + 2 of them.
        Ok(BudgetShape::Rolling { per_sub_window, sub_window_ms: window_ms.div_ceil(u64::from(k)) })
    }

    /// What one window may hold.
    pub fn limit(&self) -> u64 {
        match *self {
            BudgetShape::Daily { limit, .. } => limit,
            BudgetShape::Rolling { per_sub_window, .. } => per_sub_window,
        }
    }

    /// The window `now` falls in.
    pub fn window_at(&self, now: OffsetDateTime) -> Window {
        match *self {
            BudgetShape::Daily { offset, .. } => {
                let local = now.to_offset(offset);
                let date = local.date();
                // Only `Date::MAX` has no next day: not a day this runs on.
                let next = date.next_day().unwrap_or(date);
                Window { id: date.to_string(), end: next.midnight().assume_offset(offset) }
            }
            BudgetShape::Rolling { sub_window_ms, .. } => {
                let ms = now.unix_timestamp_nanos().div_euclid(1_000_000);
                let index = ms.div_euclid(i128::from(sub_window_ms));
                let end_ms = (index + 1) * i128::from(sub_window_ms);
                let end = OffsetDateTime::from_unix_timestamp_nanos(end_ms * 1_000_000)
                    .unwrap_or(now)
                    .to_offset(now.offset());
                Window { id: index.to_string(), end }
            }
        }
    }

    /// How long a budget's window document is worth keeping: one more window after its own
    /// ends, for anyone looking at recent usage. Expiry is housekeeping only: ids never repeat.
    pub fn keep_after_end(&self) -> time::Duration {
        match *self {
            BudgetShape::Daily { .. } => time::Duration::days(1),
            BudgetShape::Rolling { sub_window_ms, .. } => {
                time::Duration::milliseconds(i64::try_from(sub_window_ms).unwrap_or(i64::MAX))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use time::macros::{datetime, offset};

    #[test]
    fn a_daily_window_is_the_calendar_day_at_its_offset() {
        let utc = BudgetShape::daily(100, UtcOffset::UTC);
        let late = datetime!(2026-11-22 23:59:59.999 UTC);
        assert_eq!(
            utc.window_at(late),
            Window { id: "2026-11-22".into(), end: datetime!(2026-11-23 00:00 UTC) }
        );
        assert_eq!(utc.window_at(datetime!(2026-11-23 00:00 UTC)).id, "2026-11-23");

        // 23:30 UTC is already the next day in Berlin (+01:00), and that day ends at 23:00 UTC.
        let berlin = BudgetShape::daily(100, offset!(+1));
        let window = berlin.window_at(datetime!(2026-11-22 23:30 UTC));
        assert_eq!(window.id, "2026-11-23");
        assert_eq!(window.end, datetime!(2026-11-23 23:00 UTC));
        // 02:00 UTC is still the previous day in New York (-05:00).
        let new_york = BudgetShape::daily(100, offset!(-5));
        let window = new_york.window_at(datetime!(2026-11-23 02:00 UTC));
        assert_eq!(window.id, "2026-11-22");
        assert_eq!(window.end, datetime!(2026-11-23 05:00 UTC));
    }

    #[test]
    fn hubspot_s_190_per_10_s_in_10_sub_windows_is_17_per_second() {
        let shape = BudgetShape::rolling(190, Duration::from_secs(10), 10).unwrap();
        assert_eq!(shape, BudgetShape::Rolling { per_sub_window: 17, sub_window_ms: 1000 });
        assert_eq!(shape.limit() * 10, 170, "the steady rate per 10 s");
        let window = shape.window_at(datetime!(2026-11-22 12:00:00.250 UTC));
        assert_eq!(window.end, datetime!(2026-11-22 12:00:01 UTC));
        assert_eq!(window.id, datetime!(2026-11-22 12:00 UTC).unix_timestamp().to_string());
    }

    #[test]
    fn sub_windows_round_up_so_that_k_of_them_cover_the_window() {
        let shape = BudgetShape::rolling(40, Duration::from_secs(10), 3).unwrap();
        assert_eq!(shape, BudgetShape::Rolling { per_sub_window: 10, sub_window_ms: 3334 });
    }

    #[test]
    fn a_rolling_limit_too_small_for_its_sub_windows_is_refused() {
        assert_eq!(
            BudgetShape::rolling(10, Duration::from_secs(10), 10),
            Err(InvalidRolling::LimitTooSmall { limit: 10, k: 10 })
        );
        assert!(BudgetShape::rolling(11, Duration::from_secs(10), 10).is_ok());
        assert!(matches!(
            BudgetShape::rolling(190, Duration::from_secs(10), 0),
            Err(InvalidRolling::BadSubWindows { .. })
        ));
        assert!(matches!(
            BudgetShape::rolling(5000, Duration::from_millis(5), 10),
            Err(InvalidRolling::BadSubWindows { .. })
        ));
    }

    fn at_ms(ms: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(ms)
    }

    proptest! {
        /// Every instant is inside its window: before its end, and at most one window long
        /// before it; and the window's id changes exactly when an end is passed.
        #[test]
        fn an_instant_falls_before_the_end_of_its_window(
            ms in 0i64..4_000_000_000_000,
            offset_minutes in -14 * 60i32..=14 * 60,
            sub_window_ms in 1u64..100_000,
        ) {
            let now = at_ms(ms);
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let daily = BudgetShape::daily(1, offset);
            let rolling = BudgetShape::Rolling { per_sub_window: 1, sub_window_ms };
            for (shape, length) in [
                (daily, time::Duration::days(1)),
                (rolling, time::Duration::milliseconds(sub_window_ms as i64)),
            ] {
                let window = shape.window_at(now);
                prop_assert!(now < window.end);
                prop_assert!(window.end - now <= length);
                let last_instant = window.end - time::Duration::milliseconds(1);
                prop_assert_eq!(&shape.window_at(last_instant).id, &window.id);
                prop_assert_ne!(&shape.window_at(window.end).id, &window.id);
            }
        }

        /// Senders at random times, each send granted only while its sub-window's count is under
        /// the share: no interval of the rolling window's length ever holds more than the limit,
        /// wherever it starts.
        #[test]
        fn no_rolling_interval_holds_more_than_the_limit(
            limit in 2u64..60,
            window_ms in 1u64..200,
            k in 1u32..12,
            // A gap, then that many attempts at once: bursts as well as spread sends.
            steps in proptest::collection::vec((0i64..40, 1u64..30), 1..200),
        ) {
            prop_assume!(u64::from(k) < limit && u64::from(k) <= window_ms);
            let shape = BudgetShape::rolling(limit, Duration::from_millis(window_ms), k).unwrap();
            let mut used: HashMap<String, u64> = HashMap::new();
            let mut sent: Vec<i64> = Vec::new();
            let mut t = 1_000_000i64;
            for (gap, attempts) in steps {
                t += gap;
                let window = shape.window_at(at_ms(t));
                let count = used.entry(window.id).or_default();
                for _ in 0..attempts {
                    if *count < shape.limit() {
                        *count += 1;
                        sent.push(t);
                    }
                }
            }
            // Sends are on a 1 ms grid, so an interval [a, a + W) holding the most sends can be
            // taken to start at a send.
            for (i, &start) in sent.iter().enumerate() {
                let within = sent[i..].iter().take_while(|&&s| s < start + window_ms as i64).count() as u64;
                prop_assert!(within <= limit, "{} sends in [{}, +{}) ms, limit {}", within, start, window_ms, limit);
            }
        }
    }
}
