use serde_json::json;
use time::Duration;
use time::macros::datetime;

use super::*;
use crate::segment::identity::sdk_id_of;

const RECEIVED_AT: OffsetDateTime = datetime!(2026-01-16 12:00:00 UTC);
const PROJECT: &str = "acme";
static NO_MAP: BTreeMap<String, String> = BTreeMap::new();

fn received<'a>(route_type: Option<CallType>, event_types: &'a BTreeMap<String, String>) -> Received<'a> {
    Received { project_id: PROJECT, received_at: RECEIVED_AT, batch_sent_at: None, event_types, route_type }
}

/// Maps `message` as an item of a batch (its `type` says the call), with no event-name map.
fn map(message: Value) -> Result<Mapped, Unusable> {
    map_message(&message, &received(None, &NO_MAP))
}

/// The one event `message` maps to.
fn one_event(message: Value) -> LeadEvent {
    let mapped = map(message).unwrap();
    assert!(mapped.names.is_empty(), "{mapped:?}");
    assert_eq!(mapped.events.len(), 1, "{mapped:?}");
    mapped.events.into_iter().next().unwrap()
}

fn kind_of(message: Value) -> &'static str {
    map(message).unwrap_err().kind
}

fn lead(sdk_id: &str) -> String {
    lead_id_of(sdk_id).unwrap()
}

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

#[test]
fn a_track_call_is_one_event() {
    let event = one_event(json!({
        "type": "track", "userId": "user 42", "messageId": "m-1", "event": "Order Completed",
        "properties": {"revenue": 10}
    }));
    assert_eq!(
        event,
        LeadEvent {
            project_id: PROJECT.to_owned(),
            event_id: "m-1".to_owned(),
            lead_id: lead("user 42"),
            event_type: "order_completed".to_owned(),
            timestamp: RECEIVED_AT,
            properties: json!({"revenue": 10}).as_object().unwrap().clone(),
            merge_into: None,
            forwarded_from: None,
            hops: 0,
        }
    );
    assert!(crate::ids::check_lead_id("leadId", &event.lead_id).is_ok());
    assert_eq!(sdk_id_of(&event.lead_id), "user 42");
}

#[test]
fn free_text_user_ids_round_trip() {
    for user_id in ["user 42", "a+b@x.io"] {
        let event = one_event(json!({"type": "page", "userId": user_id}));
        assert!(event.lead_id.starts_with("b64."), "{}", event.lead_id);
        assert_eq!(sdk_id_of(&event.lead_id), user_id);
    }
}

#[test]
fn the_lead_is_the_user_id_else_the_anonymous_id() {
    let both = json!({"type": "page", "userId": "u-1", "anonymousId": "anon-1"});
    assert_eq!(one_event(both).lead_id, "u-1");
    assert_eq!(one_event(json!({"type": "page", "anonymousId": "anon-1"})).lead_id, "anon-1");
    // An empty or mistyped userId is no userId.
    for user_id in [json!(""), json!(null), json!(true), json!({"id": 1})] {
        let message = json!({"type": "page", "userId": user_id, "anonymousId": "anon-1"});
        assert_eq!(one_event(message).lead_id, "anon-1", "{user_id}");
    }
}

#[test]
fn integer_ids_are_their_decimal_text() {
    assert_eq!(one_event(json!({"type": "page", "userId": 42})).lead_id, "42");
    assert_eq!(one_event(json!({"type": "page", "anonymousId": -7})).lead_id, "-7");
    assert_eq!(one_event(json!({"type": "page", "userId": 42, "messageId": 1001})).event_id, "1001");
}

#[test]
fn a_message_without_ids_is_missing_identity() {
    for ids in [
        json!({}),
        json!({"userId": null, "anonymousId": null}),
        json!({"userId": "", "anonymousId": ""}),
        json!({"userId": 4.5, "anonymousId": false}),
    ] {
        let mut message = json!({"type": "track", "event": "Signed Up"});
        message.as_object_mut().unwrap().extend(ids.as_object().unwrap().clone());
        assert_eq!(kind_of(message), "missing_identity", "{ids}");
    }
}

