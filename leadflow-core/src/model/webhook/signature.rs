//! The Standard Webhooks signature: HMAC-SHA256, keyed by the endpoint's secret, over
//! `{webhook-id}.{webhook-timestamp}.{body}`, sent as `v1,<base64>` in `webhook-signature`.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How a secret is written for people and configs: this prefix, then the key in standard base64.
pub const SECRET_PREFIX: &str = "whsec_";
/// The spec's bounds on a symmetric key: at least 192 bits, at most 512.
pub const MIN_SECRET_BYTES: usize = 24;
pub const MAX_SECRET_BYTES: usize = 64;
/// What [`WebhookSecret::generate`] draws.
pub const GENERATED_SECRET_BYTES: usize = 32;
/// How far a `webhook-timestamp` may be from the receiver's clock, either way, in the spec's
/// reference libraries.
pub const DEFAULT_TOLERANCE: Duration = Duration::minutes(5);

/// The version tag of a symmetric signature; others in the header (`v1a`, ed25519) are skipped.
const VERSION: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// An endpoint's signing key. `Debug` and `Display` never show it; [`WebhookSecret::expose`]
/// gives the `whsec_…` text, to show once when the subscription is made and to store.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with {SECRET_PREFIX}")]
    MissingPrefix,
    #[error("a webhook secret is {SECRET_PREFIX} and standard base64")]
    NotBase64,
    #[error("a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, this one {0}")]
    Length(usize),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

impl WebhookSecret {
    /// A new key of [`GENERATED_SECRET_BYTES`] from the operating system's random source.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = vec![0u8; GENERATED_SECRET_BYTES];
        getrandom::fill(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(WebhookSecret { key })
    }

    /// The key as given, if its length is within the spec's bounds.
    pub fn from_bytes(key: &[u8]) -> Result<Self, SecretError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(WebhookSecret { key: key.to_vec() })
    }

    /// Reads `whsec_<base64>`. No error quotes the text.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        Self::from_bytes(&key)
    }

    /// The `whsec_…` text: for the one answer that shows it and for storage, never for a log.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        // Any key length is valid for HMAC; the bounds above are the spec's, not the algorithm's.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, SecretError> {
        Self::parse(text)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SECRET_PREFIX}[redacted]")
    }
}

/// A `webhook-id` for the message with this key (an execution's unique key, say): the same key
/// always gives the same id, so a message sent again after a crash is one the receiver can
/// dedupe. `msg_` and 32 hex digits of the key's SHA-256, so it never holds the `.` that the
/// signed content uses as its separator.
pub fn message_id(key: &str) -> String {
    format!("msg_{}", &hex::encode(Sha256::digest(key.as_bytes()))[..32])
}

/// The `webhook-signature` value for one attempt: `v1,<base64 of the HMAC>`. Each attempt of a
/// message is signed with its own timestamp (seconds since the epoch); the id stays the same.
/// `id` must not contain `.` ([`message_id`] never does).
pub fn sign(secret: &WebhookSecret, id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    debug_assert!(!id.contains('.'), "a webhook id with a '.' makes the signed content ambiguous");
    let tag = secret.mac(id, &timestamp_secs.to_string(), body).finalize().into_bytes();
    format!("{VERSION},{}", STANDARD.encode(tag))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the webhook-id is empty")]
    EmptyId,
    #[error("the webhook-timestamp is not whole seconds since the epoch")]
    BadTimestamp,
    #[error("the webhook-timestamp is {skew_secs} s from now, beyond the tolerance")]
    OutsideTolerance { skew_secs: i64 },
    #[error("the webhook-signature holds no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches")]
    Mismatch,
}

