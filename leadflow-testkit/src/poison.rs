//! Poison records as an operator makes them: typed into `kafka-console-producer`, of any size a
//! topic takes, and the checks that each one became a bounded dead letter without stalling its
//! partition.

use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use leadflow_core::contract::records::{DeadLetter, MAX_ERROR_BYTES, MAX_ORIGINAL_VALUE_BYTES};
use leadflow_core::contract::topics;
use leadflow_core::stage::typed::headers;
use sha2::Digest;

use crate::Stack;
use crate::kafka::{Published, committed_offsets, decode_all, end_offsets, read_from_within};

/// A 900 KB value that is not JSON.
pub fn huge_non_json() -> Vec<u8> {
    let mut value = b"not json: ".to_vec();
    value.resize(900 * 1024, b'z');
    value
}

/// A 600 KB JSON object that a closed schema refuses: `valid` plus one unknown, huge field.
pub fn huge_schema_violation(valid: &serde_json::Value) -> Vec<u8> {
    let mut object = valid.as_object().expect("an object").clone();
    object.insert("padding".into(), "p".repeat(600 * 1024).into());
    serde_json::to_vec(&object).unwrap()
}

/// Writes each `(key, value)` as one line through `kafka-console-producer`, in order, with the
/// producer's request size raised to take a 900 KB record. Values must not hold a newline.
pub fn produce_with_cli(stack: &Stack, topic: &str, records: &[(&str, &[u8])]) {
    let mut cli = stack
        .kafka_tool("kafka-console-producer")
        .args(["--bootstrap-server", &stack.kafka_bootstrap, "--topic", topic])
        .args(["--reader-property", "parse.key=true", "--reader-property", "key.separator=\t"])
        .args(["--producer-property", "max.request.size=2097152"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = cli.stdin.take().unwrap();
    for (key, value) in records {
        assert!(!value.contains(&b'\n') && !key.contains('\t'), "one record per line");
        stdin.write_all(key.as_bytes()).unwrap();
        stdin.write_all(b"\t").unwrap();
        stdin.write_all(value).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    drop(stdin);
    assert!(cli.wait().unwrap().success(), "kafka-console-producer failed");
}

/// Waits until `group` has committed past everything now on `topic`: every record there,
/// poison included, has been processed and the partitions moved on.
pub async fn wait_until_committed_to_end(stack: &Stack, group: &str, topic: &str, deadline: Duration) {
    let ends = end_offsets(stack, topic);
    crate::eventually(&format!("{group} committed to the end of {topic}"), deadline, || {
        let committed = committed_offsets(stack, group, topic);
        let behind: HashMap<i32, (i64, i64)> = ends
            .iter()
            .filter(|(p, end)| **end > 0 && committed.get(p).copied().unwrap_or(0) < **end)
            .map(|(p, end)| (*p, (committed.get(p).copied().unwrap_or(0), *end)))
            .collect();
        async move {
            if behind.is_empty() { Ok(Some(())) } else { Err(format!("behind (committed, end): {behind:?}")) }
        }
    })
    .await
    .unwrap();
}

/// The dead letters for `key` written since `from`, once there are `expected` of them, with
/// their headers.
pub async fn dead_letters_for(
    stack: &Stack,
    from: &HashMap<i32, i64>,
    key: &str,
    expected: usize,
    deadline: Duration,
) -> Vec<(DeadLetter, HashMap<String, String>)> {
    let records = read_from_within(stack, topics::DLQ, from, deadline, |records| {
        records.iter().filter(|r| r.key == key).count() >= expected
    })
    .await;
    let mine: Vec<&Published> = records.iter().filter(|r| r.key == key).collect();
    let letters: Vec<DeadLetter> = decode_all(stack, mine.iter().copied()).await;
    letters.into_iter().zip(mine.iter().map(|r| r.headers.iter().cloned().collect())).collect()
}

/// Checks one dead letter of a huge original: bounded, truncated, named by size and SHA-256,
/// with an error that does not copy the value, and its context in the headers.
pub fn assert_bounded_letter(
    letter: &DeadLetter,
    letter_headers: &HashMap<String, String>,
    original: &[u8],
    error_kind: &str,
    source_topic: &str,
) {
    assert_eq!(letter.error_kind, error_kind, "{letter:?}");
    assert_eq!(letter.source_topic.as_deref(), Some(source_topic));
    assert!(letter.truncated, "a {} byte original is cut", original.len());
    assert_eq!(letter.original_value_size, Some(original.len() as u64));
    assert_eq!(letter.original_value_sha256, Some(hex::encode(sha2::Sha256::digest(original))));
    let kept = letter.original_value.as_deref().unwrap();
    assert_eq!(kept.len(), MAX_ORIGINAL_VALUE_BYTES.div_ceil(3) * 4, "the prefix is the documented cap");
    assert!(letter.error.len() <= MAX_ERROR_BYTES, "{} bytes of error", letter.error.len());
    assert!(!letter.error.contains("zzzzzzzz") && !letter.error.contains("pppppppp"), "{}", letter.error);
    assert_eq!(letter_headers.get(headers::ERROR_KIND).map(String::as_str), Some(error_kind));
    assert_eq!(letter_headers.get(headers::TOPIC).map(String::as_str), Some(source_topic));
    assert_eq!(
        letter_headers.get(headers::OFFSET).and_then(|o| o.parse().ok()),
        letter.source_offset,
        "{letter_headers:?}"
    );
    assert!(letter_headers.contains_key(headers::STAGE) && letter_headers.contains_key(headers::PARTITION));
}
