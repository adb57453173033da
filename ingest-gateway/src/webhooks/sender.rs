//! The one delivery the gateway sends itself: `POST /api/webhooks/{id}/test`, signed as every
//! delivery is (Standard Webhooks headers), to the addresses just checked, never following a
//! redirect and never through a proxy, within the configured timeout. Every other delivery is
//! the automator's.

use std::time::{Duration, Instant};

use leadflow_core::model::webhook::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret, sign};

use crate::webhooks::url_check::CheckedUrl;

/// What became of one attempt, as the delivery log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// `succeeded`, `failed` (an answer other than 2xx), `timeout`, `unreachable`, `refused`.
    pub outcome: &'static str,
    pub response_code: Option<u16>,
    pub latency_ms: u64,
    /// What went wrong, bounded; never the secret or the body.
    pub error: Option<String>,
}

/// The longest error text an attempt keeps.
const MAX_ERROR_CHARS: usize = 200;

pub fn bounded(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

impl Attempt {
    /// Refused before any connection: the URL's addresses are not allowed (any more).
    pub fn refused(why: &str) -> Attempt {
        Attempt { outcome: "refused", response_code: None, latency_ms: 0, error: Some(bounded(why)) }
    }
}

/// Sends `body` once to `target`, signed with `secret` under `message_id` at `timestamp_secs`.
pub async fn send(
    target: &CheckedUrl,
    secret: &WebhookSecret,
    message_id: &str,
    timestamp_secs: i64,
    body: String,
    timeout: Duration,
) -> Attempt {
    let mut client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().timeout(timeout);
    // Connect only to the addresses that were checked: a resolver answering differently now
    // cannot turn the connection elsewhere.
    if let Some(domain) = &target.domain {
        client = client.resolve_to_addrs(domain, &target.addrs);
    }
    let client = match client.build() {
        Ok(client) => client,
        Err(e) => {
            return Attempt {
                outcome: "unreachable",
                response_code: None,
                latency_ms: 0,
                error: Some(bounded(&e.to_string())),
            };
        }
    };
    let signature = sign(secret, message_id, timestamp_secs, body.as_bytes());
    let started = Instant::now();
    let answer = client
        .post(target.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_ID, message_id)
        .header(HEADER_TIMESTAMP, timestamp_secs.to_string())
        .header(HEADER_SIGNATURE, signature)
        .body(body)
        .send()
        .await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match answer {
        Ok(response) => {
            let code = response.status().as_u16();
            let succeeded = response.status().is_success();
            Attempt {
                outcome: if succeeded { "succeeded" } else { "failed" },
                response_code: Some(code),
                latency_ms,
                error: (!succeeded).then(|| format!("answered {code}")),
            }
        }
        Err(e) => Attempt {
            outcome: if e.is_timeout() { "timeout" } else { "unreachable" },
            response_code: None,
            latency_ms,
            error: Some(bounded(&error_chain(&e))),
        },
    }
}

/// The error and its sources, so "error sending request" says why.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