/// Checks a received message: the timestamp within `tolerance` of `now` (either way, the bound
/// included), then any of the space-separated `v1,<base64>` entries of `signatures` matching the
/// HMAC of `id`, `timestamp` (the header's text, as signed) and `body` (the raw bytes, before any
/// JSON parsing). Entries of other versions and undecodable ones are skipped; the comparison
/// takes the same time however much of a guess is right.
pub fn verify(
    secret: &WebhookSecret,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    if id.is_empty() {
        return Err(VerifyError::EmptyId);
    }
    let sent: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    let skew_secs = now.unix_timestamp().saturating_sub(sent);
    if skew_secs.unsigned_abs() > tolerance.whole_seconds().unsigned_abs() {
        return Err(VerifyError::OutsideTolerance { skew_secs });
    }
    let candidates: Vec<Vec<u8>> = signatures
        .split_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let expected = secret.mac(id, timestamp, body).finalize().into_bytes();
    // Every candidate is compared, so the time taken does not say which one matched.
    let matched = candidates.iter().fold(0u8, |any, c| any | c.as_slice().ct_eq(&expected).unwrap_u8());
    if matched == 1 { Ok(()) } else { Err(VerifyError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference vector of the Standard Webhooks test suite:
    // standard-webhooks/standard-webhooks, libraries/go/webhook_test.go (TestWebhookSign).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    // A well-formed v1 signature of something else, from the same suite.
    const OTHER_SIGNATURE: &str = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

    fn spec_secret() -> WebhookSecret {
        WebhookSecret::parse(SPEC_SECRET).unwrap()
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn verify_spec(signatures: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
        let ts = SPEC_TIMESTAMP.to_string();
        verify(&spec_secret(), SPEC_ID, &ts, signatures, body, at(now), DEFAULT_TOLERANCE)
    }

    #[test]
    fn signing_the_reference_message_gives_the_reference_signature() {
        assert_eq!(sign(&spec_secret(), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY), SPEC_SIGNATURE);
    }

    #[test]
    fn the_reference_signature_verifies_alone_or_among_others() {
        assert_eq!(verify_spec(SPEC_SIGNATURE, SPEC_BODY, SPEC_TIMESTAMP), Ok(()));
        let several =
            format!("{OTHER_SIGNATURE} v1a,abcd v2,{} {SPEC_SIGNATURE} v1,@@@", &SPEC_SIGNATURE[3..]);
        assert_eq!(verify_spec(&several, SPEC_BODY, SPEC_TIMESTAMP + 10), Ok(()));
    }

    #[test]
    fn a_changed_body_id_or_timestamp_or_another_secret_does_not_verify() {
        let now = SPEC_TIMESTAMP;
        assert_eq!(verify_spec(SPEC_SIGNATURE, br#"{"test": 2432232315}"#, now), Err(VerifyError::Mismatch));
        assert_eq!(verify_spec(OTHER_SIGNATURE, SPEC_BODY, now), Err(VerifyError::Mismatch));
        let ts = SPEC_TIMESTAMP.to_string();
        let other_id =
            verify(&spec_secret(), "msg_other", &ts, SPEC_SIGNATURE, SPEC_BODY, at(now), DEFAULT_TOLERANCE);
        assert_eq!(other_id, Err(VerifyError::Mismatch));
        let later = (SPEC_TIMESTAMP + 1).to_string();
        let other_ts =
            verify(&spec_secret(), SPEC_ID, &later, SPEC_SIGNATURE, SPEC_BODY, at(now), DEFAULT_TOLERANCE);
        assert_eq!(other_ts, Err(VerifyError::Mismatch));
        let other_secret = WebhookSecret::generate().unwrap();
        let signed = sign(&other_secret, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
        assert_eq!(verify_spec(&signed, SPEC_BODY, now), Err(VerifyError::Mismatch));
    }

    #[test]
    fn timestamps_beyond_the_tolerance_either_way_are_refused_and_the_bound_is_inside() {
        let five_min = 300;
        assert_eq!(verify_spec(SPEC_SIGNATURE, SPEC_BODY, SPEC_TIMESTAMP + five_min), Ok(()));
        assert_eq!(verify_spec(SPEC_SIGNATURE, SPEC_BODY, SPEC_TIMESTAMP - five_min), Ok(()));
        assert_eq!(
            verify_spec(SPEC_SIGNATURE, SPEC_BODY, SPEC_TIMESTAMP + five_min + 1),
            Err(VerifyError::OutsideTolerance { skew_secs: 301 })
        );
        assert_eq!(
            verify_spec(SPEC_SIGNATURE, SPEC_BODY, SPEC_TIMESTAMP - five_min - 1),
            Err(VerifyError::OutsideTolerance { skew_secs: -301 })
        );
    }

    #[test]
    fn malformed_headers_are_named() {
        let secret = spec_secret();
        let now = at(SPEC_TIMESTAMP);
        let check = |id, ts, sig| verify(&secret, id, ts, sig, SPEC_BODY, now, DEFAULT_TOLERANCE);
        assert_eq!(check("", "1614265330", SPEC_SIGNATURE), Err(VerifyError::EmptyId));
        assert_eq!(check(SPEC_ID, "1614265330.5", SPEC_SIGNATURE), Err(VerifyError::BadTimestamp));
        assert_eq!(check(SPEC_ID, "", SPEC_SIGNATURE), Err(VerifyError::BadTimestamp));
        for signatures in ["", "  ", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1a,abc", "v1,***"] {
            assert_eq!(
                check(SPEC_ID, "1614265330", signatures),
                Err(VerifyError::NoSignature),
                "{signatures:?}"
            );
        }
    }

    #[test]
    fn secrets_parse_round_trip_and_never_print() {
        let secret = spec_secret();
        assert_eq!(secret.expose(), SPEC_SECRET);
        assert_eq!(format!("{secret} {secret:?}"), "whsec_[redacted] whsec_[redacted]");
        let generated = WebhookSecret::generate().unwrap();
        let text = generated.expose();
        assert!(text.starts_with(SECRET_PREFIX) && text.len() == SECRET_PREFIX.len() + 44, "{text}");
        assert_eq!(WebhookSecret::parse(&text).unwrap().expose(), text);
        assert_ne!(WebhookSecret::generate().unwrap().expose(), text);
        assert!(!format!("{generated:?}").contains(&text[SECRET_PREFIX.len()..]));
    }

    #[test]
    fn bad_secrets_are_refused_without_quoting_them() {
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert_eq!(WebhookSecret::parse("whsec_not*base64").unwrap_err(), SecretError::NotBase64);
        let short = format!("{SECRET_PREFIX}{}", STANDARD.encode([7u8; 23]));
        assert_eq!(WebhookSecret::parse(&short).unwrap_err(), SecretError::Length(23));
        let long = format!("{SECRET_PREFIX}{}", STANDARD.encode([7u8; 65]));
        assert_eq!(WebhookSecret::parse(&long).unwrap_err(), SecretError::Length(65));
        assert!(WebhookSecret::from_bytes(&[7u8; 64]).is_ok());
        assert!(!SecretError::NotBase64.to_string().contains("not*base64"));
    }

    #[test]
    fn message_ids_are_stable_per_key_distinct_across_keys_and_dot_free() {
        let id = message_id("project-a/rule-1/lead-9/2026-05-01");
        assert_eq!(id, message_id("project-a/rule-1/lead-9/2026-05-01"));
        assert_ne!(id, message_id("project-a/rule-1/lead-9/2026-05-02"));
        assert!(id.starts_with("msg_") && id.len() == 36 && !id.contains('.'), "{id}");
    }
}
