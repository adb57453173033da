use serde_json::{Value, json};

use super::*;

const SCHEMA: &str = include_str!("../../../../schemas/AutomationRule.schema.json");

/// "When a lead enters hot, POST it to the CRM's subscription and tell sales."
fn hot_rule() -> Value {
    json!({
        "id": "hot-to-crm",
        "version": "v1",
        "name": "Hot leads to the CRM",
        "condition": {"type": "entersStage", "stage": "hot"},
        "actions": [
            {"type": "webhook", "subscriptionId": "0190f1c2-7d3a-7cc1-8e2b-5a6c7d8e9f00"},
            {"type": "notifySales", "channel": "#sales", "message": "{name} is {stage} ({score}): /leads/{leadId}"}
        ]
    })
}

/// [`hot_rule`] changed by `change`.
fn edited(change: impl FnOnce(&mut Value)) -> Value {
    let mut rule = hot_rule();
    change(&mut rule);
    rule
}

fn schema_accepts(value: &Value) -> bool {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    jsonschema::validator_for(&schema).unwrap().is_valid(value)
}

/// The (field, reason) pairs `validate_rule_json` reports for `value`.
fn refusals(value: &Value) -> Vec<(String, &'static str)> {
    match validate_rule_json(value) {
        Ok(rule) => panic!("accepted {value}: {rule:?}"),
        Err(errors) => errors.into_iter().map(|e| (e.field, e.reason)).collect(),
    }
}

#[test]
fn a_valid_rule_passes_every_check_and_round_trips() {
    let rule = validate_rule_json(&hot_rule()).unwrap();
    assert_eq!(rule.project_id, "default");
    assert!(rule.enabled, "enabled when left out");
    assert_eq!(rule.condition, Condition::EntersStage { stage: Stage::Hot });
    assert_eq!(rule.actions.len(), 2);
    assert!(schema_accepts(&hot_rule()));

    let written = serde_json::to_value(&rule).unwrap();
    assert!(schema_accepts(&written), "{written}");
    assert_eq!(written.get("projectId"), None, "the default project is not written");
    assert_eq!(serde_json::from_value::<AutomationRule>(written).unwrap(), rule);
}

#[test]
fn every_kind_of_condition_and_action_is_accepted_by_both_checks() {
    let conditions = [
        json!({"type": "entersStage", "stage": "cold"}),
        json!({"type": "scoreCrosses", "threshold": 75.5}),
        json!({"type": "velocityAtLeast", "events": 10, "window": "24h"}),
        json!({"type": "becomesVerified"}),
    ];
    for condition in conditions {
        let value = edited(|rule| rule["condition"] = condition.clone());
        let rule = validate_rule_json(&value).unwrap_or_else(|e| panic!("{condition}: {e:?}"));
        assert!(schema_accepts(&value), "{condition}");
        assert!(schema_accepts(&serde_json::to_value(&rule).unwrap()), "{condition}");
    }
    let bare_notification = edited(|rule| rule["actions"] = json!([{"type": "notifySales"}]));
    assert_eq!(
        validate_rule_json(&bare_notification).unwrap().actions,
        [Action::NotifySales { channel: None, message: None }]
    );
    assert!(schema_accepts(&bare_notification));
    let email = edited(|rule| {
        rule["actions"] =
            json!([{"type": "email", "to": ["sales@example.com"], "subject": "{name} is {stage}"}])
    });
    let rule = validate_rule_json(&email).unwrap();
    assert!(matches!(&rule.actions[0], Action::Email { to, .. } if to == &["sales@example.com"]));
    assert!(schema_accepts(&email));
    assert!(schema_accepts(&serde_json::to_value(&rule).unwrap()));
}

