//! The typed stage against the real schema registry, with no broker: what a processor cannot
//! have written becomes a dead letter of the input that caused it, never a batch error.

use std::sync::Arc;

use leadflow_core::contract::codec::SchemaCodec;
use leadflow_core::contract::records::{DeadLetter, LeadEvent, LeadScored, PipelineStage, Stage};
use leadflow_core::contract::topics;
use leadflow_core::stage::exactly_once::{BatchProcessor, InputRecord, OutputRecord, ProcessError};
use leadflow_core::stage::metrics::StageMetrics;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::typed::{
    Decoded, Emit, KEY_MISMATCH, OUTPUT_TOO_LARGE, Transform, TypedStage, UNENCODABLE_OUTPUT, headers,
};
use leadflow_testkit::Stack;
use time::macros::datetime;

/// Scores every event 1, or NaN for an event of type `nan`, which no LeadScored may hold.
struct Scores;

impl Transform for Scores {
    type Input = LeadEvent;
    const STAGE: PipelineStage = PipelineStage::Scorer;

    async fn apply(
        &self,
        batch: Vec<Decoded<LeadEvent>>,
        _: &PauseSignal,
    ) -> Result<Vec<Emit>, ProcessError> {
        Ok(batch
            .iter()
            .map(|input| {
                let event = &input.record;
                let score = if event.event_type == "nan" { f64::NAN } else { 1.0 };
                let record = LeadScored {
                    project_id: "default".into(),
                    lead_id: event.lead_id.clone(),
                    event_id: event.event_id.clone(),
                    event_type: event.event_type.clone(),
                    delta: score,
                    score,
                    stage: Stage::Cold,
                    previous_stage: None,
                    event_timestamp: event.timestamp,
                    rules_version: "v1".into(),
                    processed_at: event.timestamp,
                    late: false,
                    reason: None,
                    lead_version: Some(1),
                    merged_into: None,
                };
                Emit::record(&input.position, &record)
            })
            .collect())
    }
}

async fn input(codec: &SchemaCodec, offset: i64, event_type: &str) -> InputRecord {
    let event = LeadEvent {
        project_id: "default".into(),
        event_id: format!("e{offset}"),
        lead_id: "lead-typed".into(),
        event_type: event_type.into(),
        timestamp: datetime!(2026-01-16 10:00 UTC),
        properties: Default::default(),
        merge_into: None,
        forwarded_from: None,
        hops: 0,
    };
    InputRecord {
        topic: Arc::from(topics::EVENTS),
        partition: 2,
        offset,
        key: Some(b"lead-typed".to_vec()),
        value: Some(codec.encode(&event).await.unwrap()),
    }
}

async fn letter(codec: &SchemaCodec, output: &OutputRecord) -> DeadLetter {
    assert_eq!(output.topic, topics::DLQ);
    codec.decode(&output.value).await.unwrap()
}

/// Each output's topic, and the error kind of those that are dead letters.
fn topics_and_kinds(outputs: &[OutputRecord]) -> Vec<(&str, Option<&str>)> {
    outputs.iter().map(|o| (o.topic, header(o, headers::ERROR_KIND))).collect()
}

