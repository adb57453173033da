//! When to try a message again, when to give up on it, and when to give up on its endpoint; the
//! schedule is in the [module docs](super).

use std::time::Duration;

use time::OffsetDateTime;

/// The delay before each attempt, the first one included: the Standard Webhooks spec's example
/// schedule.
pub const STANDARD_DELAYS: [Duration; 10] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];
/// The spread [`RetrySchedule::standard`] puts on each delay: ±20 %.
pub const STANDARD_JITTER: Jitter = Jitter::Proportional { fraction: 0.2 };
/// How long an endpoint may fail without a single success before it is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 86_400);

/// How far an attempt may move from its scheduled delay, so that endpoints that failed together
/// are not all tried again in the same instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    None,
    /// Uniform in `[delay × (1 − fraction), delay × (1 + fraction)]`, `fraction` in [0, 1).
    Proportional {
        fraction: f64,
    },
    /// Uniform in `[0, delay]` ("full jitter").
    Full,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("a retry schedule needs at least one attempt")]
    Empty,
    #[error("a jitter fraction must be within [0, 1), got {0}")]
    Fraction(f64),
}

/// The delays before each attempt of a message and the jitter on them. Attempts are numbered by
/// how many have failed before: the first attempt follows `delays[0]`, and once `delays.len()`
/// attempts have failed the message is given up.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: Jitter,
}

impl RetrySchedule {
    /// [`STANDARD_DELAYS`] with [`STANDARD_JITTER`].
    pub fn standard() -> Self {
        RetrySchedule { delays: STANDARD_DELAYS.to_vec(), jitter: STANDARD_JITTER }
    }

    pub fn new(delays: Vec<Duration>, jitter: Jitter) -> Result<Self, ScheduleError> {
        if delays.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if let Jitter::Proportional { fraction } = jitter
            && !(0.0..1.0).contains(&fraction)
        {
            return Err(ScheduleError::Fraction(fraction));
        }
        Ok(RetrySchedule { delays, jitter })
    }

    /// The same shape with every delay multiplied by `factor` (positive and finite): tests run
    /// the standard schedule in seconds instead of days.
    pub fn scaled(&self, factor: f64) -> Self {
        assert!(factor.is_finite() && factor > 0.0, "scale factor {factor}");
        let delays = self.delays.iter().map(|d| d.mul_f64(factor)).collect();
        RetrySchedule { delays, jitter: self.jitter }
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// Attempts a message gets before it is given up.
    pub fn attempts(&self) -> usize {
        self.delays.len()
    }

    /// From the first attempt to the last, without jitter.
    pub fn span(&self) -> Duration {
        self.delays.iter().sum()
    }

    /// The delay before the next attempt of a message whose `failed_attempts` attempts have all
    /// failed, jittered with `rng`; `None` when there is no attempt left, so the message is
    /// given up (and stays replayable).
    pub fn next_attempt(&self, failed_attempts: u32, rng: &mut fastrand::Rng) -> Option<Duration> {
        let delay = *self.delays.get(usize::try_from(failed_attempts).ok()?)?;
        Some(match self.jitter {
            Jitter::None => delay,
            Jitter::Proportional { fraction } => delay.mul_f64(1.0 + fraction * (2.0 * rng.f64() - 1.0)),
            Jitter::Full => delay.mul_f64(rng.f64()),
        })
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::standard()
    }
}

/// What an endpoint's answer means for the message and the endpoint, as the spec suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx: delivered.
    Delivered,
    /// Anything else, a 3xx (redirects are not followed) included: try again per the schedule.
    Failed,
    /// 410 Gone: the receiver wants no more; disable the endpoint now.
    Gone,
}

impl AttemptOutcome {
    /// The outcome of an answer with this status code; no answer at all (a timeout, a reset) is
    /// [`AttemptOutcome::Failed`].
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => AttemptOutcome::Delivered,
            410 => AttemptOutcome::Gone,
            _ => AttemptOutcome::Failed,
        }
    }
}

/// When an endpoint is disabled: after it has failed, with no success since, for longer than
/// `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisablePolicy {
    pub after: Duration,
}

impl Default for DisablePolicy {
    fn default() -> Self {
        DisablePolicy { after: DISABLE_AFTER }
    }
}