#[test]
fn values_at_their_limits_are_accepted_by_both_checks() {
    let limits = [
        // Characters, not bytes: 128 two-byte letters.
        edited(|rule| rule["name"] = json!("é".repeat(MAX_NAME_CHARS))),
        edited(|rule| rule["version"] = json!("v".repeat(MAX_VERSION_CHARS))),
        edited(|rule| rule["id"] = json!("a".repeat(63))),
        edited(|rule| rule["enabled"] = json!(false)),
        edited(|rule| rule["condition"] = json!({"type": "scoreCrosses", "threshold": 1e9})),
        edited(|rule| rule["condition"] = json!({"type": "scoreCrosses", "threshold": 0.000001})),
        edited(|rule| rule["condition"] = json!({"type": "velocityAtLeast", "events": 1, "window": "24h"})),
        edited(|rule| {
            rule["condition"] = json!({"type": "velocityAtLeast", "events": 10000, "window": "24h"})
        }),
        edited(|rule| {
            rule["actions"] = json!(vec![json!({"type": "webhook", "subscriptionId": "crm"}); MAX_ACTIONS])
        }),
        edited(|rule| rule["actions"][1]["channel"] = json!("c".repeat(MAX_CHANNEL_CHARS))),
        edited(|rule| rule["actions"][1]["message"] = json!("m".repeat(MAX_MESSAGE_CHARS))),
        edited(|rule| rule["actions"][1]["message"] = json!("{leadId}{name}{stage}{score}")),
        edited(|rule| rule["actions"][1]["message"] = json!("no placeholders at all")),
        edited(|rule| rule["actions"][1] = email(json!(vec!["a@b.c"; MAX_RECIPIENTS]), None)),
        edited(|rule| {
            let address = format!("{}@example.com", "a".repeat(MAX_ADDRESS_CHARS - 12));
            rule["actions"][1] = email(json!([address]), Some(json!("s".repeat(MAX_SUBJECT_CHARS))))
        }),
        edited(|rule| rule["actions"][1] = email(json!(["o'brien+leads@mail.example.co.uk"]), None)),
    ];
    for value in limits {
        assert!(validate_rule_json(&value).is_ok(), "{value}: {:?}", validate_rule_json(&value));
        assert!(schema_accepts(&value), "{value}");
    }
}

#[test]
fn a_whole_number_written_with_a_fraction_counts_as_that_number() {
    let value = edited(|rule| {
        rule["condition"] = json!({"type": "velocityAtLeast", "events": 10.0, "window": "24h"})
    });
    assert!(schema_accepts(&value), "JSON Schema's integer includes 10.0");
    let rule = validate_rule_json(&value).unwrap();
    assert_eq!(rule.condition, Condition::VelocityAtLeast { events: 10, window: VelocityWindow::Hours24 });
}

