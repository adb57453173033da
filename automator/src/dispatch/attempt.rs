//! What one attempt's result does to its delivery and to its endpoint. Pure: the dispatcher
//! sends and saves, this decides.

use leadflow_core::model::webhook::{AttemptOutcome, DisablePolicy, RetrySchedule};
use leadflow_core::store::documents::{DeliveryAttempt, DeliveryDoc, DeliveryState, MAX_LOGGED_ATTEMPTS};
use time::OffsetDateTime;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    /// The endpoint answered with this status.
    Answered(u16),
    Timeout,
    /// No connection, or it broke before an answer.
    Unreachable(String),
    /// The URL, or the address its host resolves to now, is not allowed: nothing was sent.
    Refused(String),
}

impl AttemptResult {
    /// The attempt's outcome as the delivery log and the metrics name it.
    pub fn outcome_label(&self) -> &'static str {
        match self {
            AttemptResult::Answered(status)
                if AttemptOutcome::of_status(*status) == AttemptOutcome::Delivered =>
            {
                "succeeded"
            }
            AttemptResult::Answered(_) => "failed",
            AttemptResult::Timeout => "timeout",
            AttemptResult::Unreachable(_) => "unreachable",
            AttemptResult::Refused(_) => "refused",
        }
    }

    fn is_success(&self) -> bool {
        self.outcome_label() == "succeeded"
    }
}

/// What becomes of the endpoint after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointHealth {
    /// It answered 2xx: no longer failing.
    Healthy,
    /// It failed, and was first seen failing at `since_ms` (this attempt, if it was not failing).
    Failing { since_ms: i64 },
    /// Disabled now: a 410 Gone (`gone`) or failing for longer than the policy (`failing`).
    Disable { reason: &'static str, since_ms: i64 },
}

/// The delivery as it is after the attempt, and what it means for the endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct AfterAttempt {
    pub delivery: DeliveryDoc,
    pub endpoint: EndpointHealth,
    /// The schedule has no attempt left: the delivery is given up (and stays replayable).
    pub given_up: bool,
}

/// When a failed delivery is tried again, and when its endpoint is disabled.
#[derive(Debug, Clone, Copy)]
pub struct Policies<'a> {
    pub schedule: &'a RetrySchedule,
    pub disable: DisablePolicy,
}

/// Applies an attempt that started at `started` and took `latency_ms` to `delivery`.
/// `failing_since_ms` is the endpoint's first failure since its last success, if any.
pub fn after_attempt(
    delivery: &DeliveryDoc,
    result: &AttemptResult,
    latency_ms: u64,
    started: OffsetDateTime,
    failing_since_ms: Option<i64>,
    policies: Policies<'_>,
    rng: &mut fastrand::Rng,
) -> AfterAttempt {
    let started_ms = epoch_ms(started);
    let ended_ms = started_ms.saturating_add(i64::try_from(latency_ms).unwrap_or(i64::MAX));
    let mut next = delivery.clone();
    next.attempt_count += 1;
    next.scheduled_attempts += 1;
    next.attempts.push(DeliveryAttempt {
        attempted_at_ms: started_ms,
        outcome: result.outcome_label().to_owned(),
        response_code: match result {
            AttemptResult::Answered(status) => Some(*status),
            _ => None,
        },
        latency_ms,
        error: match result {
            AttemptResult::Answered(_) | AttemptResult::Timeout => None,
            AttemptResult::Unreachable(e) | AttemptResult::Refused(e) => Some(bounded(e)),
        },
    });
    let excess = next.attempts.len().saturating_sub(MAX_LOGGED_ATTEMPTS);
    next.attempts.drain(..excess);

    if result.is_success() {
        next.state = DeliveryState::Delivered;
        next.delivered_at_ms = Some(ended_ms);
        return AfterAttempt { delivery: next, endpoint: EndpointHealth::Healthy, given_up: false };
    }
    let since_ms = failing_since_ms.unwrap_or(started_ms);
    let endpoint = if *result == AttemptResult::Answered(410) {
        EndpointHealth::Disable { reason: "gone", since_ms }
    } else if policies.disable.is_due(from_ms(since_ms), started) {
        EndpointHealth::Disable { reason: "failing", since_ms }
    } else {
        EndpointHealth::Failing { since_ms }
    };
    let given_up = match policies.schedule.next_attempt(next.scheduled_attempts, rng) {
        Some(delay) => {
            let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            next.next_attempt_at_ms = ended_ms.saturating_add(delay_ms);
            false
        }
        None => {
            next.state = DeliveryState::Failed;
            true
        }
    };
    AfterAttempt { delivery: next, endpoint, given_up }
}

