//! The receiver's own check of a Standard Webhooks signature, written from the spec as a
//! customer would write it rather than shared with LeadFlow's sender, so that the two can
//! disagree when one of them is wrong.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A signing key, from `whsec_<base64>` or the bare base64. Never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ReceiverSecret(Vec<u8>);

impl ReceiverSecret {
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text.strip_prefix("whsec_").unwrap_or(text);
        match STANDARD.decode(encoded) {
            Ok(key) if !key.is_empty() => Ok(ReceiverSecret(key)),
            _ => Err("a webhook secret is whsec_ followed by standard base64".to_owned()),
        }
    }
}

impl TryFrom<String> for ReceiverSecret {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl fmt::Debug for ReceiverSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReceiverSecret([redacted])")
    }
}

/// The secrets deliveries are checked with: the path's own, else the common one. The body of
/// `PUT /__admin/secrets`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Secrets {
    pub secret: Option<ReceiverSecret>,
    pub per_path: BTreeMap<String, ReceiverSecret>,
}

impl Secrets {
    pub fn for_path(&self, path: &str) -> Option<&ReceiverSecret> {
        self.per_path.get(path).or(self.secret.as_ref())
    }
}

/// Whether a request's signature held, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verification {
    Valid,
    /// No secret is configured for the path.
    NoSecret,
    /// One of the three `webhook-*` headers is absent or empty.
    MissingHeaders,
    /// `webhook-timestamp` is not whole seconds since the epoch.
    BadTimestamp,
    OutsideTolerance,
    /// No `v1` signature in the header matches.
    Mismatch,
}

/// The `webhook-*` headers as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

pub fn verify(
    secret: Option<&ReceiverSecret>,
    headers: SignedHeaders<'_>,
    body: &[u8],
    now_s: i64,
    tolerance_s: u64,
) -> Verification {
    let Some(secret) = secret else { return Verification::NoSecret };
    let (Some(id), Some(timestamp), Some(signature)) =
        (present(headers.id), present(headers.timestamp), present(headers.signature))
    else {
        return Verification::MissingHeaders;
    };
    let Ok(sent) = timestamp.parse::<i64>() else { return Verification::BadTimestamp };
    if now_s.abs_diff(sent) > tolerance_s {
        return Verification::OutsideTolerance;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    // verify_slice compares in constant time.
    let matches = signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|tag| mac.clone().verify_slice(&tag).is_ok());
    if matches { Verification::Valid } else { Verification::Mismatch }
}

fn present(header: Option<&str>) -> Option<&str> {
    header.filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference vector of the Standard Webhooks test suite:
    // standard-webhooks/standard-webhooks, libraries/go/webhook_test.go (TestWebhookSign).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn check(secret: &str, signature: &str, body: &[u8], now_s: i64) -> Verification {
        let secret = ReceiverSecret::parse(secret).unwrap();
        let ts = TIMESTAMP.to_string();
        let headers = SignedHeaders { id: Some(ID), timestamp: Some(&ts), signature: Some(signature) };
        verify(Some(&secret), headers, body, now_s, 300)
    }

    #[test]
    fn the_reference_message_verifies_with_or_without_the_prefix() {
        assert_eq!(check(SECRET, SIGNATURE, BODY, TIMESTAMP), Verification::Valid);
        assert_eq!(check(&SECRET[6..], SIGNATURE, BODY, TIMESTAMP + 300), Verification::Valid);
        let rotated = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SIGNATURE}");
        assert_eq!(check(SECRET, &rotated, BODY, TIMESTAMP), Verification::Valid);
    }

    #[test]
    fn anything_off_is_named() {
        assert_eq!(check(SECRET, SIGNATURE, b"{}", TIMESTAMP), Verification::Mismatch);
        assert_eq!(check(SECRET, "v1a,abc", BODY, TIMESTAMP), Verification::Mismatch);
        assert_eq!(check(SECRET, SIGNATURE, BODY, TIMESTAMP + 301), Verification::OutsideTolerance);
        assert_eq!(check(SECRET, SIGNATURE, BODY, TIMESTAMP - 301), Verification::OutsideTolerance);
        let secret = ReceiverSecret::parse(SECRET).unwrap();
        let partial = SignedHeaders { id: Some(ID), timestamp: None, signature: Some(SIGNATURE) };
        assert_eq!(verify(Some(&secret), partial, BODY, TIMESTAMP, 300), Verification::MissingHeaders);
        let bad_ts = SignedHeaders { timestamp: Some("soon"), ..partial };
        assert_eq!(verify(Some(&secret), bad_ts, BODY, TIMESTAMP, 300), Verification::BadTimestamp);
        assert_eq!(verify(None, bad_ts, BODY, TIMESTAMP, 300), Verification::NoSecret);
        assert!(ReceiverSecret::parse("whsec_***").is_err());
        assert!(!format!("{secret:?}").contains("MfKQ"));
    }
}
