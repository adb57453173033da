//! The dead letter of a `/v1` message that cannot be used: stage `gateway`, the mapping's
//! `errorKind` and reason, and the message itself (its `writeKey` removed) as `originalValue`.
//! It is built here rather than with `DeadLetter::for_record`, which needs the Kafka position of
//! a record the gateway never read: the `source*` fields are `None`, and the value is bounded as
//! `for_record` bounds it (kept whole up to `MAX_ORIGINAL_VALUE_BYTES`, else a prefix with the
//! size and SHA-256), the error cut at `MAX_ERROR_BYTES`.

use base64::Engine;
use sha2::Digest;
use time::OffsetDateTime;

use leadflow_core::contract::project::lead_key;
use leadflow_core::contract::records::{
    DeadLetter, MAX_ERROR_BYTES, MAX_ORIGINAL_VALUE_BYTES, PipelineStage, cut_text,
};

/// The dead letter of `message` (its JSON bytes, `writeKey` removed) in `project_id`, keyed by
/// its lead when it names one (`lead_id`), else by the empty key.
pub fn of_message(
    project_id: &str,
    lead_id: Option<&str>,
    error_kind: &str,
    error: &str,
    message: &[u8],
    failed_at: OffsetDateTime,
) -> DeadLetter {
    let kept = &message[..message.len().min(MAX_ORIGINAL_VALUE_BYTES)];
    DeadLetter {
        lead_id: lead_id.map(|lead| lead_key(project_id, lead).into_owned()).unwrap_or_default(),
        project_id: project_id.to_owned(),
        stage: PipelineStage::Gateway,
        error_kind: error_kind.to_owned(),
        error: cut_text(error, MAX_ERROR_BYTES),
        source_topic: None,
        source_partition: None,
        source_offset: None,
        original_key: None,
        original_value: Some(base64::engine::general_purpose::STANDARD.encode(kept)),
        original_key_size: None,
        original_key_sha256: None,
        original_value_size: Some(message.len() as u64),
        original_value_sha256: Some(hex::encode(sha2::Sha256::digest(message))),
        truncated: kept.len() < message.len(),
        failed_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(letter: &DeadLetter) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(letter.original_value.as_ref().unwrap()).unwrap()
    }

    #[test]
    fn a_message_is_kept_whole_keyed_by_its_lead_in_its_project() {
        let message = br#"{"type":"track"}"#;
        let letter = of_message(
            "acme",
            Some("u1"),
            "missing_event",
            "event is required",
            message,
            OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!((letter.lead_id.as_str(), letter.project_id.as_str()), ("acme/u1", "acme"));
        assert_eq!(letter.stage, PipelineStage::Gateway);
        assert_eq!(decoded(&letter), message);
        assert_eq!(letter.original_value_size, Some(message.len() as u64));
        assert!(!letter.truncated);
        assert_eq!(letter.source_topic, None);
        let anonymous =
            of_message("default", None, "missing_identity", "no id", message, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(anonymous.lead_id, "");
    }

    #[test]
    fn an_original_past_the_bound_is_a_prefix_and_the_error_is_cut() {
        let message = vec![b'x'; MAX_ORIGINAL_VALUE_BYTES + 10];
        let error = "e".repeat(MAX_ERROR_BYTES * 2);
        let letter =
            of_message("default", None, "message_too_large", &error, &message, OffsetDateTime::UNIX_EPOCH);
        assert!(letter.truncated);
        assert_eq!(decoded(&letter).len(), MAX_ORIGINAL_VALUE_BYTES);
        assert_eq!(letter.original_value_size, Some(message.len() as u64));
        assert!(letter.error.len() <= MAX_ERROR_BYTES);
    }
}
