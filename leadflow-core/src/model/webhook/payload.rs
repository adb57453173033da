//! What a webhook delivery says: its event kind and its body. A body is built once, when the
//! delivery is queued, and the same bytes are signed and sent on every attempt.
//!
//! Bodies follow the Standard Webhooks payload shape: `{"type", "timestamp", "data"}`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::contract::records::AutomationExecuted;
use crate::model::automation::{AutomationRule, Condition};

/// The kinds of event a subscription can take, named as its `eventKinds` list and a body's
/// `type` write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "lead.entered_stage")]
    LeadEnteredStage,
    #[serde(rename = "lead.score_crossed")]
    LeadScoreCrossed,
    #[serde(rename = "lead.velocity_reached")]
    LeadVelocityReached,
    #[serde(rename = "lead.verified")]
    LeadVerified,
    /// `POST /api/webhooks/{id}/test`: every subscription takes it.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::LeadEnteredStage,
        EventKind::LeadScoreCrossed,
        EventKind::LeadVelocityReached,
        EventKind::LeadVerified,
        EventKind::WebhookTest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::LeadEnteredStage => "lead.entered_stage",
            EventKind::LeadScoreCrossed => "lead.score_crossed",
            EventKind::LeadVelocityReached => "lead.velocity_reached",
            EventKind::LeadVerified => "lead.verified",
            EventKind::WebhookTest => "webhook.test",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The kind of event a rule with this condition sends.
    pub fn of_condition(condition: &Condition) -> EventKind {
        match condition {
            Condition::EntersStage { .. } => EventKind::LeadEnteredStage,
            Condition::ScoreCrosses { .. } => EventKind::LeadScoreCrossed,
            Condition::VelocityAtLeast { .. } => EventKind::LeadVelocityReached,
            Condition::BecomesVerified {} => EventKind::LeadVerified,
        }
    }

    /// Whether a subscription taking `kinds` gets this event (a test, always).
    pub fn is_taken_by(self, kinds: &[String]) -> bool {
        self == EventKind::WebhookTest || kinds.iter().any(|k| k == self.name())
    }
}

/// What the automator knew of the lead when the rule fired, for the body.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadFacts {
    pub stage: Option<crate::contract::records::Stage>,
    pub score: Option<f64>,
    pub status: Option<crate::contract::records::EnrichmentStatus>,
    pub name: Option<String>,
    pub events_24h: Option<u32>,
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("a record's time formats as RFC 3339")
}

/// The body of a rule's webhook delivery.
pub fn execution_body(rule: &AutomationRule, execution: &AutomationExecuted, lead: &LeadFacts) -> String {
    let body = json!({
        "type": EventKind::of_condition(&rule.condition).name(),
        "timestamp": rfc3339(execution.executed_at),
        "data": {
            "projectId": execution.project_id,
            "leadId": execution.lead_id,
            "rule": { "id": rule.id, "version": rule.version, "name": rule.name, "condition": rule.condition },
            "executionKey": execution.execution_key,
            "utcDay": execution.utc_day,
            "lead": lead,
            "trigger": {
                "topic": execution.trigger.topic,
                "partition": execution.trigger.partition,
                "offset": execution.trigger.offset,
                "eventId": execution.trigger_event_id,
                "at": rfc3339(execution.trigger_at),
            },
        },
    });
    body.to_string()
}

/// The body of a test delivery.
pub fn test_body(project_id: &str, endpoint_id: &str, at: OffsetDateTime) -> String {
    json!({
        "type": EventKind::WebhookTest.name(),
        "timestamp": rfc3339(at),
        "data": { "projectId": project_id, "subscriptionId": endpoint_id, "message": "a test delivery from LeadFlow" },
    })
    .to_string()
}

/// The default text of a `notifySales` message.
pub const DEFAULT_SALES_MESSAGE: &str = "Lead {leadId} ({name}) is {stage} with a score of {score}";

/// The default subject and text of an `email` action.
pub const DEFAULT_EMAIL_SUBJECT: &str = "LeadFlow: {name} is {stage}";
pub const DEFAULT_EMAIL_MESSAGE: &str = "Lead {leadId} ({name}) is {stage} with a score of {score}.";

/// What an email delivery stores: `{"to", "subject", "text"}` with the placeholders filled in.
/// The automator writes it as a MIME message when it sends.
pub fn email_body(
    to: &[String],
    subject: Option<&str>,
    message: Option<&str>,
    lead_id: &str,
    lead: &LeadFacts,
) -> String {
    let subject = fill(subject.unwrap_or(DEFAULT_EMAIL_SUBJECT), lead_id, lead);
    let text = fill(message.unwrap_or(DEFAULT_EMAIL_MESSAGE), lead_id, lead);
    json!({ "to": to, "subject": subject, "text": text }).to_string()
}

fn fill(template: &str, lead_id: &str, lead: &LeadFacts) -> String {
    let stage = lead.stage.and_then(|s| serde_json::to_value(s).ok());
    let stage = stage.as_ref().and_then(Value::as_str).unwrap_or("unknown");
    let score = lead.score.map(|s| format!("{s}")).unwrap_or_else(|| "unknown".into());
    template
        .replace("{leadId}", lead_id)
        .replace("{name}", lead.name.as_deref().unwrap_or(lead_id))
        .replace("{stage}", stage)
        .replace("{score}", &score)
}

/// A Slack-compatible incoming-webhook body (`text`, and `channel` when the rule names one),
/// with the rule's placeholders filled in.
pub fn sales_message_body(
    template: Option<&str>,
    channel: Option<&str>,
    lead_id: &str,
    lead: &LeadFacts,
) -> String {
    let text = fill(template.unwrap_or(DEFAULT_SALES_MESSAGE), lead_id, lead);
    let mut body = json!({ "text": text });
    if let Some(channel) = channel {
        body["channel"] = json!(channel);
    }
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::records::Stage;

    #[test]
    fn kinds_round_trip_by_name_and_a_test_reaches_every_subscription() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.name()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.name()));
        }
        assert_eq!(EventKind::parse("lead.hot"), None);
        let kinds = vec!["lead.verified".to_owned()];
        assert!(EventKind::LeadVerified.is_taken_by(&kinds));
        assert!(!EventKind::LeadEnteredStage.is_taken_by(&kinds));
        assert!(EventKind::WebhookTest.is_taken_by(&[]));
    }

    #[test]
    fn a_sales_message_fills_its_placeholders() {
        let lead = LeadFacts {
            stage: Some(Stage::Hot),
            score: Some(61.5),
            name: Some("Ada".into()),
            ..LeadFacts::default()
        };
        let body: Value =
            serde_json::from_str(&sales_message_body(None, Some("#sales"), "lead-1", &lead)).unwrap();
        assert_eq!(
            body,
            json!({ "text": "Lead lead-1 (Ada) is hot with a score of 61.5", "channel": "#sales" })
        );
        let body: Value =
            serde_json::from_str(&sales_message_body(Some("{name} turned {stage}"), None, "l", &lead))
                .unwrap();
        assert_eq!(body, json!({ "text": "Ada turned hot" }));
    }
}
