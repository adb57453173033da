use leadflow_core::contract::records::{LeadReviewed, ReviewDecision};
use serde_json::json;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-01-16 12:00:00 UTC);

fn event(extra: Value) -> Value {
    let mut base = json!({"leadId": "lead-1", "eventType": "page_view"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

/// The first error's (field, reason), or None when the event is valid.
fn first_error(value: Value) -> Option<(String, &'static str)> {
    validate_event(&value, NOW).err().map(|errors| (errors[0].field.clone(), errors[0].reason))
}

/// A `properties` object with `depth` levels of containers inside it: `nested(2)` is
/// `{"k":{"k":{"k":1}}}`.
fn nested(depth: usize) -> Value {
    (0..=depth).fold(json!(1), |inner, _| json!({"k": inner}))
}

#[test]
fn event_rules_table() {
    let max_id = "a".repeat(128);
    let long_id = "a".repeat(129);
    let type_64 = format!("a{}", "b".repeat(63));
    let type_65 = format!("a{}", "b".repeat(64));
    // 5 KiB serialised exactly: {"p":"…"} is 8 bytes of framing around the string.
    let props_at_limit = json!({"p": "x".repeat(MAX_PROPERTIES_BYTES - 8)});
    let props_over = json!({"p": "x".repeat(MAX_PROPERTIES_BYTES - 7)});
    assert_eq!(serde_json::to_vec(&props_at_limit).unwrap().len(), MAX_PROPERTIES_BYTES);

    type Case<'a> = (&'a str, Value, Option<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("minimal", json!({}), None),
        (
            "all fields",
            json!({"eventId": "evt1", "timestamp": "2026-01-16T10:00:00Z", "properties": {"page": "/pricing"}}),
            None,
        ),
        ("missing leadId", json!({"leadId": null}), Some(("leadId", "required"))),
        ("leadId wrong type", json!({"leadId": 42}), Some(("leadId", "invalid_type"))),
        ("leadId empty", json!({"leadId": ""}), Some(("leadId", "empty"))),
        ("leadId 128 chars", json!({"leadId": max_id}), None),
        ("leadId 129 chars", json!({"leadId": long_id}), Some(("leadId", "too_long"))),
        ("leadId all allowed punctuation", json!({"leadId": "a.b_c:d@e-f"}), None),
        ("leadId with space", json!({"leadId": "lead 1"}), Some(("leadId", "invalid_format"))),
        ("leadId with unicode", json!({"leadId": "léad"}), Some(("leadId", "invalid_format"))),
        ("missing eventType", json!({"eventType": null}), Some(("eventType", "required"))),
        ("eventType uppercase", json!({"eventType": "PageView"}), Some(("eventType", "invalid_format"))),
        ("eventType starts with digit", json!({"eventType": "1view"}), Some(("eventType", "invalid_format"))),
        ("eventType 64 chars", json!({"eventType": type_64}), None),
        ("eventType 65 chars", json!({"eventType": type_65}), Some(("eventType", "invalid_format"))),
        ("eventId empty", json!({"eventId": ""}), Some(("eventId", "empty"))),
        ("eventId 129 chars", json!({"eventId": "e".repeat(129)}), Some(("eventId", "too_long"))),
        ("eventId unicode 128 chars", json!({"eventId": "é".repeat(128)}), None),
        ("timestamp malformed", json!({"timestamp": "yesterday"}), Some(("timestamp", "invalid_format"))),
        (
            "timestamp without zone",
            json!({"timestamp": "2026-01-16T10:00:00"}),
            Some(("timestamp", "invalid_format")),
        ),
        ("timestamp not a string", json!({"timestamp": 1768557600}), Some(("timestamp", "invalid_type"))),
        ("timestamp 5 min ahead", json!({"timestamp": "2026-01-16T12:05:00Z"}), None),
        (
            "timestamp 5 min 1 s ahead",
            json!({"timestamp": "2026-01-16T12:05:01Z"}),
            Some(("timestamp", "in_future")),
        ),
        ("timestamp with offset", json!({"timestamp": "2026-01-16T13:04:00+01:00"}), None),
        ("timestamp long past", json!({"timestamp": "2001-01-01T00:00:00Z"}), None),
        ("properties not an object", json!({"properties": [1, 2]}), Some(("properties", "invalid_type"))),
        ("properties at 5 KiB", json!({"properties": props_at_limit}), None),
        ("properties over 5 KiB", json!({"properties": props_over}), Some(("properties", "too_large"))),
        ("properties depth 2", json!({"properties": nested(2)}), None),
        ("properties depth 3", json!({"properties": nested(3)}), Some(("properties", "too_deep"))),
        ("properties array depth 2", json!({"properties": {"a": [[1]]}}), None),
        ("properties array depth 3", json!({"properties": {"a": [[[1]]]}}), Some(("properties", "too_deep"))),
        ("unknown field", json!({"lead_id": "x"}), Some(("lead_id", "unknown_field"))),
    ];
    for (name, extra, expected) in cases {
        let got = first_error(event(extra));
        let expected = expected.map(|(f, r)| (f.to_owned(), r));
        assert_eq!(got, expected, "case {name:?}");
    }
}

#[test]
fn an_event_reports_every_broken_rule() {
    let errors =
        validate_event(&json!({"leadId": "", "eventType": "X", "timestamp": "nope"}), NOW).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["leadId", "eventType", "timestamp"]);
}

#[test]
fn a_missing_event_id_becomes_a_uuid_v7_and_a_missing_timestamp_now() {
    let record = validate_event(&event(json!({})), NOW).unwrap();
    let id = Uuid::parse_str(&record.event_id).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(record.timestamp, NOW);
    let given = validate_event(&event(json!({"eventId": "evt9"})), NOW).unwrap();
    assert_eq!(given.event_id, "evt9");
}

#[test]
fn a_non_object_event_is_one_error() {
    let errors = validate_event(&json!([1]), NOW).unwrap_err();
    assert_eq!(errors, vec![FieldError::new("event", "invalid_type", "event must be a JSON object")]);
}

#[test]
fn lead_rules_table() {
    type Case<'a> = (&'a str, Value, Result<&'a str, (&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("plain", json!({"name": "Ada Lovelace"}), Ok("Ada Lovelace")),
        ("trimmed", json!({"name": "  Ada  "}), Ok("Ada")),
        ("unicode", json!({"name": "Zoë Ångström"}), Ok("Zoë Ångström")),
        ("cjk", json!({"name": "渡辺 健二"}), Ok("渡辺 健二")),
        ("emoji counted as characters", json!({"name": "🙂".repeat(256)}), Ok("")),
        ("257 characters", json!({"name": "é".repeat(257)}), Err(("name", "too_long"))),
        ("bare string item", json!("Kenji"), Ok("Kenji")),
        ("empty", json!({"name": ""}), Err(("name", "empty"))),
        ("blank", json!({"name": " \t\n"}), Err(("name", "empty"))),
        ("missing", json!({"email": "a@b.co"}), Err(("name", "required"))),
        ("wrong type", json!({"name": 7}), Err(("name", "invalid_type"))),
        ("bad email", json!({"name": "Ada", "email": "ada"}), Err(("email", "invalid_format"))),
        ("good email", json!({"name": "Ada", "email": "ada@example.com"}), Ok("Ada")),
        ("bad leadId", json!({"name": "Ada", "leadId": "a b"}), Err(("leadId", "invalid_format"))),
        ("unknown field", json!({"name": "Ada", "phone": "1"}), Err(("phone", "unknown_field"))),
        ("not an object", json!(3), Err(("lead", "invalid_type"))),
    ];
    for (case, value, expected) in cases {
        match (validate_lead(&value, NOW), expected) {
            (Ok(lead), Ok(name)) => {
                if !name.is_empty() {
                    assert_eq!(lead.name, name, "case {case:?}");
                }
            }
            (Err(errors), Err((field, reason))) => {
                assert_eq!((errors[0].field.as_str(), errors[0].reason), (field, reason), "case {case:?}")
            }
            (got, expected) => panic!("case {case:?}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn a_lead_keeps_a_given_id_and_generates_one_otherwise() {
    let given = validate_lead(&json!({"name": "Ada", "leadId": "lead-ada"}), NOW).unwrap();
    assert_eq!(given.lead_id, "lead-ada");
    let generated = validate_lead(&json!({"name": "Ada"}), NOW).unwrap();
    assert!(check_lead_id("leadId", &generated.lead_id).is_ok(), "{}", generated.lead_id);
    assert_eq!(generated.submitted_at, NOW);
}

#[test]
fn batch_limits() {
    let items = |n: usize| json!({"events": vec![json!({}); n]});
    assert_eq!(batch_items(&items(500), "events", 500).unwrap().len(), 500);
    assert_eq!(batch_items(&items(501), "events", 500).unwrap_err().reason, "too_many");
    assert_eq!(batch_items(&items(0), "events", 500).unwrap_err().reason, "empty");
    assert_eq!(batch_items(&json!({"event": []}), "events", 500).unwrap_err().reason, "unknown_field");
    assert_eq!(batch_items(&json!({"events": {}}), "events", 500).unwrap_err().reason, "invalid_type");
}

#[test]
fn errors_nest_under_their_batch_item() {
    let error = FieldError::new("leadId", "required", "leadId is required").under("events[3]");
    assert_eq!(error.field, "events[3].leadId");
}

/// The (field, reason) of every error, or the record when the review is valid.
fn review(id: &str, body: Value) -> Result<LeadReviewed, Vec<(String, &'static str)>> {
    validate_review(id, &body, NOW)
        .map_err(|errors| errors.into_iter().map(|e| (e.field, e.reason)).collect())
}

#[test]
fn a_valid_review_becomes_a_lead_reviewed_stamped_now() {
    let record = review(
        "lead-ada",
        json!({"decision": "Verified", "reviewer": "  grace@example.com\t", "note": "  checked by phone "}),
    )
    .unwrap();
    assert_eq!(
        record,
        LeadReviewed {
            project_id: "default".into(),
            lead_id: "lead-ada".into(),
            decision: ReviewDecision::Verified,
            reviewer: Some("grace@example.com".into()),
            note: Some("  checked by phone ".into()),
            reviewed_at: NOW,
        }
    );
    let minimal = review("a.b_c:d@e-f", json!({"decision": "Rejected"})).unwrap();
    assert_eq!(
        (minimal.decision, minimal.reviewer, minimal.note, minimal.reviewed_at),
        (ReviewDecision::Rejected, None, None, NOW)
    );
    // The document types them `string`: null is refused, naming the field; absent is none.
    for field in ["reviewer", "note"] {
        let errors = review("lead-1", json!({"decision": "Verified", field: null})).unwrap_err();
        assert_eq!(errors, [(field.to_owned(), "invalid_type")]);
    }
    let blank = review("lead-1", json!({"decision": "Verified", "reviewer": " \t\n "})).unwrap();
    assert_eq!(blank.reviewer, None, "a blank reviewer is no reviewer");
}

#[test]
fn review_rules_table() {
    let (max_id, long_id) = ("a".repeat(MAX_ID_CHARS), "a".repeat(MAX_ID_CHARS + 1));
    let reviewer_at_limit = format!("  {}  ", "é".repeat(252));
    let padded_past_limit = format!("{}\u{b}", "é".repeat(256));
    type Case<'a> = (&'a str, &'a str, Value, Option<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("id empty", "", json!({"decision": "Verified"}), Some(("id", "empty"))),
        ("id with space", "lead 1", json!({"decision": "Verified"}), Some(("id", "invalid_format"))),
        ("id with slash", "a/b", json!({"decision": "Verified"}), Some(("id", "invalid_format"))),
        ("id unicode", "léad", json!({"decision": "Verified"}), Some(("id", "invalid_format"))),
        ("id 128 chars", &max_id, json!({"decision": "Verified"}), None),
        ("id 129 chars", &long_id, json!({"decision": "Verified"}), Some(("id", "too_long"))),
        ("decision missing", "l", json!({"reviewer": "grace"}), Some(("decision", "required"))),
        ("decision null", "l", json!({"decision": null}), Some(("decision", "required"))),
        ("decision lower case", "l", json!({"decision": "verified"}), Some(("decision", "invalid_value"))),
        ("decision To Check", "l", json!({"decision": "To Check"}), Some(("decision", "invalid_value"))),
        ("decision not a string", "l", json!({"decision": true}), Some(("decision", "invalid_type"))),
        (
            "reviewer not a string",
            "l",
            json!({"decision": "Verified", "reviewer": 7}),
            Some(("reviewer", "invalid_type")),
        ),
        (
            "reviewer 256 chars as sent, padding included",
            "l",
            json!({"decision": "Verified", "reviewer": reviewer_at_limit}),
            None,
        ),
        (
            "reviewer over 256 chars only by its padding",
            "l",
            json!({"decision": "Verified", "reviewer": padded_past_limit}),
            Some(("reviewer", "too_long")),
        ),
        (
            "reviewer 257 chars",
            "l",
            json!({"decision": "Verified", "reviewer": "r".repeat(257)}),
            Some(("reviewer", "too_long")),
        ),
        (
            "note not a string",
            "l",
            json!({"decision": "Rejected", "note": ["x"]}),
            Some(("note", "invalid_type")),
        ),
        ("note 2000 chars", "l", json!({"decision": "Rejected", "note": "🙂".repeat(2000)}), None),
        (
            "note 2001 chars",
            "l",
            json!({"decision": "Rejected", "note": "n".repeat(2001)}),
            Some(("note", "too_long")),
        ),
        (
            "unknown field",
            "l",
            json!({"decision": "Verified", "reason": "x"}),
            Some(("reason", "unknown_field")),
        ),
        ("not an object", "l", json!("Verified"), Some(("review", "invalid_type"))),
    ];
    for (name, id, body, expected) in cases {
        let got = review(id, body).err().map(|errors| errors[0].clone());
        let expected = expected.map(|(f, r)| (f.to_owned(), r));
        assert_eq!(got, expected, "case {name:?}");
    }
}

#[test]
fn a_review_reports_every_broken_rule_with_the_id_first() {
    let body = json!({"decision": "Maybe", "reviewer": 1, "note": "n".repeat(2001), "extra": 1});
    let fields = review("bad id", body).unwrap_err();
    let expected = [
        ("id", "invalid_format"),
        ("extra", "unknown_field"),
        ("decision", "invalid_value"),
        ("reviewer", "invalid_type"),
        ("note", "too_long"),
    ];
    assert_eq!(fields, expected.map(|(f, r)| (f.to_owned(), r)));
    let not_object = review("", json!([])).unwrap_err();
    assert_eq!(not_object, [("id".to_owned(), "empty"), ("review".to_owned(), "invalid_type")]);
}

#[test]
fn every_decision_error_lists_the_allowed_values() {
    for body in [json!({}), json!({"decision": "verified"}), json!({"decision": 1})] {
        let errors = validate_review("lead-1", &body, NOW).unwrap_err();
        assert_eq!(errors[0].field, "decision");
        assert!(errors[0].message.contains("Verified, Rejected"), "{body}: {}", errors[0].message);
    }
}

#[test]
fn an_unknown_review_field_names_the_known_ones() {
    let errors = validate_review("lead-1", &json!({"decision": "Verified", "notes": "x"}), NOW).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "notes");
    assert!(errors[0].message.contains("decision, reviewer, note"), "{}", errors[0].message);
}

fn seeds_json() -> Value {
    serde_json::to_value(ScoringRules::seeds()).unwrap()
}

#[test]
fn scoring_rules_that_could_overflow_a_score_are_refused_by_field() {
    let mut huge = seeds_json();
    huge["points"]["page_view"] = json!(1e308);
    let errors = validate_scoring_rules(&huge).unwrap_err();
    assert_eq!((errors[0].field.as_str(), errors[0].reason), ("points.\"page_view\"", "invalid_value"));
    let mut grace = seeds_json();
    grace["decay"]["graceDays"] = json!(1e300);
    let errors = validate_scoring_rules(&grace).unwrap_err();
    assert_eq!(errors[0].field, "decay.graceDays");
}

#[test]
fn scoring_rules_are_read_as_the_core_reads_them() {
    assert_eq!(validate_scoring_rules(&seeds_json()).unwrap(), ScoringRules::seeds());
    let mut with_caps = seeds_json();
    with_caps["dailyCaps"] = json!({"page_view": 3});
    assert_eq!(validate_scoring_rules(&with_caps).unwrap().daily_caps["page_view"], 3);
    let error = validate_scoring_rules(&json!([])).unwrap_err();
    assert_eq!((error[0].field.as_str(), error[0].reason), ("rules", "invalid_type"));
}

#[test]
fn scoring_rules_report_every_shape_error_with_its_path() {
    let mut value = seeds_json();
    value["decay"] = json!({"graceDays": "7", "halfLife": 2});
    value["stages"] = json!(5);
    value.as_object_mut().unwrap().remove("version");
    let fields: Vec<(String, &str)> =
        validate_scoring_rules(&value).unwrap_err().into_iter().map(|e| (e.field, e.reason)).collect();
    let expected = [
        ("version", "required"),
        ("stages", "invalid_type"),
        ("decay.halfLife", "unknown_field"),
        ("decay.graceDays", "invalid_type"),
        ("decay.ratePerDay", "required"),
    ];
    assert_eq!(fields, expected.map(|(f, r)| (f.to_owned(), r)));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            (-2.0f64..2.0).prop_map(Value::from),
            "[a-z]{0,8}".prop_map(Value::from)
        ];
        leaf.prop_recursive(5, 64, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn properties_are_accepted_exactly_when_within_both_limits(map in prop::collection::btree_map("[a-z]{1,4}", json_value(), 0..4)) {
            let value = Value::Object(map.into_iter().collect());
            let depth = value.as_object().unwrap().values().map(container_depth).max().unwrap_or(0);
            let size = serde_json::to_vec(&value).unwrap().len();
            let accepted = check_properties(&value).is_ok();
            prop_assert_eq!(accepted, depth <= MAX_PROPERTIES_DEPTH && size <= MAX_PROPERTIES_BYTES);
        }

        #[test]
        fn validation_never_panics_on_any_json(value in json_value()) {
            let _ = validate_event(&value, NOW);
            let _ = validate_lead(&value, NOW);
            let _ = validate_scoring_rules(&value);
            let _ = validate_review("lead-1", &value, NOW);
        }

        /// The shape check is exactly as strict as the core's own reading of the rules (serde,
        /// then `validate`), so the fallback error naming the whole body is never reached.
        #[test]
        fn a_rule_set_is_accepted_exactly_when_the_core_accepts_it(
            path in prop::sample::select(vec![
                "version", "points", "stages", "decay", "dailyCaps", "extra", "stages.hot",
                "stages.warm", "decay.ratePerDay", "decay.graceDays", "decay.extra",
                "points.page_view", "points.Bad", "dailyCaps.signup",
            ]),
            replacement in json_value(),
        ) {
            let mut value = seeds_json();
            match path.split_once('.') {
                None => value[path] = replacement,
                Some((outer, inner)) => {
                    if !value[outer].is_object() {
                        value[outer] = json!({});
                    }
                    value[outer][inner] = replacement;
                }
            }
            let core = serde_json::from_value::<ScoringRules>(value.clone())
                .ok()
                .filter(|rules| rules.validate().is_ok());
            match validate_scoring_rules(&value) {
                Ok(rules) => prop_assert_eq!(Some(rules), core),
                Err(errors) => {
                    prop_assert!(core.is_none(), "refused rules the core accepts: {errors:?}");
                    prop_assert!(errors.iter().all(|e| e.field != "rules"), "{errors:?}");
                }
            }
        }
    }
}

