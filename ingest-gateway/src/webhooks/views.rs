//! Subscriptions and deliveries as the API answers them: the stored documents' fields, times
//! in RFC 3339, and never a subscription's secret.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use leadflow_core::store::documents::{DeliveryAttempt, DeliveryDoc, DeliveryState, WebhookEndpointDoc};

/// A time as epoch milliseconds, as the documents hold times.
pub fn epoch_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("a time within i64 milliseconds of 1970")
}

/// Epoch milliseconds as RFC 3339; a time outside the calendar's range (never written by
/// LeadFlow) as null.
pub fn rfc3339(ms: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?.format(&Rfc3339).ok()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub event_kinds: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    pub failing_since: Option<String>,
    pub created_at: Option<String>,
}

impl From<&WebhookEndpointDoc> for Subscription {
    fn from(doc: &WebhookEndpointDoc) -> Self {
        Subscription {
            id: doc.id.clone(),
            url: doc.url.clone(),
            event_kinds: doc.event_kinds.clone(),
            description: doc.description.clone(),
            enabled: doc.enabled,
            disabled_reason: doc.disabled_reason.clone(),
            disabled_at: doc.disabled_at_ms.and_then(rfc3339),
            failing_since: doc.failing_since_ms.and_then(rfc3339),
            created_at: rfc3339(doc.created_at_ms),
        }
    }
}

/// The answer to `POST /api/webhooks`: the subscription and, this once, its secret.
#[derive(Debug, Serialize)]
pub struct Created {
    #[serde(flatten)]
    pub subscription: Subscription,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    pub kind: String,
    pub state: DeliveryState,
    pub attempt_count: u32,
    /// While pending only.
    pub next_attempt_at: Option<String>,
    pub created_at: Option<String>,
    pub delivered_at: Option<String>,
    pub execution_key: Option<String>,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempted_at: Option<String>,
    pub outcome: String,
    pub response_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

impl From<&DeliveryAttempt> for Attempt {
    fn from(attempt: &DeliveryAttempt) -> Self {
        Attempt {
            attempted_at: rfc3339(attempt.attempted_at_ms),
            outcome: attempt.outcome.clone(),
            response_code: attempt.response_code,
            latency_ms: attempt.latency_ms,
            error: attempt.error.clone(),
        }
    }
}

impl From<&DeliveryDoc> for Delivery {
    fn from(doc: &DeliveryDoc) -> Self {
        Delivery {
            id: doc.id.clone(),
            kind: doc.kind.clone(),
            state: doc.state,
            attempt_count: doc.attempt_count,
            next_attempt_at: (doc.state == DeliveryState::Pending)
                .then(|| rfc3339(doc.next_attempt_at_ms))
                .flatten(),
            created_at: rfc3339(doc.created_at_ms),
            delivered_at: doc.delivered_at_ms.and_then(rfc3339),
            execution_key: doc.execution_key.clone(),
            attempts: doc.attempts.iter().map(Attempt::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_to_the_millisecond() {
        assert_eq!(rfc3339(1_768_557_600_123).as_deref(), Some("2026-01-16T10:00:00.123Z"));
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(i64::MAX), None);
    }
}
