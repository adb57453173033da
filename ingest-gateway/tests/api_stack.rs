//! The gateway binary against the real stack: what a 202 promises is in Kafka, keyed and ordered
//! by lead, framed with the registered schema; a mixed batch publishes exactly its valid items;
//! a review becomes a LeadReviewed on `leads.reviews.v1`; a rule set PUT to the gateway becomes
//! the rules in force that it reads back from the topic.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Gateway, codec, end_offsets, read_from, run_id};
use leadflow_core::stage::startup::register_all;

use leadflow_core::contract::records::{LeadEvent, LeadReviewed, NameSubmitted, ReviewDecision};
use leadflow_core::model::scoring::ScoringRules;
use leadflow_testkit::{Stack, eventually, unique};
use serde_json::json;

#[tokio::test]
async fn each_leads_events_sit_on_one_partition_in_posting_order_and_decode_through_the_registry() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let run = run_id();
    let from = end_offsets(&stack, "leads.events.v1");

    let leads: Vec<String> = (0..6).map(|i| format!("{run}.lead{i}")).collect();
    let mut posted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for round in 0..8 {
        for lead in &leads {
            let event_id = format!("{lead}.e{round}");
            let (status, body) = gateway
                .post("/api/events", &json!({"eventId": event_id, "leadId": lead, "eventType": "page_view", "properties": {"round": round}}))
                .await;
            assert_eq!(status, 202, "{body}");
            assert_eq!(body["eventId"], event_id);
            posted.entry(lead.clone()).or_default().push(event_id);
        }
    }
    let expected = leads.len() * 8;
    let records = read_from(&stack, "leads.events.v1", &from, |r| {
        r.iter().filter(|p| p.key.starts_with(&run)).count() >= expected
    })
    .await;
    let ours: Vec<_> = records.iter().filter(|p| p.key.starts_with(&run)).collect();
    assert_eq!(ours.len(), expected, "exactly one record per accepted event");

    let codec = codec(&stack);
    register_all(&codec).await.unwrap();
    let mut seen: BTreeMap<String, Vec<(i32, i64, String)>> = BTreeMap::new();
    for record in &ours {
        assert_eq!(record.value[0], 0, "Confluent-framed");
        let event: LeadEvent = codec.decode(&record.value).await.expect("decodes through the registry");
        assert_eq!(event.lead_id, record.key, "keyed by leadId");
        seen.entry(record.key.clone()).or_default().push((record.partition, record.offset, event.event_id));
    }
    let mut partitions_used = BTreeSet::new();
    for (lead, mut records) in seen {
        let partitions: BTreeSet<i32> = records.iter().map(|r| r.0).collect();
        assert_eq!(partitions.len(), 1, "{lead} spread over {partitions:?}");
        partitions_used.extend(partitions);
        records.sort_by_key(|r| r.1);
        let order: Vec<String> = records.into_iter().map(|r| r.2).collect();
        assert_eq!(order, posted[&lead], "{lead}'s records are not in posting order");
    }
    assert!(partitions_used.len() > 1, "six leads should use more than one partition");
}

#[tokio::test]
async fn a_mixed_batch_publishes_exactly_its_valid_items() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let run = run_id();
    let from = end_offsets(&stack, "leads.events.v1");
    let lead = format!("{run}.batch");
    let batch = json!({"events": [
        {"eventId": format!("{lead}.ok0"), "leadId": lead, "eventType": "page_view"},
        {"eventId": format!("{lead}.bad1"), "leadId": lead, "eventType": "Not Valid"},
        {"eventId": format!("{lead}.ok2"), "leadId": lead, "eventType": "signup"},
        {"eventId": format!("{lead}.bad3"), "leadId": "", "eventType": "signup"},
        {"eventId": format!("{lead}.bad4"), "leadId": lead, "eventType": "signup", "timestamp": "2999-01-01T00:00:00Z"},
        {"eventId": format!("{lead}.ok5"), "leadId": lead, "eventType": "demo_request"},
    ]});
    let (status, body) = gateway.post("/api/events/batch", &batch).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!((body["accepted"].as_u64(), body["rejected"].as_u64()), (Some(3), Some(3)));

    // Publish a marker after the batch: once it is read, everything the batch published has been.
    let marker = format!("{lead}.marker");
    assert_eq!(
        gateway
            .post("/api/events", &json!({"eventId": marker, "leadId": lead, "eventType": "marker"}))
            .await
            .0,
        202
    );
    let codec = codec(&stack);
    let records = read_from(&stack, "leads.events.v1", &from, |r| {
        r.iter().any(|p| p.key == lead && String::from_utf8_lossy(&p.value).contains(".marker"))
    })
    .await;
    let mut ids = Vec::new();
    for record in records.iter().filter(|p| p.key == lead) {
        let event: LeadEvent = codec.decode(&record.value).await.unwrap();
        ids.push(event.event_id);
    }
    let expected: Vec<String> =
        ["ok0", "ok2", "ok5", "marker"].iter().map(|s| format!("{lead}.{s}")).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn submitted_names_are_published_as_name_submitted() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let run = run_id();
    let from = end_offsets(&stack, "leads.names.v1");
    let (status, body) = gateway
        .post("/api/leads", &json!({"names": [{"name": " Zoë Ångström ", "leadId": format!("{run}.zoe")}, {"name": "Kenji", "leadId": format!("{run}.kenji")}]}))
        .await;
    assert_eq!(status, 202, "{body}");
    let records = read_from(&stack, "leads.names.v1", &from, |r| {
        r.iter().filter(|p| p.key.starts_with(&run)).count() >= 2
    })
    .await;
    let codec = codec(&stack);
    let mut names = BTreeMap::new();
    for record in records.iter().filter(|p| p.key.starts_with(&run)) {
        let lead: NameSubmitted = codec.decode(&record.value).await.unwrap();
        names.insert(lead.lead_id, lead.name);
    }
    assert_eq!(names[&format!("{run}.zoe")], "Zoë Ångström");
    assert_eq!(names.len(), 2);
}