#[test]
fn an_id_too_long_to_encode_is_invalid_id() {
    let unusable =
        map(json!({"type": "track", "event": "x", "userId": " ".repeat(MAX_ID_CHARS)})).unwrap_err();
    assert_eq!(unusable.kind, "invalid_id");
    assert!(unusable.reason.starts_with("userId "), "{}", unusable.reason);
    assert!(!unusable.reason.contains("   "), "the reason quotes the id: {}", unusable.reason);
}

#[test]
fn event_names_go_through_the_project_map() {
    let event_types = BTreeMap::from([("Demo Requested".to_owned(), "demo_request".to_owned())]);
    let received = received(None, &event_types);
    let message = json!({"type": "track", "userId": "u", "event": "Demo Requested"});
    assert_eq!(map_message(&message, &received).unwrap().events[0].event_type, "demo_request");
    let message = json!({"type": "track", "userId": "u", "event": "3D View"});
    assert_eq!(map_message(&message, &received).unwrap().events[0].event_type, "e_3d_view");
}

#[test]
fn a_track_call_without_an_event_is_missing_event() {
    for event in [json!(null), json!(""), json!(12)] {
        let message = json!({"type": "track", "userId": "u", "event": event});
        assert_eq!(kind_of(message), "missing_event", "{event}");
    }
    assert_eq!(kind_of(json!({"type": "track", "userId": "u"})), "missing_event");
    assert_eq!(kind_of(json!({"type": "track", "messageId": "m"})), "missing_identity", "identity first");
}

#[test]
fn page_screen_and_group_have_fixed_event_types() {
    let page = one_event(json!({"type": "page", "userId": "u", "properties": {"path": "/pricing"}}));
    assert_eq!(
        (page.event_type.as_str(), page.properties),
        ("page_view", json_map(json!({"path": "/pricing"})))
    );
    assert_eq!(one_event(json!({"type": "screen", "userId": "u"})).event_type, "screen_view");
    let group = one_event(json!({
        "type": "group", "userId": "u", "groupId": "g-9", "traits": {"plan": "pro"}, "properties": {"a": 1}
    }));
    assert_eq!((group.event_type.as_str(), group.properties), ("group", json_map(json!({"groupId": "g-9"}))));
}

