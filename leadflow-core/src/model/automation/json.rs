//! A posted rule's JSON, checked before it becomes an [`AutomationRule`]: every unknown,
//! missing or mistyped field is reported by its JSON path, not serde's first complaint. This is
//! the gateway's `validate_scoring_rules` for automation rules. It lives in leadflow-core,
//! pure, so the automations API can answer 400s that name the field without knowing the type.

use serde::Serialize;
use serde_json::{Map, Value};

use super::AutomationRule;

/// One rule broken by one field. The same three parts as the gateway's `FieldError`, so each
/// maps onto one: `field` is a path such as `condition.threshold` or `actions[1].type`, and
/// `reason` is one of `required`, `invalid_type`, `unknown_field`, `invalid_value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFieldError {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
}

/// The fields a client posts. No `projectId`: the API stamps the caller's project, as it does
/// for scoring rules, so a rule cannot be posted into another project.
const RULE_FIELDS: &[&str] = &["id", "version", "name", "enabled", "condition", "actions"];
const CONDITION_TYPES: &[&str] = &["entersStage", "scoreCrosses", "velocityAtLeast", "becomesVerified"];
const ACTION_TYPES: &[&str] = &["webhook", "notifySales", "email"];
const STAGES: &[&str] = &["cold", "warm", "hot", "qualified"];
const WINDOWS: &[&str] = &["24h"];

