//! The execution key: what makes a rule act on a lead at most once per UTC day.

use time::{Date, OffsetDateTime, UtcOffset};

use crate::contract::project::KEY_SEPARATOR;

/// The unique key of an execution: one execution per (project, rule, lead, UTC day), however
/// often the rule fires that day. The automator stores it with the execution, atomically with
/// the Kafka transaction, and a firing whose key is taken does nothing.
///
/// The form is `{project}/{rule}/{lead}/{YYYY-MM-DD}` and is stored, so it must never change.
/// None of the ids may hold a `/` (project and rule ids are slugs, lead ids exclude it), so
/// two different executions never share a key. The project is always written, the default one
/// included: unlike a lead key, this key has no records from before projects to stay equal to.
/// The rule's version is not part of it, so editing a rule does not act again on a day done.
///
/// `utc_day` must come from the trigger record's own time ([`utc_day`] of it), never from the
/// wall clock: a redelivery, or a replay after a crash, then computes the same key.
pub fn execution_key(project: &str, rule_id: &str, lead_id: &str, utc_day: Date) -> String {
    // Written out rather than with `Date`'s Display, whose form is the library's to change.
    // Years are 4 digits: records' RFC 3339 times are in years 0 to 9999.
    let (year, month, day) = (utc_day.year(), u8::from(utc_day.month()), utc_day.day());
    let s = KEY_SEPARATOR;
    format!("{project}{s}{rule_id}{s}{lead_id}{s}{year:04}-{month:02}-{day:02}")
}

/// The UTC day of an instant. The instant is moved to UTC first, so its offset never matters:
/// 23:30 at -02:00 is 01:30 the next day in UTC, and that is its day.
pub fn utc_day(at: OffsetDateTime) -> Date {
    at.to_offset(UtcOffset::UTC).date()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn the_key_names_project_rule_lead_and_day() {
        assert_eq!(
            execution_key("acme", "hot-to-slack", "lead-1", date!(2026 - 01 - 16)),
            "acme/hot-to-slack/lead-1/2026-01-16"
        );
        assert_eq!(execution_key("default", "r", "l", date!(0999 - 12 - 31)), "default/r/l/0999-12-31");
    }

    #[test]
    fn one_key_per_day_however_often_a_rule_fires() {
        let key = |at| execution_key("acme", "rule", "lead-1", utc_day(at));
        assert_eq!(key(datetime!(2026-01-16 00:00:00 UTC)), key(datetime!(2026-01-16 23:59:59.999 UTC)));
        assert_ne!(key(datetime!(2026-01-16 23:59:59.999 UTC)), key(datetime!(2026-01-17 00:00:00 UTC)));
    }

    #[test]
    fn the_day_is_the_utc_one_not_the_local_one() {
        assert_eq!(utc_day(datetime!(2026-01-16 23:30 -02:00)), date!(2026 - 01 - 17));
        assert_eq!(utc_day(datetime!(2026-01-17 00:30 +02:00)), date!(2026 - 01 - 16));
        assert_eq!(utc_day(datetime!(2026-01-16 12:00 UTC)), date!(2026 - 01 - 16));
    }

    proptest! {
        #[test]
        fn the_day_of_an_instant_does_not_depend_on_its_offset(
            // Years 1 to 9998, so every offset of the instant is still a date `time` holds.
            unix in -62_135_596_800i64..253_370_764_800,
            offset_seconds in -93_599i32..=93_599,
        ) {
            let at = OffsetDateTime::from_unix_timestamp(unix).unwrap();
            let offset = UtcOffset::from_whole_seconds(offset_seconds).unwrap();
            let elsewhere = at.to_offset(offset);
            prop_assert_eq!(elsewhere, at, "the same instant");
            prop_assert_eq!(utc_day(elsewhere), utc_day(at));
            prop_assert_eq!(utc_day(at), at.date(), "from_unix_timestamp is in UTC");
        }
    }
}