/// The document types every optional field `string` (or `object`): a null is refused with a 400
/// naming the field, as a wrong type is; absent is what "none" is spelled.
#[test]
fn null_is_refused_where_the_document_forbids_it() {
    let reasons =
        |errors: Vec<FieldError>| errors.into_iter().map(|e| (e.field, e.reason)).collect::<Vec<_>>();
    for field in ["eventId", "timestamp", "properties"] {
        let mut body = json!({"leadId": "lead-1", "eventType": "page_view"});
        body[field] = Value::Null;
        assert_eq!(reasons(validate_event(&body, NOW).unwrap_err()), [(field.to_owned(), "invalid_type")]);
    }
    for field in ["email", "company", "leadId"] {
        let mut body = json!({"name": "Ada"});
        body[field] = Value::Null;
        assert_eq!(reasons(validate_lead(&body, NOW).unwrap_err()), [(field.to_owned(), "invalid_type")]);
    }
    let required = validate_event(&json!({"leadId": null, "eventType": "page_view"}), NOW).unwrap_err();
    assert_eq!(reasons(required), [("leadId".to_owned(), "required")], "a required null is one error");
}

/// `integer` in JSON Schema is any number without a fractional part: a cap of `302.0` is 302.
#[test]
fn a_whole_number_written_with_a_point_is_a_daily_cap() {
    let mut rules = serde_json::to_value(ScoringRules::seeds()).unwrap();
    rules["dailyCaps"] = json!({"page_view": 302.0, "signup": 3});
    let parsed = validate_scoring_rules(&rules).unwrap();
    assert_eq!((parsed.daily_caps["page_view"], parsed.daily_caps["signup"]), (302, 3));
    rules["dailyCaps"] = json!({"page_view": 2.5});
    assert_eq!(validate_scoring_rules(&rules).unwrap_err()[0].field, "dailyCaps.\"page_view\"");
}