#[test]
fn unknown_missing_and_mistyped_fields_are_named_by_path() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (edited(|rule| rule["priority"] = json!(1)), "priority", "unknown_field"),
        (edited(|rule| rule["id"] = Value::Null), "id", "required"),
        (edited(|rule| rule["id"] = json!(7)), "id", "invalid_type"),
        (edited(|rule| rule["version"] = json!(["v1"])), "version", "invalid_type"),
        (edited(|rule| _ = rule.as_object_mut().unwrap().remove("name")), "name", "required"),
        (edited(|rule| rule["enabled"] = json!("yes")), "enabled", "invalid_type"),
        (edited(|rule| rule["enabled"] = Value::Null), "enabled", "invalid_type"),
        (edited(|rule| _ = rule.as_object_mut().unwrap().remove("condition")), "condition", "required"),
        (edited(|rule| rule["condition"] = json!("hot")), "condition", "invalid_type"),
        (edited(|rule| rule["condition"] = json!({"stage": "hot"})), "condition.type", "required"),
        (edited(|rule| rule["condition"]["type"] = json!("entersState")), "condition.type", "invalid_value"),
        (edited(|rule| rule["condition"]["stage"] = json!("lukewarm")), "condition.stage", "invalid_value"),
        (edited(|rule| rule["condition"]["stage"] = json!("Hot")), "condition.stage", "invalid_value"),
        (edited(|rule| rule["condition"]["threshold"] = json!(50)), "condition.threshold", "unknown_field"),
        (
            edited(|rule| rule["condition"] = json!({"type": "scoreCrosses", "threshold": "50"})),
            "condition.threshold",
            "invalid_type",
        ),
        (
            edited(|rule| rule["condition"] = json!({"type": "scoreCrosses"})),
            "condition.threshold",
            "required",
        ),
        (
            edited(|rule| {
                rule["condition"] = json!({"type": "velocityAtLeast", "events": 2.5, "window": "24h"})
            }),
            "condition.events",
            "invalid_type",
        ),
        (
            edited(|rule| {
                rule["condition"] = json!({"type": "velocityAtLeast", "events": -1, "window": "24h"})
            }),
            "condition.events",
            "invalid_type",
        ),
        (
            edited(|rule| {
                rule["condition"] = json!({"type": "velocityAtLeast", "events": 5, "window": "1h"})
            }),
            "condition.window",
            "invalid_value",
        ),
        (
            edited(|rule| rule["condition"] = json!({"type": "velocityAtLeast", "events": 5})),
            "condition.window",
            "required",
        ),
        (
            edited(|rule| rule["condition"] = json!({"type": "becomesVerified", "status": "Verified"})),
            "condition.status",
            "unknown_field",
        ),
        (edited(|rule| rule["actions"] = json!({"type": "webhook"})), "actions", "invalid_type"),
        (edited(|rule| rule["actions"][1] = json!("notifySales")), "actions[1]", "invalid_type"),
        (edited(|rule| rule["actions"][1] = json!({"type": "email"})), "actions[1].to", "required"),
        (
            edited(|rule| rule["actions"][1] = json!({"type": "email", "to": ["a@x.test", 7]})),
            "actions[1].to[1]",
            "invalid_type",
        ),
        (edited(|rule| rule["actions"][1]["type"] = json!("slack")), "actions[1].type", "invalid_value"),
        (
            edited(|rule| _ = rule["actions"][0].as_object_mut().unwrap().remove("subscriptionId")),
            "actions[0].subscriptionId",
            "required",
        ),
        (
            edited(|rule| rule["actions"][0]["url"] = json!("https://x.test")),
            "actions[0].url",
            "unknown_field",
        ),
        (edited(|rule| rule["actions"][1]["channel"] = Value::Null), "actions[1].channel", "invalid_type"),
        (edited(|rule| rule["actions"][1]["message"] = json!(5)), "actions[1].message", "invalid_type"),
        (edited(|rule| rule["actions"][1]["to"] = json!("sales@x.test")), "actions[1].to", "unknown_field"),
    ];
    for (value, field, reason) in cases {
        let found = refusals(&value);
        assert!(
            found.contains(&(field.to_owned(), reason)),
            "{value}: wanted {field} {reason}, got {found:?}"
        );
        assert!(!schema_accepts(&value), "the schema accepts {value}");
    }
}

/// An email action to `to`, with `subject` when given.
fn email(to: Value, subject: Option<Value>) -> Value {
    let mut action = json!({"type": "email", "to": to});
    if let Some(subject) = subject {
        action["subject"] = subject;
    }
    action
}