fn header<'a>(output: &'a OutputRecord, name: &str) -> Option<&'a str> {
    output.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn an_output_that_fails_its_schema_is_a_dead_letter_of_its_input_and_the_batch_goes_on() {
    let stack = Stack::get();
    let codec = Arc::new(leadflow_testkit::kafka::codec(&stack));
    let registry = prometheus::Registry::new();
    let metrics = StageMetrics::register(&registry).unwrap();
    let stage = TypedStage::new(Scores, codec.clone(), metrics);
    let mut poison = input(&codec, 12, "page_view").await;
    poison.value = Some(b"not json".to_vec());
    let batch = vec![input(&codec, 10, "nan").await, input(&codec, 11, "page_view").await, poison];

    let outputs = stage.process(&batch, &PauseSignal::default()).await.unwrap();
    let kinds = topics_and_kinds(&outputs);
    assert_eq!(
        kinds,
        vec![
            (topics::DLQ, Some("malformed")),
            (topics::DLQ, Some(UNENCODABLE_OUTPUT)),
            (topics::SCORES, None)
        ]
    );
    let unencodable = letter(&codec, &outputs[1]).await;
    assert_eq!(
        (unencodable.source_topic.as_deref(), unencodable.source_offset),
        (Some(topics::EVENTS), Some(10))
    );
    use base64::Engine;
    let original =
        base64::engine::general_purpose::STANDARD.decode(unencodable.original_value.unwrap()).unwrap();
    assert_eq!(Some(original), batch[0].value, "the letter holds the input, ready to replay");
    assert!(unencodable.error.contains("/score"), "{}", unencodable.error);
    let scored: LeadScored = codec.decode(&outputs[2].value).await.unwrap();
    assert_eq!(scored.event_id, "e11");
    let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
    assert!(
        text.contains(r#"dead_letters_total{error_kind="unencodable_output",stage="scorer"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"dead_letters_total{error_kind="malformed",stage="scorer"} 1"#), "{text}");
}

#[tokio::test]
async fn an_output_over_the_size_a_topic_takes_is_a_dead_letter_of_its_input() {
    let stack = Stack::get();
    let codec = Arc::new(leadflow_testkit::kafka::codec(&stack));
    let metrics = StageMetrics::register(&prometheus::Registry::new()).unwrap();
    let stage = TypedStage { max_output_bytes: 200, ..TypedStage::new(Scores, codec.clone(), metrics) };
    let batch = vec![input(&codec, 20, "page_view").await];

    let outputs = stage.process(&batch, &PauseSignal::default()).await.unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(header(&outputs[0], headers::ERROR_KIND), Some(OUTPUT_TOO_LARGE));
    assert_eq!(header(&outputs[0], headers::OFFSET), Some("20"));
    let letter = letter(&codec, &outputs[0]).await;
    assert!(letter.error.contains("over the 200"), "{}", letter.error);
}

#[tokio::test]
async fn a_record_under_a_key_that_is_not_its_lead_key_is_a_dead_letter_and_a_keyless_one_is_taken() {
    let stack = Stack::get();
    let codec = Arc::new(leadflow_testkit::kafka::codec(&stack));
    let registry = prometheus::Registry::new();
    let stage = TypedStage::new(Scores, codec.clone(), StageMetrics::register(&registry).unwrap());
    // An operator typed the bare lead id as the key of a record of the project `acme`.
    let acme = LeadEvent {
        project_id: "acme".into(),
        event_id: "e20".into(),
        lead_id: "lead-typed".into(),
        event_type: "page_view".into(),
        timestamp: datetime!(2026-01-16 10:00 UTC),
        properties: Default::default(),
        merge_into: None,
        forwarded_from: None,
        hops: 0,
    };
    let mut misplaced = input(&codec, 20, "page_view").await;
    misplaced.value = Some(codec.encode(&acme).await.unwrap());
    let mut well_keyed = misplaced.clone();
    (well_keyed.offset, well_keyed.key) = (21, Some(b"acme/lead-typed".to_vec()));
    let mut keyless = input(&codec, 22, "page_view").await;
    keyless.key = None;
    let batch = vec![misplaced, well_keyed, keyless, input(&codec, 23, "page_view").await];

    let outputs = stage.process(&batch, &PauseSignal::default()).await.unwrap();
    let kinds = topics_and_kinds(&outputs);
    assert_eq!(
        kinds,
        vec![
            (topics::DLQ, Some(KEY_MISMATCH)),
            (topics::SCORES, None),
            (topics::SCORES, None),
            (topics::SCORES, None)
        ]
    );
    let refused = letter(&codec, &outputs[0]).await;
    assert_eq!(refused.source_offset, Some(20));
    assert!(
        refused.error.contains(r#""lead-typed" is not the lead key "acme/lead-typed""#),
        "the error names both keys: {}",
        refused.error
    );
}