/// An error text as the delivery log keeps it: one line, at most 300 characters.
fn bounded(text: &str) -> String {
    let line = text.replace(['\n', '\r'], " ");
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

pub fn epoch_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use leadflow_core::model::webhook::Jitter;
    use leadflow_core::store::documents::DeliveryTarget;
    use time::macros::datetime;

    use super::*;

    const AT: OffsetDateTime = datetime!(2026-01-16 10:00:00 UTC);

    fn pending() -> DeliveryDoc {
        DeliveryDoc {
            id: "msg_1".into(),
            endpoint_id: "e".into(),
            project_id: "acme".into(),
            target: DeliveryTarget::Webhook,
            partition: 0,
            kind: "lead.entered_stage".into(),
            body: "{}".into(),
            state: DeliveryState::Pending,
            attempt_count: 0,
            scheduled_attempts: 0,
            next_attempt_at_ms: 0,
            attempts: Vec::new(),
            created_at_ms: 0,
            delivered_at_ms: None,
            execution_key: None,
        }
    }

    fn schedule() -> RetrySchedule {
        let delays = [0, 5, 300].map(Duration::from_secs).to_vec();
        RetrySchedule::new(delays, Jitter::None).unwrap()
    }

    fn attempt(d: &DeliveryDoc, result: AttemptResult, failing_since_ms: Option<i64>) -> AfterAttempt {
        let rng = &mut fastrand::Rng::with_seed(7);
        let schedule = schedule();
        let policies = Policies { schedule: &schedule, disable: DisablePolicy::default() };
        after_attempt(d, &result, 40, AT, failing_since_ms, policies, rng)
    }

    #[test]
    fn a_2xx_delivers_and_the_endpoint_is_healthy() {
        let after = attempt(&pending(), AttemptResult::Answered(204), Some(1));
        assert_eq!(after.delivery.state, DeliveryState::Delivered);
        assert_eq!(after.delivery.delivered_at_ms, Some(epoch_ms(AT) + 40));
        assert_eq!(after.endpoint, EndpointHealth::Healthy);
        assert_eq!(after.delivery.attempts[0].outcome, "succeeded");
        assert_eq!(after.delivery.attempts[0].response_code, Some(204));
    }

    #[test]
    fn failures_follow_the_schedule_from_the_end_of_each_attempt_then_give_up() {
        let first = attempt(&pending(), AttemptResult::Answered(500), None);
        assert_eq!(first.delivery.state, DeliveryState::Pending);
        assert_eq!(first.delivery.next_attempt_at_ms, epoch_ms(AT) + 40 + 5_000);
        assert_eq!(first.endpoint, EndpointHealth::Failing { since_ms: epoch_ms(AT) });
        let second = attempt(&first.delivery, AttemptResult::Timeout, Some(epoch_ms(AT)));
        assert_eq!(second.delivery.next_attempt_at_ms, epoch_ms(AT) + 40 + 300_000);
        let third = attempt(&second.delivery, AttemptResult::Unreachable("refused".into()), Some(1));
        assert!(third.given_up);
        assert_eq!(third.delivery.state, DeliveryState::Failed);
        let outcomes: Vec<&str> = third.delivery.attempts.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(outcomes, ["failed", "timeout", "unreachable"]);
        assert_eq!(third.delivery.attempt_count, 3);
    }

    #[test]
    fn a_410_disables_at_once_and_five_days_of_failure_disable_too() {
        assert_eq!(
            attempt(&pending(), AttemptResult::Answered(410), None).endpoint,
            EndpointHealth::Disable { reason: "gone", since_ms: epoch_ms(AT) }
        );
        let six_days_ago = epoch_ms(AT) - 6 * 86_400_000;
        assert_eq!(
            attempt(&pending(), AttemptResult::Answered(503), Some(six_days_ago)).endpoint,
            EndpointHealth::Disable { reason: "failing", since_ms: six_days_ago }
        );
        let four_days_ago = epoch_ms(AT) - 4 * 86_400_000;
        assert!(matches!(
            attempt(&pending(), AttemptResult::Answered(503), Some(four_days_ago)).endpoint,
            EndpointHealth::Failing { .. }
        ));
    }

    #[test]
    fn a_replayed_delivery_gets_the_whole_schedule_again_and_the_log_stays_bounded() {
        let mut d = pending();
        d.attempt_count = 40;
        d.attempts = (0..MAX_LOGGED_ATTEMPTS as i64)
            .map(|i| DeliveryAttempt {
                attempted_at_ms: i,
                outcome: "failed".into(),
                response_code: Some(500),
                latency_ms: 1,
                error: None,
            })
            .collect();
        let after = attempt(&d, AttemptResult::Answered(500), None);
        assert!(!after.given_up, "scheduled attempts restart at 0 on a replay");
        assert_eq!(after.delivery.attempts.len(), MAX_LOGGED_ATTEMPTS);
        assert_eq!(after.delivery.attempts.last().unwrap().attempted_at_ms, epoch_ms(AT));
        assert_eq!(after.delivery.attempt_count, 41);
    }

    #[test]
    fn an_error_text_is_one_bounded_line() {
        let long = "x\n".repeat(400);
        let after = attempt(&pending(), AttemptResult::Unreachable(long), None);
        let error = after.delivery.attempts[0].error.clone().unwrap();
        assert!(!error.contains('\n'));
        assert!(error.chars().count() <= 301);
    }
}
