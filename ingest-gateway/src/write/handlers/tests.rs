//! The write handlers through the whole router (see [`crate::testing`]): what each route
//! publishes, keyed how, what it answers, and what it counts.

use std::sync::Mutex;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use leadflow_core::model::scoring::ScoringRules;

use super::*;
use crate::testing::{Harness, RecordingPublisher, post_request};

#[tokio::test]
async fn an_event_is_published_keyed_by_lead_and_answered_202() {
    let h = Harness::new();
    let (status, _, body) =
        h.post("/api/events", json!({"eventId": "evt1", "leadId": "lead-1", "eventType": "page_view", "timestamp": "2026-01-16T10:00:00Z"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"eventId": "evt1", "leadId": "lead-1"}));
    let published = h.published();
    assert_eq!(published.len(), 1);
    assert_eq!((published[0].0.as_str(), published[0].1.as_str()), ("leads.events.v1", "lead-1"));
    assert_eq!(published[0].2["eventType"], "page_view");
    assert_eq!(h.metric("gateway_http_requests_total", &[("route", "/api/events"), ("status", "202")]), 1.0);
    assert_eq!(h.metric("gateway_records_published_total", &[("topic", "leads.events.v1")]), 1.0);
}

#[tokio::test]
async fn a_missing_event_id_is_generated_and_returned() {
    let h = Harness::new();
    let (status, _, body) = h.post("/api/events", json!({"leadId": "lead-1", "eventType": "signup"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = body["eventId"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(h.published()[0].2["eventId"], id);
}

#[tokio::test]
async fn an_invalid_field_is_named_and_nothing_is_published() {
    let h = Harness::new();
    let (status, _, body) =
        h.post("/api/events", json!({"leadId": "lead 1", "eventType": "page_view"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_field");
    assert_eq!(body["field"], "leadId");
    assert!(body["message"].as_str().unwrap().contains("leadId"), "{body}");
    assert!(h.published().is_empty());
    assert_eq!(h.metric("gateway_records_rejected_total", &[("reason", "invalid_format")]), 1.0);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let h = Harness::new();
    let (status, _, body) =
        h.send(post_request("/api/events", "application/json", "{\"leadId\":".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_json");
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let h = Harness::new();
    let (status, _, body) = h.send(post_request("/api/events", "text/plain", "{}".into())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"], "unsupported_media_type");
    let no_type = Request::post("/api/events").body(Body::from("{}")).unwrap();
    assert_eq!(h.send(no_type).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let h = Harness::new();
    let padding = "x".repeat(EVENT_BODY_LIMIT);
    let (status, _, body) =
        h.post("/api/events", json!({"leadId": "l", "eventType": "t", "properties": {"p": padding}})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "payload_too_large");
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn kafka_unavailable_is_503_with_retry_after_never_202() {
    let h = Harness::with(RecordingPublisher {
        failure: Mutex::new(Some(PublishError::Unavailable("the producer queue is full".into()))),
        ..Default::default()
    });
    let (status, headers, body) =
        h.post("/api/events", json!({"leadId": "lead-1", "eventType": "page_view"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "2");
    assert_eq!(body["error"], "unavailable");
    let (status, headers, _) = h.post("/api/leads", json!({"name": "Ada"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn a_mixed_batch_publishes_exactly_the_valid_items_in_order() {
    let h = Harness::new();
    let batch = json!({"events": [
        {"eventId": "a", "leadId": "lead-1", "eventType": "page_view"},
        {"eventId": "b", "leadId": "", "eventType": "page_view"},
        {"eventId": "c", "leadId": "lead-2", "eventType": "signup"},
        {"eventId": "d", "leadId": "lead-1", "eventType": "BAD", "timestamp": "soon"},
    ]});
    let (status, _, body) = h.post("/api/events/batch", batch).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!((body["accepted"].as_u64(), body["rejected"].as_u64()), (Some(2), Some(2)));
    let statuses: Vec<&str> =
        body["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["accepted", "rejected", "accepted", "rejected"]);
    assert_eq!(
        body["results"][2],
        json!({"status": "accepted", "index": 2, "eventId": "c", "leadId": "lead-2"})
    );

    assert_eq!(body["results"][1]["errors"][0]["field"], "events[1].leadId");
    let fields: Vec<&str> = body["results"][3]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["events[3].eventType", "events[3].timestamp"]);
    let published: Vec<Value> = h.published().into_iter().map(|(_, _, v)| v["eventId"].clone()).collect();
    assert_eq!(published, [json!("a"), json!("c")]);
}

#[tokio::test]
async fn batch_limits_and_an_all_invalid_batch() {
    let h = Harness::new();
    let too_many =
        json!({"events": vec![json!({"leadId": "l", "eventType": "t"}); MAX_EVENTS_PER_BATCH + 1]});
    let (status, _, body) = h.post("/api/events/batch", too_many).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("events")));
    let (status, _, body) = h.post("/api/events/batch", json!({"events": [{"leadId": ""}]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["rejected"], 1);
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn a_batch_whose_publish_fails_says_which_items_to_retry() {
    let h = Harness::with(RecordingPublisher {
        failure: Mutex::new(Some(PublishError::Unavailable("Kafka: broker down".into()))),
        ..Default::default()
    });
    let (status, headers, body) = h
        .post("/api/events/batch", json!({"events": [{"leadId": "l", "eventType": "t"}, {"leadId": ""}]}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(body["results"][0]["status"], "unavailable");
    assert_eq!(body["results"][1]["status"], "rejected");
    assert_eq!(body["accepted"], 0);
}

#[tokio::test]
async fn a_lead_is_trimmed_published_and_given_an_id() {
    let h = Harness::new();
    let (status, _, body) =
        h.post("/api/leads", json!({"name": "  Zoë Ångström ", "company": "Nordlys"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body[0]["name"], "Zoë Ångström");
    let lead_id = body[0]["leadId"].as_str().unwrap().to_owned();
    let published = h.published();
    assert_eq!((published[0].0.as_str(), published[0].1.as_str()), ("leads.names.v1", lead_id.as_str()));
    assert_eq!(published[0].2["company"], "Nordlys");
}

#[tokio::test]
async fn a_names_batch_takes_strings_and_objects_in_order() {
    let h = Harness::new();
    let (status, _, body) =
        h.post("/api/leads", json!({"names": ["Ada", {"name": "Kenji", "leadId": "lead-kenji"}]})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(body[1], json!({"leadId": "lead-kenji", "name": "Kenji"}));
    assert_eq!(h.published().len(), 2);
}

/// A bare name is a batch item only: as the whole body it is a 400 naming `lead`, as the
/// document (a lead object or a batch) says.
#[tokio::test]
async fn a_bare_name_as_the_whole_body_is_refused() {
    let h = Harness::new();
    for body in [json!("Ada"), json!(["Ada"]), json!(7)] {
        let (status, _, answer) = h.post("/api/leads", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            (answer["field"].as_str(), answer["details"][0]["reason"].as_str()),
            (Some("lead"), Some("invalid_type"))
        );
    }
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn a_names_batch_with_a_bad_item_publishes_nothing_and_names_it() {
    let h = Harness::new();
    let (status, _, body) = h.post("/api/leads", json!({"names": ["Ada", "   ", "Kenji"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "names[1].name");
    assert!(h.published().is_empty());
    let too_many = json!({"names": vec!["x"; MAX_NAMES_PER_BATCH + 1]});
    assert_eq!(h.post("/api/leads", too_many).await.0, StatusCode::BAD_REQUEST);
}

/// The seeds' rules under another version, as JSON.
fn rules_json(version: &str) -> Value {
    let mut rules = serde_json::to_value(ScoringRules::seeds()).unwrap();
    rules["version"] = json!(version);
    rules
}

#[tokio::test]
async fn get_scoring_rules_answers_the_seeds_as_default_while_the_topic_has_none() {
    let h = Harness::new();
    let (status, body) = h.get("/api/scoring-rules").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"rules": serde_json::to_value(ScoringRules::seeds()).unwrap(), "source": "default", "offset": null})
    );
}

#[tokio::test]
async fn get_scoring_rules_answers_the_rules_read_from_the_topic() {
    let h = Harness::new();
    let mut rules = ScoringRules::seeds();
    rules.version = "v2".to_owned();
    rules.points.insert("webinar".to_owned(), 15.0);
    h.in_force(rules.clone(), 7);
    let (status, body) = h.get("/api/scoring-rules").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"rules": serde_json::to_value(&rules).unwrap(), "source": "topic", "offset": 7}));
    assert_eq!(body["rules"]["points"]["webinar"], 15.0);
}

#[tokio::test]
async fn put_scoring_rules_publishes_one_record_keyed_scoring_rules_and_answers_202() {
    let h = Harness::new();
    let mut body = rules_json("v2");
    body["dailyCaps"] = json!({"page_view": 10});
    let (status, _, answer) = h.put("/api/scoring-rules", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer, json!({"version": "v2", "status": "published"}));
    let published = h.published();
    assert_eq!(published.len(), 1);
    assert_eq!(
        (published[0].0.as_str(), published[0].1.as_str()),
        ("scoring.rules.v1", leadflow_core::contract::records::SCORING_RULES_KEY)
    );
    assert_eq!(published[0].1, "scoring-rules");
    assert_eq!(published[0].2, body);
    assert_eq!(h.metric("gateway_records_published_total", &[("topic", "scoring.rules.v1")]), 1.0);
    assert_eq!(
        h.metric("gateway_http_requests_total", &[("route", "/api/scoring-rules"), ("status", "202")]),
        1.0
    );
}

#[tokio::test]
async fn put_scoring_rules_names_unknown_and_missing_fields_and_publishes_nothing() {
    let h = Harness::new();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"colour": "red"}), "colour", "unknown_field"),
        (
            json!({"decay": {"graceDays": 7, "ratePerDay": 0.05, "halfLife": 3}}),
            "decay.halfLife",
            "unknown_field",
        ),
        (json!({"stages": null}), "stages", "required"),
        (json!({"decay": {"graceDays": 7}}), "decay.ratePerDay", "required"),
        (json!({"version": null}), "version", "required"),
        (json!({"points": {"page_view": "5"}}), "points.\"page_view\"", "invalid_type"),
        (json!({"stages": {"warm": 20, "hot": "50", "qualified": 100}}), "stages.hot", "invalid_type"),
        (json!({"dailyCaps": {"page_view": 2.5}}), "dailyCaps.\"page_view\"", "invalid_type"),
    ];
    for (change, field, reason) in cases {
        let mut body = rules_json("v2");
        for (key, value) in change.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        let (status, _, answer) = h.put("/api/scoring-rules", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change}: {answer}");
        assert_eq!(answer["error"], "invalid_field", "{change}: {answer}");
        assert_eq!(answer["field"], field, "{change}: {answer}");
        assert_eq!(answer["details"][0]["reason"], reason, "{change}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(field.trim_start_matches("rules")), "{answer}");
    }
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn put_scoring_rules_names_the_field_that_fails_the_rules_checks() {
    let h = Harness::new();
    let mut steep = rules_json("v2");
    steep["decay"]["ratePerDay"] = json!(1.5);
    let mut negative = rules_json("v2");
    negative["points"]["signup"] = json!(-20);
    let mut inverted = rules_json("v2");
    inverted["stages"]["hot"] = json!(10);
    let mut blank = rules_json("  ");
    blank["points"] = json!({});
    for (body, field) in [
        (steep, "decay.ratePerDay"),
        (negative, "points.\"signup\""),
        (inverted, "stages.hot"),
        (blank, "version"),
    ] {
        let (status, _, answer) = h.put("/api/scoring-rules", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
        assert_eq!(answer["details"][0]["reason"], "invalid_value", "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(field), "{answer}");
    }
    assert!(h.published().is_empty());
    assert_eq!(h.metric("gateway_records_rejected_total", &[("reason", "invalid_value")]), 4.0);
}

#[tokio::test]
async fn put_scoring_rules_refuses_the_version_in_force_with_other_content() {
    let h = Harness::new();
    // The seeds are in force as the default: their version names them too.
    let mut seeds_changed = rules_json("v1");
    seeds_changed["points"]["page_view"] = json!(6);
    let (status, _, answer) = h.put("/api/scoring-rules", seeds_changed).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!((answer["error"].as_str(), answer["field"].as_str()), (Some("conflict"), Some("version")));
    assert!(answer["message"].as_str().unwrap().contains("pick a new version"), "{answer}");

    let mut v2 = ScoringRules::seeds();
    v2.version = "v2".to_owned();
    h.in_force(v2, 3);
    let mut v2_changed = rules_json("v2");
    v2_changed["dailyCaps"] = json!({"page_view": 3});
    assert_eq!(h.put("/api/scoring-rules", v2_changed).await.0, StatusCode::CONFLICT);
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn put_scoring_rules_again_with_the_same_content_is_accepted() {
    let h = Harness::new();
    let mut v2 = ScoringRules::seeds();
    v2.version = "v2".to_owned();
    h.in_force(v2.clone(), 3);
    // Numbers spelled differently (5 and 5.0) are the same rules.
    let mut body = rules_json("v2");
    body["points"]["page_view"] = json!(5);
    let (status, _, answer) = h.put("/api/scoring-rules", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer, json!({"version": "v2", "status": "published"}));
    let published = h.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].2, serde_json::to_value(&v2).unwrap());
}

#[tokio::test]
async fn put_scoring_rules_while_kafka_is_unavailable_is_503_with_retry_after() {
    let h = Harness::with(RecordingPublisher {
        failure: Mutex::new(Some(PublishError::Unavailable("Kafka: broker down".into()))),
        ..Default::default()
    });
    let (status, headers, answer) = h.put("/api/scoring-rules", rules_json("v2")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "2");
    assert_eq!(answer["error"], "unavailable");
}

#[tokio::test]
async fn put_scoring_rules_enforces_content_type_and_size() {
    let h = Harness::new();
    let request = Request::put("/api/scoring-rules")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(rules_json("v2").to_string()))
        .unwrap();
    assert_eq!(h.send(request).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut big = rules_json("v2");
    for i in 0..RULES_BODY_LIMIT / 16 {
        big["points"][format!("type_{i:08}")] = json!(1);
    }
    assert_eq!(h.put("/api/scoring-rules", big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(h.published().is_empty());
}

const REVIEW_ROUTE: &str = "/api/leads/{id}/review";

#[tokio::test]
async fn a_review_is_published_as_one_lead_reviewed_keyed_by_the_lead_and_answered_202() {
    let h = Harness::new();
    let before = OffsetDateTime::now_utc();
    let (status, _, body) = h
        .post(
            "/api/leads/lead-ada/review",
            json!({"decision": "Verified", "reviewer": "  grace@example.com ", "note": "called her"}),
        )
        .await;
    let after = OffsetDateTime::now_utc();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!((body["leadId"].as_str(), body["decision"].as_str()), (Some("lead-ada"), Some("Verified")));
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    let reviewed_at = body["reviewedAt"].as_str().unwrap();
    let at = OffsetDateTime::parse(reviewed_at, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(before <= at && at <= after, "reviewedAt {at} is not the gateway's clock ({before}..{after})");

    let published = h.published();
    assert_eq!(published.len(), 1);
    let (topic, key, record) = &published[0];
    assert_eq!((topic.as_str(), key.as_str()), (leadflow_core::contract::topics::REVIEWS, "lead-ada"));
    assert_eq!(
        *record,
        json!({"leadId": "lead-ada", "decision": "Verified", "reviewer": "grace@example.com", "note": "called her", "reviewedAt": reviewed_at})
    );
    assert_eq!(h.metric("gateway_records_published_total", &[("topic", "leads.reviews.v1")]), 1.0);
    // The route label is the pattern, not the lead id: one series for every lead.
    assert_eq!(h.metric("gateway_http_requests_total", &[("route", REVIEW_ROUTE), ("status", "202")]), 1.0);
}

#[tokio::test]
async fn a_rejection_without_reviewer_or_note_is_published_as_such() {
    let h = Harness::new();
    let (status, _, body) = h.post("/api/leads/crm:42@eu/review", json!({"decision": "Rejected"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["decision"], "Rejected");
    let published = h.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].1, "crm:42@eu");
    let record = published[0].2.as_object().unwrap();
    let mut fields: Vec<&str> = record.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["decision", "leadId", "reviewedAt"], "absent optionals are left out");
    assert_eq!(record["decision"], "Rejected");
}

#[tokio::test]
async fn a_bad_review_is_400_naming_the_field_and_publishes_nothing() {
    let h = Harness::new();
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("/api/leads/lead%201/review", json!({"decision": "Verified"}), "id", "invalid_format"),
        ("/api/leads/l%C3%A9ad/review", json!({"decision": "Verified"}), "id", "invalid_format"),
        ("/api/leads/a%2Fb/review", json!({"decision": "Verified"}), "id", "invalid_format"),
        ("/api/leads/%FF/review", json!({"decision": "Verified"}), "id", "invalid_format"),
        ("/api/leads/lead-1/review", json!({}), "decision", "required"),
        ("/api/leads/lead-1/review", json!({"decision": "To Check"}), "decision", "invalid_value"),
        ("/api/leads/lead-1/review", json!({"decision": 1}), "decision", "invalid_type"),
        ("/api/leads/lead-1/review", json!({"decision": "Verified", "score": 3}), "score", "unknown_field"),
        (
            "/api/leads/lead-1/review",
            json!({"decision": "Verified", "reviewer": "r".repeat(257)}),
            "reviewer",
            "too_long",
        ),
        (
            "/api/leads/lead-1/review",
            json!({"decision": "Verified", "note": "n".repeat(2001)}),
            "note",
            "too_long",
        ),
        ("/api/leads/lead-1/review", json!(["Verified"]), "review", "invalid_type"),
    ];
    for (path, body, field, reason) in cases {
        let (status, _, answer) = h.post(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_eq!(answer["error"], "invalid_field", "{path} {body}: {answer}");
        assert_eq!(answer["field"], field, "{path} {body}: {answer}");
        assert_eq!(answer["details"][0]["reason"], reason, "{path} {body}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(field), "{answer}");
    }
    let long_id = format!("/api/leads/{}/review", "a".repeat(129));
    let (status, _, answer) = h.post(&long_id, json!({"decision": "Verified"})).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("id")));

    let (_, _, answer) = h.post("/api/leads/lead-1/review", json!({"decision": "verified"})).await;
    assert!(answer["message"].as_str().unwrap().contains("Verified, Rejected"), "{answer}");
    assert!(h.published().is_empty());
    assert_eq!(h.metric("gateway_records_rejected_total", &[("reason", "invalid_format")]), 4.0);
    assert_eq!(h.metric("gateway_http_requests_total", &[("route", REVIEW_ROUTE), ("status", "400")]), 13.0);
}

#[tokio::test]
async fn a_review_body_is_checked_like_every_other_post() {
    let h = Harness::new();
    let (status, _, body) = h
        .send(post_request(
            "/api/leads/lead-1/review",
            "text/plain",
            json!({"decision": "Verified"}).to_string(),
        ))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );
    let (status, _, body) =
        h.send(post_request("/api/leads/lead-1/review", "application/json", "{\"decision\":".into())).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_json")));
    let padding = "x".repeat(REVIEW_BODY_LIMIT);
    let (status, _, body) =
        h.post("/api/leads/lead-1/review", json!({"decision": "Verified", "note": padding})).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn a_review_route_answers_404_and_405_as_the_router_does_and_an_empty_id_is_400() {
    let h = Harness::new();
    // An empty id matches the route, and is a bad id like any other.
    let (status, _, body) = h.post("/api/leads//review", json!({"decision": "Verified"})).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("id")));
    assert_eq!(body["details"][0]["reason"], "empty");
    let (status, _, body) = h.post("/api/leads/lead-1/reviews", json!({"decision": "Verified"})).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, body) = h.get("/api/leads/lead-1/review").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn a_review_while_kafka_is_unavailable_is_503_with_retry_after() {
    let h = Harness::with(RecordingPublisher {
        failure: Mutex::new(Some(PublishError::Unavailable("the producer queue is full".into()))),
        ..Default::default()
    });
    let (status, headers, body) = h.post("/api/leads/lead-1/review", json!({"decision": "Rejected"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "2");
    assert_eq!(body["error"], "unavailable");
    assert!(body["message"].as_str().unwrap().contains("queue is full"), "{body}");
    assert!(h.published().is_empty());
    assert_eq!(h.metric("gateway_records_published_total", &[("topic", "leads.reviews.v1")]), 0.0);
}

#[tokio::test]
async fn a_review_that_outlives_the_timeout_is_503() {
    let h = Harness::with(RecordingPublisher { stall: true, ..Default::default() });
    let (status, headers, body) = h.post("/api/leads/lead-1/review", json!({"decision": "Verified"})).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("timeout")));
    assert_eq!(headers[header::RETRY_AFTER], "2");
}