/// Validates a posted rule: first its shape, every problem at once, then
/// [`AutomationRule::validate`], whose error names the field the same way (reason
/// `invalid_value`). The rule is in the default project; the caller stamps its own.
pub fn validate_rule_json(value: &Value) -> Result<AutomationRule, Vec<RuleFieldError>> {
    let Some(object) = value.as_object() else {
        return Err(vec![error("rule", "invalid_type", "rule must be a JSON object".to_owned())]);
    };
    let mut errors = Vec::new();
    let mut rule = Fields { object, path: String::new(), errors: &mut errors };
    rule.only(RULE_FIELDS);
    rule.string("id");
    rule.string("version");
    rule.string("name");
    rule.optional_bool("enabled");
    let events = rule.object("condition").and_then(|mut condition| check_condition(&mut condition));
    if let Some(actions) = rule.array("actions") {
        for (index, action) in actions.iter().enumerate() {
            if let Some(mut action) = rule.item(action, format!("actions[{index}]")) {
                check_action(&mut action);
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut value = value.clone();
    // JSON Schema's `integer` is any number without a fraction, `10.0` included; serde's `u32`
    // takes only `10`. The whole number is written back so that both accept the same rules.
    if let Some(events) = events {
        value["condition"]["events"] = Value::from(events);
    }
    // The shape was checked above, so this fails only if the check and the type disagree.
    let rule: AutomationRule = serde_json::from_value(value)
        .map_err(|e| vec![error("rule", "invalid_type", format!("rule does not fit its type: {e}"))])?;
    rule.validate().map_err(|e| vec![error(&e.field, "invalid_value", e.to_string())])?;
    Ok(rule)
}

/// The fields of the condition, by its type. Returns `events` when it is a whole number, to be
/// written back as one.
fn check_condition(condition: &mut Fields<'_, '_>) -> Option<u64> {
    match condition.one_of("type", CONDITION_TYPES)? {
        "entersStage" => {
            condition.only(&["type", "stage"]);
            condition.one_of("stage", STAGES);
            None
        }
        "scoreCrosses" => {
            condition.only(&["type", "threshold"]);
            condition.number("threshold");
            None
        }
        "velocityAtLeast" => {
            condition.only(&["type", "events", "window"]);
            condition.one_of("window", WINDOWS);
            condition.whole_number("events")
        }
        _ => {
            condition.only(&["type"]);
            None
        }
    }
}

/// The fields of one action, by its type.
fn check_action(action: &mut Fields<'_, '_>) {
    match action.one_of("type", ACTION_TYPES) {
        Some("webhook") => {
            action.only(&["type", "subscriptionId"]);
            action.string("subscriptionId");
        }
        Some("email") => {
            action.only(&["type", "to", "subject", "message"]);
            if let Some(to) = action.array("to") {
                for (index, address) in to.iter().enumerate() {
                    if !address.is_string() {
                        let field = format!("{}[{index}]", action.name("to"));
                        action.errors.push(error(
                            &field,
                            "invalid_type",
                            format!("{field} must be a string"),
                        ));
                    }
                }
            }
            action.optional_string("subject");
            action.optional_string("message");
        }
        Some(_) => {
            action.only(&["type", "channel", "message"]);
            action.optional_string("channel");
            action.optional_string("message");
        }
        None => {}
    }
}

/// `10` and `10.0`, as long as it fits a `u32`.
fn as_whole_u32(value: &Value) -> Option<u64> {
    let whole =
        value.as_u64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
    whole.filter(|&n| n <= u64::from(u32::MAX))
}

fn error(field: &str, reason: &'static str, message: String) -> RuleFieldError {
    RuleFieldError { field: field.to_owned(), reason, message }
}

/// One JSON object of the rule, and the path that names its fields in errors (empty at the
/// top, `condition`, `actions[1]`). A required field sent as `null` is missing; an optional one
/// sent as `null` is mistyped, because a client leaves a field out rather than send null.
struct Fields<'v, 'e> {
    object: &'v Map<String, Value>,
    path: String,
    errors: &'e mut Vec<RuleFieldError>,
}

impl<'v> Fields<'v, '_> {
    fn name(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }

    fn push(&mut self, key: &str, reason: &'static str, problem: &str) {
        let field = self.name(key);
        let message = format!("{field} {problem}");
        self.errors.push(RuleFieldError { field, reason, message });
    }

    /// Reports each field not in `known`.
    fn only(&mut self, known: &[&str]) {
        for key in self.object.keys().filter(|key| !known.contains(&key.as_str())) {
            let field = self.name(key);
            let message = format!("unknown field {field}; expected one of {}", known.join(", "));
            self.errors.push(RuleFieldError { field, reason: "unknown_field", message });
        }
    }

    /// The value of a required field, or `None` after reporting it missing.
    fn required(&mut self, key: &str) -> Option<&'v Value> {
        match self.object.get(key) {
            None | Some(Value::Null) => {
                self.push(key, "required", "is required");
                None
            }
            Some(value) => Some(value),
        }
    }

    /// The value of an optional field, or `None` when it is absent or reported as null.
    fn optional(&mut self, key: &str) -> Option<&'v Value> {
        match self.object.get(key) {
            Some(Value::Null) => {
                self.push(key, "invalid_type", "must not be null; leave it out instead");
                None
            }
            value => value,
        }
    }

    /// `value` checked by `accept`, or `None` after reporting that it must be `what`.
    fn typed<T>(
        &mut self,
        key: &str,
        value: Option<&'v Value>,
        what: &str,
        accept: fn(&'v Value) -> Option<T>,
    ) -> Option<T> {
        let value = value?;
        let accepted = accept(value);
        if accepted.is_none() {
            self.push(key, "invalid_type", &format!("must be {what}"));
        }
        accepted
    }

    fn string(&mut self, key: &str) -> Option<&'v str> {
        let value = self.required(key);
        self.typed(key, value, "a string", Value::as_str)
    }

    fn optional_string(&mut self, key: &str) {
        let value = self.optional(key);
        self.typed(key, value, "a string", Value::as_str);
    }

    fn optional_bool(&mut self, key: &str) {
        let value = self.optional(key);
        self.typed(key, value, "true or false", Value::as_bool);
    }

    fn number(&mut self, key: &str) {
        let value = self.required(key);
        self.typed(key, value, "a number", Value::as_f64);
    }

    /// A whole number that fits the field's `u32`; its range is [`AutomationRule::validate`]'s.
    fn whole_number(&mut self, key: &str) -> Option<u64> {
        let value = self.required(key);
        self.typed(key, value, "a whole number from 1 to 10000", as_whole_u32)
    }

    /// A required string that must be one of `allowed`.
    fn one_of(&mut self, key: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let given = self.string(key)?;
        let found = allowed.iter().find(|name| **name == given).copied();
        if found.is_none() {
            let problem = format!("{given:?} is not one of {}", allowed.join(", "));
            self.push(key, "invalid_value", &problem);
        }
        found
    }

    fn object(&mut self, key: &str) -> Option<Fields<'v, '_>> {
        let value = self.required(key)?;
        let path = self.name(key);
        self.item(value, path)
    }

    fn array(&mut self, key: &str) -> Option<&'v Vec<Value>> {
        let value = self.required(key);
        self.typed(key, value, "an array", Value::as_array)
    }

    /// `value` as an object whose fields are named under `path`, or `None` after reporting it.
    fn item(&mut self, value: &'v Value, path: String) -> Option<Fields<'v, '_>> {
        let Some(object) = value.as_object() else {
            let message = format!("{path} must be a JSON object");
            self.errors.push(RuleFieldError { field: path, reason: "invalid_type", message });
            return None;
        };
        Some(Fields { object, path, errors: &mut *self.errors })
    }
}
