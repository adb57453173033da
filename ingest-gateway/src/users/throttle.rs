//! Login throttling: more than 5 failed logins for one email within a minute, and the next
//! attempt is a 429 with `Retry-After`, before any password is checked. GCRA (`governor`):
//! a budget of 5 failures that refills one every 12 s.
//!
//! **Per replica.** The state is in this process's memory: behind N replicas an attacker gets
//! up to 5·N guesses a minute per email (still argon2-bound), and a restart forgets. The
//! shared, MongoDB-backed limits are the API keys' event limits (`crate::auth`), not this.
//!
//! Every attempt takes a cell before its password is checked, so concurrent attempts cannot
//! all slip past the check; a successful login then forgets the email's failures, so a person
//! who mistyped a few times and then got in starts afresh. Unknown emails are throttled like
//! known ones: the answer never depends on whether the account exists.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};

use crate::error::AppError;

/// Failures allowed per email per [`WINDOW`] before attempts are refused.
pub const FAILURES_PER_WINDOW: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);

/// Past this many emails tracked, a new one first drops those untouched for a whole window
/// (their budget is full again, as if never seen): the map cannot grow without bound however
/// many addresses are tried.
const PRUNE_ABOVE: usize = 10_000;

pub struct LoginThrottle<C: Clock + Clone = DefaultClock> {
    limiter: RateLimiter<String, FailureStore<C>, C, NoOpMiddleware<C::Instant>>,
    store: FailureStore<C>,
    clock: C,
}

impl LoginThrottle {
    pub fn new() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock + Clone> LoginThrottle<C> {
    pub fn with_clock(clock: C) -> Self {
        let quota = Quota::with_period(WINDOW / FAILURES_PER_WINDOW)
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::new(FAILURES_PER_WINDOW).expect("non-zero"));
        let store = FailureStore { states: Arc::default(), clock: clock.clone() };
        let limiter = RateLimiter::new(quota, store.clone(), clock.clone());
        LoginThrottle { limiter, store, clock }
    }

    /// Takes one attempt for `email` (lowercased), or refuses it with a 429 saying when the
    /// next one is allowed.
    pub fn attempt(&self, email: &str) -> Result<(), AppError> {
        self.store.prune_if_large();
        self.limiter
            .check_key(&email.to_owned())
            .map_err(|not_until| too_many_failures(not_until.wait_time_from(self.clock.now())))
    }

    /// A successful login: the email's failures are forgotten.
    pub fn succeeded(&self, email: &str) {
        self.store.states.lock().expect("the throttle's lock").remove(email);
    }
}

/// 429 with `Retry-After` in whole seconds, rounded up (at least 1).
fn too_many_failures(wait: Duration) -> AppError {
    let seconds = (wait.as_secs_f64().ceil() as u64).max(1);
    let message = format!(
        "more than {FAILURES_PER_WINDOW} failed logins for this email within a minute; try again in {seconds} s"
    );
    // The API's one 429 code, as for a key over its event limit.
    AppError::rate_limited(message, Some(Duration::from_secs(seconds)), HeaderMap::new())
}

/// One email's governor state, and when it was last used.
type Failures<C> = (InMemoryState, <C as Clock>::Instant);

/// governor's per-key states in a map this module can also remove from (a success forgets an
/// email) and prune; governor's own keyed stores offer neither per key. Each state keeps the
/// instant it was last used, for pruning.
struct FailureStore<C: Clock + Clone> {
    states: Arc<Mutex<HashMap<String, Failures<C>>>>,
    clock: C,
}

impl<C: Clock + Clone> Clone for FailureStore<C> {
    fn clone(&self) -> Self {
        FailureStore { states: self.states.clone(), clock: self.clock.clone() }
    }
}

impl<C: Clock + Clone> FailureStore<C> {
    fn prune_if_large(&self) {
        let now = self.clock.now();
        let mut states = self.states.lock().expect("the throttle's lock");
        if states.len() >= PRUNE_ABOVE {
            let window = Nanos::from(WINDOW);
            states.retain(|_, (_, last_used)| now.duration_since(*last_used) < window);
        }
    }
}

impl<C: Clock + Clone> StateStore for FailureStore<C> {
    type Key = String;

    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let now = self.clock.now();
        let mut states = self.states.lock().expect("the throttle's lock");
        let (state, last_used) = states.entry(key.clone()).or_insert_with(|| (InMemoryState::default(), now));
        *last_used = now;
        state.measure_and_replace(&NotKeyed::NonKey, f)
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn the_sixth_failure_within_a_minute_is_refused_with_retry_after() {
        let clock = FakeRelativeClock::default();
        let throttle = LoginThrottle::with_clock(clock.clone());
        for attempt in 1..=FAILURES_PER_WINDOW {
            assert!(throttle.attempt("ada@example.com").is_ok(), "attempt {attempt}");
        }
        let refused = throttle.attempt("ada@example.com").unwrap_err();
        assert_eq!((refused.status.as_u16(), refused.body.error), (429, "rate_limited"));
        assert_eq!(refused.retry_after, Some(Duration::from_secs(12)), "one failure's worth of the minute");
        // Another email has its own budget.
        assert!(throttle.attempt("bob@example.com").is_ok());

        clock.advance(Duration::from_secs(11));
        let still = throttle.attempt("ada@example.com").unwrap_err();
        assert_eq!(still.retry_after, Some(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(1));
        assert!(throttle.attempt("ada@example.com").is_ok(), "12 s later one more attempt is allowed");
        assert!(throttle.attempt("ada@example.com").is_err(), "and only one");
    }

    #[test]
    fn a_success_forgets_the_failures() {
        let throttle = LoginThrottle::with_clock(FakeRelativeClock::default());
        for _ in 0..FAILURES_PER_WINDOW {
            throttle.attempt("ada@example.com").unwrap();
        }
        throttle.succeeded("ada@example.com");
        for attempt in 1..=FAILURES_PER_WINDOW {
            assert!(throttle.attempt("ada@example.com").is_ok(), "attempt {attempt} after the success");
        }
        assert!(throttle.attempt("ada@example.com").is_err());
    }

    #[test]
    fn emails_untouched_for_a_window_are_pruned_once_many_are_tracked() {
        let clock = FakeRelativeClock::default();
        let throttle = LoginThrottle::with_clock(clock.clone());
        for i in 0..PRUNE_ABOVE {
            throttle.attempt(&format!("user{i}@example.com")).unwrap();
        }
        clock.advance(WINDOW);
        throttle.attempt("recent@example.com").unwrap();
        let tracked = throttle.store.states.lock().unwrap().len();
        assert_eq!(tracked, 1, "only the email used within the window is kept");
    }
}