#[test]
fn values_out_of_range_are_named_by_path() {
    let long = |n: usize| json!("x".repeat(n));
    let cases: Vec<(Value, &str)> = vec![
        (edited(|rule| rule["id"] = json!("Hot_Rule")), "id"),
        (edited(|rule| rule["id"] = json!("")), "id"),
        (edited(|rule| rule["id"] = json!("-hot")), "id"),
        (edited(|rule| rule["id"] = json!("a".repeat(64))), "id"),
        (edited(|rule| rule["version"] = json!("   ")), "version"),
        (edited(|rule| rule["version"] = long(MAX_VERSION_CHARS + 1)), "version"),
        (edited(|rule| rule["name"] = json!("")), "name"),
        (edited(|rule| rule["name"] = long(MAX_NAME_CHARS + 1)), "name"),
        (
            edited(|rule| rule["condition"] = json!({"type": "scoreCrosses", "threshold": 0})),
            "condition.threshold",
        ),
        (
            edited(|rule| rule["condition"] = json!({"type": "scoreCrosses", "threshold": -5})),
            "condition.threshold",
        ),
        (
            edited(|rule| rule["condition"] = json!({"type": "scoreCrosses", "threshold": 1_000_000_001})),
            "condition.threshold",
        ),
        (
            edited(|rule| {
                rule["condition"] = json!({"type": "velocityAtLeast", "events": 0, "window": "24h"})
            }),
            "condition.events",
        ),
        (
            edited(|rule| {
                rule["condition"] = json!({"type": "velocityAtLeast", "events": 10001, "window": "24h"})
            }),
            "condition.events",
        ),
        (edited(|rule| rule["actions"] = json!([])), "actions"),
        (
            edited(|rule| {
                rule["actions"] =
                    json!(vec![json!({"type": "webhook", "subscriptionId": "crm"}); MAX_ACTIONS + 1])
            }),
            "actions",
        ),
        (edited(|rule| rule["actions"][0]["subscriptionId"] = json!("crm/1")), "actions[0].subscriptionId"),
        (edited(|rule| rule["actions"][1]["channel"] = json!(" ")), "actions[1].channel"),
        (edited(|rule| rule["actions"][1]["channel"] = long(MAX_CHANNEL_CHARS + 1)), "actions[1].channel"),
        (edited(|rule| rule["actions"][1]["message"] = json!("")), "actions[1].message"),
        (edited(|rule| rule["actions"][1]["message"] = json!(" \n ")), "actions[1].message"),
        (edited(|rule| rule["actions"][1]["message"] = long(MAX_MESSAGE_CHARS + 1)), "actions[1].message"),
        (edited(|rule| rule["actions"][1]["message"] = json!("Hot: {lead_id}")), "actions[1].message"),
        (edited(|rule| rule["actions"][1]["message"] = json!("Hot: {{leadId}}")), "actions[1].message"),
        (edited(|rule| rule["actions"][1]["message"] = json!("Hot: {leadId")), "actions[1].message"),
        (edited(|rule| rule["actions"][1]["message"] = json!("a } b")), "actions[1].message"),
        (edited(|rule| rule["actions"][1]["message"] = json!("{}")), "actions[1].message"),
        (edited(|rule| rule["actions"][1] = email(json!([]), None)), "actions[1].to"),
        (
            edited(|rule| rule["actions"][1] = email(json!(vec!["a@b.c"; MAX_RECIPIENTS + 1]), None)),
            "actions[1].to",
        ),
        (edited(|rule| rule["actions"][1] = email(json!(["sales"]), None)), "actions[1].to[0]"),
        (
            edited(|rule| rule["actions"][1] = email(json!(["a@b.c", "a@localhost"]), None)),
            "actions[1].to[1]",
        ),
        (edited(|rule| rule["actions"][1] = email(json!(["a b@c.d"]), None)), "actions[1].to[0]"),
        (edited(|rule| rule["actions"][1] = email(json!(["a@c.d, b@e.f"]), None)), "actions[1].to[0]"),
        (edited(|rule| rule["actions"][1] = email(json!(["a@c.d\r\nBcc: x@y.z"]), None)), "actions[1].to[0]"),
        (edited(|rule| rule["actions"][1] = email(json!(["<a@c.d>"]), None)), "actions[1].to[0]"),
        (edited(|rule| rule["actions"][1] = email(json!(["a@.cd"]), None)), "actions[1].to[0]"),
        (
            edited(|rule| rule["actions"][1] = email(json!(["a@b.c"]), Some(json!("Hot\r\nBcc: x@y.z")))),
            "actions[1].subject",
        ),
        (
            edited(|rule| rule["actions"][1] = email(json!(["a@b.c"]), Some(json!("{lead_id}")))),
            "actions[1].subject",
        ),
        (
            edited(|rule| rule["actions"][1] = email(json!(["a@b.c"]), Some(long(MAX_SUBJECT_CHARS + 1)))),
            "actions[1].subject",
        ),
    ];
    for (value, field) in cases {
        assert_eq!(refusals(&value), [(field.to_owned(), "invalid_value")], "{value}");
        assert!(!schema_accepts(&value), "the schema accepts {value}");
    }
}

