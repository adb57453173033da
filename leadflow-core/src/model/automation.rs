//! Automation rules: what a project wants done when one of its leads changes, for example
//! "when a lead enters hot, POST it to our webhook" (issue #17).
//!
//! This is the pure half of automations: the rule as it is stored and checked, when a rule's
//! condition fires between two states of a lead, and the key that lets a rule act on a lead at
//! most once per UTC day. Reading topics, recording executions and delivering webhooks belong
//! to the automator; nothing here does I/O or reads a clock.
//!
//! - A [`Condition`] fires on a *change*, not on a state: each new record of a lead is compared
//!   with the lead's state just before it ([`LeadSnapshot`], [`Condition::fires`]). A lead that
//!   stays hot does not fire "enters hot" again with every event.
//! - Firing is not deduplicated here. The automator records one execution per
//!   [`execution_key`] (project, rule, lead, UTC day), and any later firing that day finds the
//!   key taken. A lead that leaves hot and comes back the same day fires twice and acts once.
//! - The actions are a `webhook` to a subscription, a `notifySales` message and an `email`
//!   through the deployment's SMTP server (tested against Debian's aiosmtpd).
//!
//! Rules are checked twice, as the scoring rules are. [`validate_rule_json`] checks the shape of
//! a posted rule and names unknown and mistyped fields by their JSON path
//! (`actions[1].subscriptionId`). Then [`AutomationRule::validate`] checks what the types cannot
//! refuse: ranges, lengths, the placeholders of a message. The wire schema
//! `schemas/AutomationRule.schema.json` says the same, and the tests hold the two together.

use serde::{Deserialize, Serialize};

use crate::contract::project;
use crate::contract::records::Stage;
use crate::model::scoring::MAX_THRESHOLD;

mod execution;
mod json;
mod trigger;

pub use execution::{execution_key, utc_day};
pub use json::{RuleFieldError, validate_rule_json};
pub use trigger::LeadSnapshot;

/// The longest version, in characters: as long as a scoring rules' version.
pub const MAX_VERSION_CHARS: usize = 64;
pub const MAX_NAME_CHARS: usize = 128;
/// A rule does a few things, not a workflow's worth.
pub const MAX_ACTIONS: usize = 5;
pub const MAX_VELOCITY_EVENTS: u32 = 10_000;
pub const MAX_CHANNEL_CHARS: usize = 80;
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// An email action writes to a few people, not a mailing list.
pub const MAX_RECIPIENTS: usize = 10;
pub const MAX_SUBJECT_CHARS: usize = 200;
/// RFC 5321's limit on a path.
pub const MAX_ADDRESS_CHARS: usize = 254;
/// What a `notifySales` message may name, each written `{leadId}` and so on.
pub const PLACEHOLDERS: [&str; 4] = ["leadId", "name", "stage", "score"];

const ID_RULE: &str = "must match ^[a-z0-9][a-z0-9-]{0,62}$";

/// One automation rule of a project: when `condition` fires for a lead, do `actions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutomationRule {
    /// The project whose leads the rule watches; absent is the default one, as in every record.
    /// A posted rule has none: the API stamps the caller's project.
    #[serde(default = "project::default_project", skip_serializing_if = "project::is_default_project")]
    pub project_id: String,
    /// Unique within the project. A slug, so that it fits a URL path and the execution key.
    pub id: String,
    /// The name of this revision of the rule. Executions record it, so a log shows which
    /// revision acted; a new version does not fire again a day already executed.
    pub version: String,
    pub name: String,
    /// A disabled rule is kept but fires nothing.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    pub condition: Condition,
    pub actions: Vec<Action>,
}

fn enabled_by_default() -> bool {
    true
}

/// When a rule fires: on the change between two states of a lead (see [`Condition::fires`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Condition {
    /// The lead moves into `stage` from any other stage (or from none, as a new lead).
    EntersStage { stage: Stage },
    /// The score goes from below `threshold` to at least `threshold`. Upwards only: falling
    /// back below it fires nothing.
    ScoreCrosses { threshold: f64 },
    /// The lead's events in the last 24 hours reach `events`.
    VelocityAtLeast { events: u32, window: VelocityWindow },
    /// The enricher's status becomes Verified.
    BecomesVerified {},
}

/// The window a velocity counts events over. The issue asks for 24 hours only. The field is
/// still written out, so that a rule says what it counts and another window can be added
/// without changing what existing rules mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VelocityWindow {
    #[serde(rename = "24h")]
    Hours24,
}