impl DisablePolicy {
    /// Whether an endpoint whose oldest failure since its last success was `first_failure`
    /// (`None`: it is not failing) is due to be disabled at `now`. Exactly `after` is not yet
    /// "longer than".
    pub fn is_due(&self, first_failure: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
        first_failure.is_some_and(|first| now - first > self.after)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HOUR: u64 = 3600;

    #[test]
    fn the_standard_schedule_is_the_documented_one() {
        let schedule = RetrySchedule::standard();
        assert_eq!(schedule.attempts(), 10);
        // Time since the first attempt, as the module docs' table gives it (h:mm:ss).
        let since_start: Vec<u64> = schedule
            .delays()
            .iter()
            .scan(0, |total, d| {
                *total += d.as_secs();
                Some(*total)
            })
            .collect();
        let table = [
            0,
            5,
            5 * 60 + 5,
            35 * 60 + 5,
            2 * HOUR + 35 * 60 + 5,
            7 * HOUR + 35 * 60 + 5,
            17 * HOUR + 35 * 60 + 5,
            31 * HOUR + 35 * 60 + 5,
            51 * HOUR + 35 * 60 + 5,
            75 * HOUR + 35 * 60 + 5,
        ];
        assert_eq!(since_start, table);
        assert_eq!(schedule.span(), Duration::from_secs(75 * HOUR + 35 * 60 + 5));
        assert_eq!(schedule.jitter(), Jitter::Proportional { fraction: 0.2 });
    }

    #[test]
    fn without_jitter_each_attempt_gets_its_delay_then_none() {
        let schedule = RetrySchedule::new(STANDARD_DELAYS.to_vec(), Jitter::None).unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        let delays: Vec<_> = (0..10).map(|n| schedule.next_attempt(n, &mut rng).unwrap()).collect();
        assert_eq!(delays, STANDARD_DELAYS);
        assert_eq!(schedule.next_attempt(10, &mut rng), None);
        assert_eq!(schedule.next_attempt(u32::MAX, &mut rng), None);
    }

    #[test]
    fn a_scaled_schedule_keeps_its_shape() {
        let fast = RetrySchedule::standard().scaled(0.001);
        assert_eq!(fast.attempts(), 10);
        assert_eq!(fast.delays()[1], Duration::from_millis(5));
        assert_eq!(fast.delays()[9], Duration::from_millis(24 * HOUR));
        assert_eq!(fast.jitter(), STANDARD_JITTER);
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert_eq!(RetrySchedule::new(vec![], Jitter::None), Err(ScheduleError::Empty));
        for fraction in [1.0, -0.1, f64::NAN] {
            let jitter = Jitter::Proportional { fraction };
            assert!(RetrySchedule::new(vec![Duration::ZERO], jitter).is_err(), "{fraction}");
        }
    }

    proptest! {
        #[test]
        fn jittered_delays_stay_within_their_band(seed: u64, failed in 0u32..10) {
            let mut rng = fastrand::Rng::with_seed(seed);
            let scheduled = STANDARD_DELAYS[failed as usize];
            let standard = RetrySchedule::standard().next_attempt(failed, &mut rng).unwrap();
            prop_assert!(standard >= scheduled.mul_f64(0.8) && standard <= scheduled.mul_f64(1.2),
                "{standard:?} for {scheduled:?}");
            let full = RetrySchedule::new(STANDARD_DELAYS.to_vec(), Jitter::Full).unwrap();
            prop_assert!(full.next_attempt(failed, &mut rng).unwrap() <= scheduled);
        }
    }

    #[test]
    fn jitter_spreads_a_delay_and_leaves_the_first_attempt_immediate() {
        let schedule = RetrySchedule::standard();
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(schedule.next_attempt(0, &mut rng), Some(Duration::ZERO));
        let draws: Vec<_> = (0..200).map(|_| schedule.next_attempt(3, &mut rng).unwrap()).collect();
        let thirty_min = Duration::from_secs(30 * 60);
        assert!(draws.iter().any(|d| *d < thirty_min.mul_f64(0.95)), "none well below 30 min");
        assert!(draws.iter().any(|d| *d > thirty_min.mul_f64(1.05)), "none well above 30 min");
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert_eq!(AttemptOutcome::of_status(200), AttemptOutcome::Delivered);
        assert_eq!(AttemptOutcome::of_status(204), AttemptOutcome::Delivered);
        assert_eq!(AttemptOutcome::of_status(410), AttemptOutcome::Gone);
        for status in [301, 302, 400, 404, 429, 500, 503] {
            assert_eq!(AttemptOutcome::of_status(status), AttemptOutcome::Failed, "{status}");
        }
    }

    #[test]
    fn an_endpoint_is_disabled_only_after_failing_longer_than_the_period() {
        let policy = DisablePolicy::default();
        let first = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let five_days = time::Duration::days(5);
        assert!(!policy.is_due(None, first + time::Duration::days(30)));
        assert!(!policy.is_due(Some(first), first));
        assert!(!policy.is_due(Some(first), first + five_days));
        assert!(policy.is_due(Some(first), first + five_days + time::Duration::seconds(1)));
        // A clock that stepped back is not a failure that lasted.
        assert!(!policy.is_due(Some(first), first - five_days * 2));
    }
}