#[test]
fn every_problem_of_the_shape_is_reported_at_once() {
    let value = json!({
        "id": 1,
        "name": "n",
        "colour": "red",
        "condition": {"type": "scoreCrosses", "threshold": "high"},
        "actions": [{"type": "webhook"}, {"type": "email"}]
    });
    let mut found = refusals(&value);
    found.sort();
    let expected = [
        ("actions[0].subscriptionId", "required"),
        ("actions[1].to", "required"),
        ("colour", "unknown_field"),
        ("condition.threshold", "invalid_type"),
        ("id", "invalid_type"),
        ("version", "required"),
    ];
    assert_eq!(found, expected.map(|(field, reason)| (field.to_owned(), reason)));
}

#[test]
fn the_errors_say_what_to_do() {
    let email = edited(|rule| {
        rule["actions"][1] = json!({"type": "email", "to": ["sales@x.test", "Ada <ada@x.test>"]})
    });
    let errors = validate_rule_json(&email).unwrap_err();
    assert_eq!(errors[0].field, "actions[1].to[1]");
    assert!(errors[0].message.contains("bare address such as sales@example.com"), "{}", errors[0].message);

    let unknown = validate_rule_json(&edited(|rule| rule["colour"] = json!("red"))).unwrap_err();
    assert!(unknown[0].message.contains("expected one of id, version, name"), "{}", unknown[0].message);

    let threshold = edited(|rule| rule["condition"] = json!({"type": "scoreCrosses", "threshold": 0}));
    let message = &validate_rule_json(&threshold).unwrap_err()[0].message;
    assert_eq!(
        message,
        "invalid automation rule: condition.threshold must be a number above 0 and at most 1000000000"
    );
}

#[test]
fn a_rule_that_is_not_an_object_is_refused_whole() {
    for value in [json!([]), json!("rule"), Value::Null] {
        assert_eq!(refusals(&value), [("rule".to_owned(), "invalid_type")]);
    }
}

#[test]
fn the_project_is_stamped_by_the_api_never_posted() {
    let posted = edited(|rule| rule["projectId"] = json!("acme"));
    assert_eq!(refusals(&posted), [("projectId".to_owned(), "unknown_field")]);

    // As a stored record of another project, the same rule is valid and carries it.
    let mut rule = validate_rule_json(&hot_rule()).unwrap();
    rule.project_id = "acme".into();
    assert_eq!(rule.validate(), Ok(()));
    let written = serde_json::to_value(&rule).unwrap();
    assert_eq!(written["projectId"], "acme");
    assert!(schema_accepts(&written));

    rule.project_id = "Acme".into();
    assert_eq!(rule.validate().unwrap_err().field, "projectId");
    assert!(!schema_accepts(&serde_json::to_value(&rule).unwrap()));
}

#[test]
fn thresholds_json_cannot_carry_are_refused_too() {
    let mut rule = validate_rule_json(&hot_rule()).unwrap();
    for threshold in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        rule.condition = Condition::ScoreCrosses { threshold };
        assert_eq!(rule.validate().unwrap_err().field, "condition.threshold", "{threshold}");
    }
}