fn json_map(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn properties_that_are_no_object_are_left_out() {
    let event = one_event(json!({"type": "track", "userId": "u", "event": "x", "properties": [1, 2]}));
    assert!(event.properties.is_empty(), "{:?}", event.properties);
}

#[test]
fn a_type_other_than_the_six_is_unknown_type() {
    for message in [
        json!({"type": "purchase", "userId": "u"}),
        json!({"type": 3, "userId": "u"}),
        json!({"userId": "u"}),
    ] {
        assert_eq!(kind_of(message.clone()), "unknown_type", "{message}");
    }
    assert_eq!(one_event(json!({"type": "Page", "userId": "u"})).event_type, "page_view");
}

#[test]
fn the_route_type_wins_over_the_message_type() {
    let message = json!({"type": "identify", "userId": "u", "event": "Signed Up"});
    let event = map_message(&message, &received(Some(CallType::Track), &NO_MAP)).unwrap();
    assert_eq!(event.events[0].event_type, "signed_up");
    let untyped = json!({"userId": "u"});
    let event = map_message(&untyped, &received(Some(CallType::Screen), &NO_MAP)).unwrap();
    assert_eq!(event.events[0].event_type, "screen_view");
}

#[test]
fn a_message_over_32_kb_is_too_large() {
    let message =
        |padding: usize| json!({"type": "page", "userId": "u", "properties": {"p": "x".repeat(padding)}});
    let framing = serde_json::to_vec(&message(0)).unwrap().len();
    let at_limit = message(MAX_MESSAGE_BYTES - framing);
    assert_eq!(serde_json::to_vec(&at_limit).unwrap().len(), MAX_MESSAGE_BYTES);
    assert!(map(at_limit).is_ok());
    assert_eq!(kind_of(message(MAX_MESSAGE_BYTES - framing + 1)), "message_too_large");
    assert_eq!(kind_of(message(33 * 1024)), "message_too_large");
}

#[test]
fn a_message_that_is_no_object_is_not_an_object() {
    for message in [json!([{"type": "page"}]), json!("page"), json!(null)] {
        assert_eq!(kind_of(message.clone()), "not_an_object", "{message}");
    }
}

#[test]
fn a_message_id_becomes_the_event_id() {
    let with_id = |id: String| json!({"type": "page", "userId": "u", "messageId": id});
    let longest = "m".repeat(MAX_ID_CHARS);
    assert_eq!(one_event(with_id(longest.clone())).event_id, longest);
    let too_long = "m".repeat(MAX_ID_CHARS + 1);
    let hashed = one_event(with_id(too_long.clone())).event_id;
    assert_eq!(hashed, format!("mid-sha256:{}", hex::encode(Sha256::digest(too_long.as_bytes()))));
    assert!(hashed.len() <= MAX_ID_CHARS);
    assert_eq!(one_event(with_id(String::new())).event_id.len(), 36, "an empty messageId is none");
}

#[test]
fn a_message_without_a_message_id_gets_a_uuid_v7_of_receiving_it() {
    let message = json!({"type": "page", "userId": "u"});
    let event_id = one_event(message.clone()).event_id;
    let uuid = uuid::Uuid::parse_str(&event_id).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
    let (seconds, nanos) = uuid.get_timestamp().unwrap().to_unix();
    assert_eq!((seconds, nanos), (RECEIVED_AT.unix_timestamp() as u64, 0));
    assert_eq!(one_event(message).event_id, event_id, "the mapping is pure");
    assert_ne!(one_event(json!({"type": "page", "userId": "v"})).event_id, event_id);
}

/// The timestamp a page call with these fields (and `batch_sent_at`) gets.
fn timestamp_of(fields: Value, batch_sent_at: Option<&str>) -> OffsetDateTime {
    let mut message = json!({"type": "page", "userId": "u"});
    message.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    let received = Received { batch_sent_at, ..received(None, &NO_MAP) };
    map_message(&message, &received).unwrap().events[0].timestamp
}

#[test]
fn a_device_clock_ahead_is_corrected() {
    // The device runs an hour ahead: it saw the event 5 s before sending it.
    let device = json!({"originalTimestamp": "2026-01-16T12:59:55Z", "sentAt": "2026-01-16T13:00:00Z"});
    assert_eq!(timestamp_of(device, None), RECEIVED_AT - Duration::seconds(5));
}

#[test]
fn the_batch_sent_at_counts_unless_the_message_has_its_own() {
    let happened = json!({"timestamp": "2026-01-16T09:00:00Z"});
    assert_eq!(timestamp_of(happened, Some("2026-01-16T09:00:10Z")), RECEIVED_AT - Duration::seconds(10));
    let own = json!({"timestamp": "2026-01-16T09:00:00Z", "sentAt": "2026-01-16T09:00:30Z"});
    assert_eq!(timestamp_of(own, Some("2026-01-16T09:00:10Z")), RECEIVED_AT - Duration::seconds(30));
    // An unparseable sentAt of the message's own is none: the batch's counts.
    let broken = json!({"timestamp": "2026-01-16T09:00:00Z", "sentAt": "yesterday"});
    assert_eq!(timestamp_of(broken, Some("2026-01-16T09:00:10Z")), RECEIVED_AT - Duration::seconds(10));
}

#[test]
fn without_sent_at_the_timestamp_is_kept_but_never_in_the_future() {
    assert_eq!(timestamp_of(json!({"timestamp": "2026-01-16T13:00:00Z"}), None), RECEIVED_AT);
    let past = "2026-01-15T08:30:00+02:00";
    assert_eq!(timestamp_of(json!({"timestamp": past}), None), at(past));
    // An event the device says happened after it was sent is not put after receiving it.
    let after_sending = json!({"timestamp": "2026-01-16T09:00:20Z", "sentAt": "2026-01-16T09:00:00Z"});
    assert_eq!(timestamp_of(after_sending, None), RECEIVED_AT);
}

#[test]
fn the_original_timestamp_wins_and_unparseable_ones_are_absent() {
    let both = json!({"originalTimestamp": "2026-01-16T08:00:00Z", "timestamp": "2026-01-16T09:00:00Z"});
    assert_eq!(timestamp_of(both, None), at("2026-01-16T08:00:00Z"));
    let broken = json!({"originalTimestamp": "soon", "timestamp": "2026-01-16T09:00:00Z"});
    assert_eq!(timestamp_of(broken, None), at("2026-01-16T09:00:00Z"));
    let nothing = json!({"timestamp": 1737000000, "sentAt": "2026-01-16T09:00:00Z"});
    assert_eq!(timestamp_of(nothing, None), RECEIVED_AT);
}

#[test]
fn a_correction_past_the_four_digit_years_keeps_the_device_time() {
    let far = json!({"originalTimestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-01-01T00:00:00Z"});
    assert_eq!(timestamp_of(far, None), at("0001-01-01T00:00:00Z"));
}

#[test]
fn an_identify_with_both_ids_merges_the_anonymous_lead() {
    let mapped = map(json!({
        "type": "identify", "userId": "user 42", "anonymousId": "anon-7", "messageId": "m-9",
        "properties": {"ignored": true}
    }))
    .unwrap();
    assert!(mapped.names.is_empty());
    let [identify, merge] = mapped.events.as_slice() else { panic!("two events: {mapped:?}") };
    assert_eq!(
        (identify.lead_id.as_str(), identify.event_type.as_str(), identify.merge_into.as_deref()),
        (lead("user 42").as_str(), "identify", None)
    );
    assert!(identify.properties.is_empty(), "{:?}", identify.properties);
    assert_eq!(
        (merge.lead_id.as_str(), merge.event_type.as_str(), merge.merge_into.as_deref()),
        ("anon-7", "identify", Some(lead("user 42").as_str()))
    );
    assert_eq!((identify.event_id.as_str(), merge.event_id.as_str()), ("m-9", "m-9"));
    assert!(
        mapped.events.iter().all(|e| e.project_id == PROJECT && e.forwarded_from.is_none() && e.hops == 0)
    );
}

#[test]
fn an_identify_of_one_lead_merges_nothing() {
    for ids in [json!({"userId": "u-1", "anonymousId": "u-1"}), json!({"anonymousId": "anon-7"})] {
        let mut message = json!({"type": "identify"});
        message.as_object_mut().unwrap().extend(ids.as_object().unwrap().clone());
        let event = one_event(message);
        assert_eq!((event.event_type.as_str(), event.merge_into), ("identify", None), "{ids}");
    }
}

#[test]
fn an_identify_with_an_anonymous_id_too_long_is_invalid_id() {
    let message = json!({"type": "identify", "userId": "u-1", "anonymousId": " ".repeat(200)});
    let unusable = map(message).unwrap_err();
    assert_eq!(unusable.kind, "invalid_id");
    assert!(unusable.reason.starts_with("anonymousId "), "{}", unusable.reason);
}

#[test]
fn identify_traits_with_a_name_submit_it() {
    let mapped = map(json!({
        "type": "identify", "userId": "u-1", "anonymousId": "anon-7",
        "timestamp": "2026-01-16T11:00:00Z",
        "traits": {
            "name": "  Ada Lovelace ", "email": " ada@example.com ", "company": {"name": "Analytical Engines"}
        }
    }))
    .unwrap();
    assert_eq!(
        mapped.names,
        vec![NameSubmitted {
            project_id: PROJECT.to_owned(),
            lead_id: "u-1".to_owned(),
            name: "Ada Lovelace".to_owned(),
            email: Some("ada@example.com".to_owned()),
            company: Some("Analytical Engines".to_owned()),
            submitted_at: at("2026-01-16T11:00:00Z"),
        }]
    );
    assert_eq!(mapped.events.len(), 2);
}

/// The name an identify with these traits submits.
fn name_of(traits: Value) -> Option<NameSubmitted> {
    let mapped = map(json!({"type": "identify", "userId": "u-1", "traits": traits})).unwrap();
    assert!(mapped.names.len() <= 1);
    mapped.names.into_iter().next()
}

#[test]
fn a_name_is_else_the_first_and_last_names() {
    let names = |traits: Value| name_of(traits).map(|n| n.name);
    assert_eq!(names(json!({"firstName": "Ada", "lastName": "Lovelace"})).as_deref(), Some("Ada Lovelace"));
    assert_eq!(names(json!({"firstName": " Ada "})).as_deref(), Some("Ada"));
    assert_eq!(names(json!({"lastName": "Lovelace"})).as_deref(), Some("Lovelace"));
    assert_eq!(names(json!({"name": " ", "firstName": "Ada"})).as_deref(), Some("Ada"));
    assert_eq!(names(json!({"email": "ada@example.com", "company": "AE"})), None);
    assert_eq!(names(json!({"name": 42})), None);
}

#[test]
fn traits_are_bounded_as_the_records_are() {
    let submitted = name_of(json!({"name": "n".repeat(300), "company": "c".repeat(300)})).unwrap();
    assert_eq!(submitted.name.chars().count(), MAX_NAME_CHARS);
    assert_eq!(submitted.company.unwrap().chars().count(), MAX_COMPANY_CHARS);
    let long_email = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS));
    for email in [json!(long_email), json!("not an email"), json!("ada@localhost"), json!(7)] {
        assert_eq!(name_of(json!({"name": "Ada", "email": email})).unwrap().email, None, "{email}");
    }
    let fits = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS - 12));
    assert_eq!(name_of(json!({"name": "Ada", "email": fits.clone()})).unwrap().email, Some(fits));
}

