//! The daily quota of API requests (`nationalize.daily_quota`), shared by every enricher replica
//! through MongoDB: a [`SharedBudget`] per UTC day named `<nationalize.quota_name>/daily`, in the
//! `budgets` collection of the enricher's database. KEDA scales the enricher out; a quota each
//! replica counted alone would be spent once per replica.
//!
//! At most `daily_quota` requests per UTC day per deployment, however many replicas, as long as
//! they share the MongoDB database and `quota_name` (and the same `daily_quota`). Replicas
//! pointed at different API accounts give each account its own `quota_name`.
//!
//! When the quota is spent, the predictor holds its pause (the partitions pause; waiting names
//! are lag) and asks again at the day's end, or every [`RECHECK_AT_MOST`] before it, so that a
//! raised quota or a clock put right is noticed. When MongoDB cannot be reached it waits
//! [`UNAVAILABLE_RETRY`] and asks again: a request the quota cannot count is not sent.

use std::time::Duration;

use leadflow_core::store::shared_budget::{Grant, SharedBudget};
use mongodb::Database;
use time::{OffsetDateTime, UtcOffset};

/// The longest wait before asking a spent quota again.
pub const RECHECK_AT_MOST: Duration = Duration::from_secs(30);
/// The wait before asking again when MongoDB did not answer.
pub const UNAVAILABLE_RETRY: Duration = Duration::from_secs(2);
/// The shortest wait before asking again: a window end already past on this clock (its day
/// changed between the take and now) must not make a busy loop.
const RECHECK_AT_LEAST: Duration = Duration::from_millis(100);

pub struct DailyQuota {
    budget: SharedBudget,
}

impl DailyQuota {
    /// `limit` requests per UTC day under `name` (`nationalize.quota_name`).
    pub fn new(database: &Database, name: &str, limit: u64) -> Self {
        let collection = SharedBudget::collection_in(database);
        DailyQuota {
            budget: SharedBudget::daily(collection, &format!("{name}/daily"), limit, UtcOffset::UTC),
        }
    }

    pub fn limit(&self) -> u64 {
        self.budget.limit_per_window()
    }

    pub async fn ensure_ttl_index(&self) -> mongodb::error::Result<()> {
        self.budget.ensure_ttl_index().await
    }

    /// Takes one request of today's quota.
    pub async fn take(&self, now: OffsetDateTime) -> mongodb::error::Result<Grant> {
        self.budget.take(1, now).await
    }
}

/// How long to wait before asking a quota spent until `until` again.
pub fn recheck_in(until: OffsetDateTime, now: OffsetDateTime) -> Duration {
    let to_end = Duration::try_from(until - now).unwrap_or(Duration::ZERO);
    to_end.clamp(RECHECK_AT_LEAST, RECHECK_AT_MOST)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    #[test]
    fn a_spent_quota_is_asked_again_at_the_day_s_end_or_within_30_s() {
        let midnight = datetime!(2026-11-23 00:00 UTC);
        assert_eq!(recheck_in(midnight, datetime!(2026-11-22 12:00 UTC)), RECHECK_AT_MOST);
        assert_eq!(recheck_in(midnight, datetime!(2026-11-22 23:59:50 UTC)), Duration::from_secs(10));
        assert_eq!(recheck_in(midnight, datetime!(2026-11-23 00:00:05 UTC)), RECHECK_AT_LEAST, "past");
    }

    proptest! {
        #[test]
        fn the_wait_is_never_zero_nor_above_the_recheck_interval(
            until_s in 0i64..200_000, now_s in 0i64..200_000,
        ) {
            let at = |s: i64| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(s);
            let wait = recheck_in(at(until_s), at(now_s));
            prop_assert!(wait >= RECHECK_AT_LEAST && wait <= RECHECK_AT_MOST);
            if until_s > now_s {
                prop_assert!(wait <= Duration::from_secs((until_s - now_s) as u64).max(RECHECK_AT_LEAST));
            }
        }
    }
}