/// What a rule does when it fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Action {
    /// POST the lead to a webhook subscription of the same project.
    Webhook { subscription_id: String },
    /// A message to the project's Slack-compatible incoming webhook.
    NotifySales {
        /// Where the message goes, when the incoming webhook takes a channel (`#sales`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// The text, with [`PLACEHOLDERS`] filled in; absent means the automator's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// An email through the deployment's SMTP server (`email.smtp_url`).
    Email {
        /// 1 to [`MAX_RECIPIENTS`] bare addresses (`sales@example.com`).
        to: Vec<String>,
        /// With [`PLACEHOLDERS`] filled in; absent means the automator's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// The text, with [`PLACEHOLDERS`] filled in; absent means the automator's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

/// A rule that would do nonsense. The offending field is named by its JSON path, as in
/// `condition.threshold` or `actions[1].subscriptionId`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid automation rule: {field} {problem}")]
pub struct RuleError {
    pub field: String,
    pub problem: &'static str,
}

impl RuleError {
    fn new(field: &str, problem: &'static str) -> Self {
        RuleError { field: field.to_owned(), problem }
    }

    /// The same error, its field placed under `prefix` (`condition`, `actions[1]`).
    fn under(self, prefix: &str) -> Self {
        RuleError { field: format!("{prefix}.{}", self.field), ..self }
    }
}

/// The first part of every key on `automations.rules.v1`.
pub const RULE_KEY_PREFIX: &str = "automation";

impl AutomationRule {
    /// The rule's key on `automations.rules.v1`: `automation/<project>/<id>`, the project always
    /// written. Compaction keeps the newest record of each, and a delete is a tombstone under it.
    pub fn topic_key(project_id: &str, rule_id: &str) -> String {
        format!("{RULE_KEY_PREFIX}/{project_id}/{rule_id}")
    }

    /// The project and rule id a key of `automations.rules.v1` names, if it is one.
    pub fn parse_topic_key(key: &str) -> Option<(&str, &str)> {
        let rest = key.strip_prefix(RULE_KEY_PREFIX)?.strip_prefix('/')?;
        let (project_id, rule_id) = rest.split_once('/')?;
        (project::check_project_id(project_id).is_ok() && project::check_project_id(rule_id).is_ok())
            .then_some((project_id, rule_id))
    }

    /// The condition's type as the rule's JSON writes it (`entersStage`, ...).
    pub fn condition_type(&self) -> &'static str {
        match self.condition {
            Condition::EntersStage { .. } => "entersStage",
            Condition::ScoreCrosses { .. } => "scoreCrosses",
            Condition::VelocityAtLeast { .. } => "velocityAtLeast",
            Condition::BecomesVerified {} => "becomesVerified",
        }
    }
}

impl crate::contract::records::TopicRecord for AutomationRule {
    const TOPIC: &'static str = crate::contract::topics::AUTOMATION_RULES;
    const SCHEMA: &'static str = include_str!("../../../schemas/AutomationRule.schema.json");
    fn key(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Owned(AutomationRule::topic_key(&self.project_id, &self.id))
    }
}

impl AutomationRule {
    /// Checks the values of a rule before it is stored or used, as the wire schema does.
    /// Returns the first broken rule.
    pub fn validate(&self) -> Result<(), RuleError> {
        if project::check_project_id(&self.project_id).is_err() {
            return Err(RuleError::new("projectId", ID_RULE));
        }
        // The same slug as a project id, and for the same reasons: it is a path segment of the
        // API and a part of keys that `/` separates.
        if project::check_project_id(&self.id).is_err() {
            return Err(RuleError::new("id", ID_RULE));
        }
        if !is_text_within(&self.version, MAX_VERSION_CHARS) {
            return Err(RuleError::new("version", "must be 1 to 64 characters and not blank"));
        }
        if !is_text_within(&self.name, MAX_NAME_CHARS) {
            return Err(RuleError::new("name", "must be 1 to 128 characters and not blank"));
        }
        self.condition.validate().map_err(|e| e.under("condition"))?;
        if !(1..=MAX_ACTIONS).contains(&self.actions.len()) {
            return Err(RuleError::new("actions", "must hold 1 to 5 actions"));
        }
        for (index, action) in self.actions.iter().enumerate() {
            action.validate().map_err(|e| e.under(&format!("actions[{index}]")))?;
        }
        Ok(())
    }
}

impl Condition {
    /// Fields are named relative to the condition.
    fn validate(&self) -> Result<(), RuleError> {
        match *self {
            // A score is never below 0 and a lead without one counts as 0, so a threshold of 0
            // could never be crossed: refused rather than stored as a rule that never fires.
            Condition::ScoreCrosses { threshold } if !(threshold > 0.0 && threshold <= MAX_THRESHOLD) => {
                Err(RuleError::new("threshold", "must be a number above 0 and at most 1000000000"))
            }
            Condition::VelocityAtLeast { events, .. } if !(1..=MAX_VELOCITY_EVENTS).contains(&events) => {
                Err(RuleError::new("events", "must be a whole number from 1 to 10000"))
            }
            _ => Ok(()),
        }
    }
}

impl Action {
    /// Fields are named relative to the action.
    fn validate(&self) -> Result<(), RuleError> {
        match self {
            // Subscription ids are not minted yet; a slug admits the UUIDs they will likely be.
            Action::Webhook { subscription_id } if project::check_project_id(subscription_id).is_err() => {
                Err(RuleError::new("subscriptionId", ID_RULE))
            }
            Action::Webhook { .. } => Ok(()),
            Action::NotifySales { channel, message } => {
                // Blank is refused rather than read as absent: a client leaves a field out.
                if channel.as_ref().is_some_and(|channel| !is_text_within(channel, MAX_CHANNEL_CHARS)) {
                    return Err(RuleError::new("channel", "must be 1 to 80 characters and not blank"));
                }
                let Some(message) = message else { return Ok(()) };
                if !is_text_within(message, MAX_MESSAGE_CHARS) {
                    return Err(RuleError::new("message", "must be 1 to 1000 characters and not blank"));
                }
                if !is_message_template(message) {
                    return Err(RuleError::new(
                        "message",
                        "may hold only the placeholders {leadId}, {name}, {stage} and {score}, \
                         and no other { or }",
                    ));
                }
                Ok(())
            }
            Action::Email { to, subject, message } => {
                if !(1..=MAX_RECIPIENTS).contains(&to.len()) {
                    return Err(RuleError::new("to", "must hold 1 to 10 addresses"));
                }
                for (index, address) in to.iter().enumerate() {
                    if !is_bare_address(address) {
                        return Err(RuleError::new(
                            &format!("to[{index}]"),
                            "must be a bare address such as sales@example.com (at most 254 characters, no spaces, quotes, angle brackets, commas or semicolons)",
                        ));
                    }
                }
                if let Some(subject) = subject {
                    // A line break in a subject would start a header of the sender's choosing.
                    if !is_text_within(subject, MAX_SUBJECT_CHARS) || subject.contains(['\r', '\n']) {
                        return Err(RuleError::new(
                            "subject",
                            "must be 1 to 200 characters on one line and not blank",
                        ));
                    }
                    if !is_message_template(subject) {
                        return Err(RuleError::new("subject", PLACEHOLDER_RULE));
                    }
                }
                if let Some(message) = message {
                    if !is_text_within(message, MAX_MESSAGE_CHARS) {
                        return Err(RuleError::new("message", "must be 1 to 1000 characters and not blank"));
                    }
                    if !is_message_template(message) {
                        return Err(RuleError::new("message", PLACEHOLDER_RULE));
                    }
                }
                Ok(())
            }
        }
    }
}

const PLACEHOLDER_RULE: &str =
    "may hold only the placeholders {leadId}, {name}, {stage} and {score}, and no other { or }";

/// `local@domain.tld` with none of the characters that would let an address become a second
/// recipient or a header: the schema's pattern says the same.
fn is_bare_address(address: &str) -> bool {
    let allowed = |c: char| !(c.is_whitespace() || c.is_control() || "<>,;\"()[]\\@".contains(c));
    let Some((local, domain)) = address.split_once('@') else { return false };
    address.chars().count() <= MAX_ADDRESS_CHARS
        && !local.is_empty()
        && local.chars().all(allowed)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain.chars().all(allowed)
}

/// Not blank, and at most `max` characters (not bytes: what a person sees).
fn is_text_within(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max
}

/// Every `{` opens one of [`PLACEHOLDERS`] and every `}` closes one. There is no escape for a
/// literal brace: a mistyped placeholder such as `{lead_id}` is then a 400 at once, not a
/// message that prints it to the sales team. The schema's pattern is the same rule.
fn is_message_template(text: &str) -> bool {
    let mut rest = text;
    while let Some(brace) = rest.find(['{', '}']) {
        let from_brace = &rest[brace..];
        let Some(inner) = from_brace.strip_prefix('{') else { return false };
        let Some(close) = inner.find('}') else { return false };
        if !PLACEHOLDERS.contains(&&inner[..close]) {
            return false;
        }
        rest = &inner[close + 1..];
    }
    true
}

#[cfg(test)]
mod tests;