#[test]
fn an_alias_is_a_merge_record() {
    let event =
        one_event(json!({"type": "alias", "previousId": "anon-7", "userId": "user 42", "messageId": "m-3"}));
    assert_eq!(
        (
            event.lead_id.as_str(),
            event.event_type.as_str(),
            event.merge_into.as_deref(),
            event.event_id.as_str()
        ),
        ("anon-7", "alias", Some(lead("user 42").as_str()), "m-3")
    );
}

#[test]
fn an_alias_needs_both_ids() {
    assert_eq!(kind_of(json!({"type": "alias", "userId": "u-1"})), "missing_identity");
    assert_eq!(
        kind_of(json!({"type": "alias", "previousId": "anon-7", "anonymousId": "a"})),
        "missing_identity"
    );
    let reason = map(json!({"type": "alias", "userId": "u-1"})).unwrap_err().reason;
    assert!(reason.contains("previousId"), "{reason}");
}

#[test]
fn an_alias_of_a_lead_to_itself_is_no_record() {
    assert_eq!(map(json!({"type": "alias", "previousId": "u-1", "userId": "u-1"})), Ok(Mapped::default()));
}

#[test]
fn a_bounded_subset_of_context_is_kept() {
    let event = one_event(json!({
        "type": "page", "userId": "u", "properties": {"title": "Pricing"},
        "context": {
            "ip": "203.0.113.9", "locale": "en-GB", "library": {"name": "analytics.js"},
            "page": {"url": "u".repeat(5000), "path": "/pricing", "hash": "#x", "title": 3},
            "campaign": {"source": "newsletter", "medium": "email", "id": "c-1"},
            "userAgent": "Mozilla/5.0"
        }
    }));
    assert_eq!(
        Value::Object(event.properties),
        json!({
            "title": "Pricing",
            "context": {
                "page": {"url": "u".repeat(MAX_CONTEXT_CHARS), "path": "/pricing"},
                "campaign": {"source": "newsletter", "medium": "email"},
                "userAgent": "Mozilla/5.0"
            }
        })
    );
}

