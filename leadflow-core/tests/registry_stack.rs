//! Against the real schema registry: records round-trip Confluent-framed, plain JSON from the CLI
//! is accepted and validated, and the registry enforces BACKWARD compatibility.

use std::time::Duration;

use leadflow_core::contract::codec::SchemaRegistryConfig;
use leadflow_core::contract::codec::{CodecError, PoisonKind, SchemaCodec, subject};
use leadflow_core::contract::records::{LeadEvent, NameSubmitted};
use leadflow_core::stage::startup::register_all;
use leadflow_testkit::{Stack, unique};
use time::macros::datetime;

fn codec(stack: &Stack) -> SchemaCodec {
    SchemaCodec::new(&SchemaRegistryConfig {
        url: stack.schema_registry_url.clone(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn sample_name() -> NameSubmitted {
    NameSubmitted {
        project_id: "default".into(),
        lead_id: "lead-42".into(),
        name: "Zoë Ångström".into(),
        email: Some("zoe@example.com".into()),
        company: None,
        submitted_at: datetime!(2026-01-16 10:00:00 UTC),
    }
}

#[tokio::test]
async fn records_round_trip_confluent_framed() {
    let stack = Stack::get();
    let codec = codec(&stack);
    register_all(&codec).await.unwrap();
    let bytes = codec.encode(&sample_name()).await.unwrap();
    assert_eq!(bytes[0], 0, "Confluent magic byte");
    let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
    let registered = codec.register::<NameSubmitted>().await.unwrap();
    assert_eq!(id, registered, "the frame names the schema registered for the topic");
    let decoded: NameSubmitted = codec.decode(&bytes).await.unwrap();
    assert_eq!(decoded, sample_name());
}

#[tokio::test]
async fn every_topic_subject_is_registered_with_backward_compatibility() {
    let stack = Stack::get();
    let codec = codec(&stack);
    register_all(&codec).await.unwrap();
    for topic in leadflow_core::contract::topics::declared_topics() {
        let level = codec.compatibility_level(&subject(&topic.name)).await.unwrap();
        assert_eq!(level.as_deref(), Some("BACKWARD"), "{}", topic.name);
    }
}

#[tokio::test]
async fn plain_json_from_the_cli_is_accepted_and_validated() {
    let stack = Stack::get();
    let codec = codec(&stack);
    let plain =
        br#"{"eventId":"evt1","leadId":"lead-7","eventType":"page_view","timestamp":"2026-01-16T10:00:00Z"}"#;
    let event: LeadEvent = codec.decode(plain).await.unwrap();
    assert_eq!(event.lead_id, "lead-7");
    assert_eq!(event.event_type, "page_view");

    let missing_lead = br#"{"eventId":"evt1","eventType":"page_view","timestamp":"2026-01-16T10:00:00Z"}"#;
    match codec.decode::<LeadEvent>(missing_lead).await {
        Err(CodecError::Poison { kind: PoisonKind::SchemaViolation, message }) => {
            assert!(message.contains("leadId"), "the error names the field: {message}")
        }
        other => panic!("expected a schema violation, got {other:?}"),
    }
    match codec.decode::<LeadEvent>(b"page_view lead-7").await {
        Err(CodecError::Poison { kind: PoisonKind::Malformed, .. }) => {}
        other => panic!("expected malformed, got {other:?}"),
    }
    match codec.decode::<LeadEvent>(&[0, 0, 0]).await {
        Err(CodecError::Poison { kind: PoisonKind::Malformed, .. }) => {}
        other => panic!("a cut-short frame is malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn the_registry_rejects_a_backward_incompatible_change() {
    let stack = Stack::get();
    let codec = codec(&stack);
    let subject = format!("{}-value", unique("test.compat"));
    // Closed records, as in schemas/: with an open content model the registry counts any added
    // property as a narrowing, so only closed records can grow.
    let v1 = r#"{"type":"object","additionalProperties":false,"properties":{"leadId":{"type":"string"},"score":{"type":"integer"}},"required":["leadId"]}"#;
    // Compatible: a new optional property; records written under v1 still read under v2.
    let v2 = r#"{"type":"object","additionalProperties":false,"properties":{"leadId":{"type":"string"},"score":{"type":"integer"},"note":{"type":"string"}},"required":["leadId"]}"#;
    // Incompatible: a field's type changes, so records written under v2 fail under v3.
    let v3 = r#"{"type":"object","additionalProperties":false,"properties":{"leadId":{"type":"string"},"score":{"type":"string"},"note":{"type":"string"}},"required":["leadId"]}"#;
    let id1 = codec.register_schema(&subject, v1).await.unwrap();
    let id2 = codec.register_schema(&subject, v2).await.unwrap();
    assert_ne!(id1, id2);
    match codec.register_schema(&subject, v3).await {
        Err(CodecError::RegistryRefused(message)) => {
            assert!(message.contains("409") || message.to_lowercase().contains("compat"), "{message}")
        }
        other => panic!("expected the registry to refuse the change, got {other:?}"),
    }
}

/// Every schema as it was before records carried `projectId`, beside the schema of today.
fn schemas_before_and_after_projects() -> Vec<(&'static str, &'static str, &'static str)> {
    use leadflow_core::contract::records::*;
    use leadflow_core::model::scoring::ScoringRules;
    macro_rules! pair {
        ($ty:ty, $file:literal) => {
            (
                $file,
                include_str!(concat!("fixtures/schemas-before-projects/", $file)),
                <$ty as TopicRecord>::SCHEMA,
            )
        };
    }
    vec![
        pair!(NameSubmitted, "NameSubmitted.schema.json"),
        pair!(LeadEvent, "LeadEvent.schema.json"),
        pair!(LeadEnriched, "LeadEnriched.schema.json"),
        pair!(LeadScored, "LeadScored.schema.json"),
        pair!(LeadReviewed, "LeadReviewed.schema.json"),
        pair!(CrmResyncRequested, "CrmResyncRequested.schema.json"),
        pair!(CrmDelivery, "CrmDelivery.schema.json"),
        pair!(DeadLetter, "DeadLetter.schema.json"),
        pair!(ScoringRules, "ScoringRules.schema.json"),
    ]
}

#[tokio::test]
async fn adding_the_project_is_a_backward_compatible_change_and_old_records_read_as_the_default_project() {
    let stack = Stack::get();
    let codec = codec(&stack);
    for (file, before, after) in schemas_before_and_after_projects() {
        let subject = unique(&format!("projects-{}", file.trim_end_matches(".schema.json")));
        let old = codec.register_schema(&subject, before).await.unwrap();
        let new = codec
            .register_schema(&subject, after)
            .await
            .unwrap_or_else(|e| panic!("{file}: the registry refused the schema with projectId: {e}"));
        assert_ne!(old, new, "{file}: the schema changed");
    }
    // A record as it was written before projects, plain JSON as an operator's CLI would send.
    let before =
        br#"{"eventId":"e1","leadId":"lead-7","eventType":"page_view","timestamp":"2026-01-16T10:00:00Z"}"#;
    let event: LeadEvent = codec.decode(before).await.unwrap();
    assert_eq!(event.project_id, "default");
    assert_eq!(leadflow_core::contract::records::TopicRecord::key(&event), "lead-7");
}