#[tokio::test]
async fn a_review_is_published_as_lead_reviewed_keyed_by_the_lead() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let run = run_id();
    let from = end_offsets(&stack, "leads.reviews.v1");
    let lead = format!("{run}.reviewed");
    // At the length limits, so the gateway's limits are shown to fit the record's schema (the
    // codec validates every record against it before publishing). The reviewer's limit counts
    // the value as sent, padding included; the padding is then trimmed.
    let reviewer = "é".repeat(254);
    let note = "🙂".repeat(2000);
    let (status, body) = gateway
        .post(
            &format!("/api/leads/{lead}/review"),
            &json!({"decision": "Rejected", "reviewer": format!(" {reviewer} "), "note": note}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!((body["leadId"].as_str(), body["decision"].as_str()), (Some(lead.as_str()), Some("Rejected")));

    let records = read_from(&stack, "leads.reviews.v1", &from, |r| r.iter().any(|p| p.key == lead)).await;
    let ours: Vec<_> = records.iter().filter(|p| p.key == lead).collect();
    assert_eq!(ours.len(), 1, "exactly one record per accepted review");
    assert_eq!(ours[0].value[0], 0, "Confluent-framed");
    let codec = codec(&stack);
    register_all(&codec).await.unwrap();
    let review: LeadReviewed = codec.decode(&ours[0].value).await.expect("decodes through the registry");
    let answered_at = time::OffsetDateTime::parse(
        body["reviewedAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        review,
        LeadReviewed {
            project_id: "default".into(),
            lead_id: lead.clone(),
            decision: ReviewDecision::Rejected,
            reviewer: Some(reviewer),
            note: Some(note),
            reviewed_at: answered_at,
        }
    );
}

/// The seeds' rules under a version no run has used, so that whatever this test leaves newest
/// on `scoring.rules.v1` scores exactly like the seeds (other tests and the demo rely on that).
fn seeds_as_new_version(prefix: &str) -> ScoringRules {
    ScoringRules { version: unique(prefix), ..ScoringRules::seeds() }
}

#[tokio::test]
async fn a_rule_set_put_to_the_gateway_becomes_the_rules_in_force() {
    let stack = Stack::get();
    let gateway = Gateway::start(&stack).await;
    let rules = seeds_as_new_version("test-gw-rules");
    let (status, body) = gateway.put("/api/scoring-rules", &json!(rules)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({"version": rules.version, "status": "published"}));

    // The gateway reads the topic back the way the scorer does.
    let in_force = eventually("the PUT rule set is in force", Duration::from_secs(30), || async {
        let (status, body) = gateway.get("/api/scoring-rules").await;
        let ours = status == 200 && body["rules"]["version"] == rules.version && body["source"] == "topic";
        if ours { Ok(Some(body)) } else { Err(format!("{status} {body}")) }
    })
    .await
    .unwrap();

    // Now in force, its version names it: other content under it is refused. The difference is
    // a cap on a type without points, which scores nothing either way, so that even a wrongly
    // accepted PUT would not change any score.
    let mut other = rules.clone();
    other.daily_caps.insert("test_unscored_type".to_owned(), 1);
    let (conflict_status, conflict) = gateway.put("/api/scoring-rules", &json!(other)).await;

    // Leave the seeds' points newest on the topic under a fresh version, before asserting more.
    let restore = seeds_as_new_version("test-gw-restore");
    let (restore_status, restored) = gateway.put("/api/scoring-rules", &json!(restore)).await;
    assert_eq!(restore_status, 202, "restoring the seeds' points: {restored}");

    assert_eq!(in_force["rules"], serde_json::to_value(&rules).unwrap());
    assert!(in_force["offset"].as_i64().is_some_and(|o| o >= 0), "{in_force}");
    assert_eq!(conflict_status, 409, "{conflict}");
    assert_eq!(conflict["field"], "version");
}