#[test]
fn context_with_nothing_kept_adds_nothing() {
    for context in [json!({"ip": "203.0.113.9", "page": {"hash": "#x"}}), json!("text")] {
        let event = one_event(json!({"type": "page", "userId": "u", "context": context}));
        assert!(event.properties.is_empty(), "{:?}", event.properties);
    }
}

#[test]
fn an_identify_keeps_the_context_subset() {
    let message = json!({"type": "identify", "userId": "u", "context": {"userAgent": "a".repeat(2000)}});
    let event = one_event(message);
    assert_eq!(
        Value::Object(event.properties),
        json!({"context": {"userAgent": "a".repeat(MAX_CONTEXT_CHARS)}})
    );
}

#[test]
fn reasons_quote_neither_the_write_key_nor_long_values() {
    let write_key = "lf_ingest_secret-value";
    let unusables = [
        map(json!({"type": "t".repeat(500), "userId": "u", "writeKey": write_key})).unwrap_err(),
        map(json!({"type": "track", "writeKey": write_key})).unwrap_err(),
        map(json!({"type": "track", "userId": "u", "writeKey": write_key})).unwrap_err(),
        map(json!({"type": "alias", "userId": "u", "writeKey": write_key})).unwrap_err(),
        map(json!({"type": "page", "userId": "é".repeat(100), "writeKey": write_key})).unwrap_err(),
    ];
    for unusable in unusables {
        assert!(!unusable.reason.contains(write_key), "{unusable}");
        assert!(unusable.reason.chars().count() <= 200, "{unusable}");
    }
}
