//! The CRM client's delivery policy: how the sink uses HubSpot's contacts batch upsert
//! (`POST {base_url}/crm/v3/objects/contacts/batch/upsert`, whose request and answer shapes are
//! in [`crate::hubspot_wire`]) to settle each contact as one of the
//! [`Destination`](crate::destination::Destination) port's outcomes or errors. Up to
//! `batch_size` (at most 100) contacts a request. Each contact's properties carry
//! `leadflow_version`, so that the CRM keeps the newest version whatever order writes arrive in,
//! and its idempotency key is `{lead_id}:{version}`.
//!
//! Requests go one at a time through a [`WindowLimiter`] (by default HubSpot's burst limit, 190
//! requests per 10 s), and each one is retried until it gets an answer that settles it:
//!
//! - 2xx: every contact of the request is delivered (207, HubSpot's partial success, is treated
//!   as a refusal below, since it means some inputs failed).
//! - 429: the limiter is blocked for the `Retry-After` seconds (10 s when absent or not a
//!   number), then the request goes again. A 429 does not use up the request's attempts: it
//!   says nothing is wrong with the request or the CRM, only that we are early, and it comes
//!   with the time to wait. Counting it would turn a busy quota (shared with whatever else uses
//!   the same HubSpot account) into failed batches. So a CRM that only ever answers 429 keeps
//!   the stage paused, growing lag, rather than failing it.
//! - 5xx, 408, timeouts and network errors: the same body goes again after an exponential
//!   backoff with full jitter, up to `max_attempts` requests, after which [`upsert`] fails with
//!   [`DeliveryError::GaveUp`]. Resending is safe even when the CRM applied the write and only
//!   the answer was lost (the connection dropped after the write): the resent inputs carry the
//!   same idempotency keys and versions, so the CRM recognises them, and a version it already
//!   holds changes nothing.
//! - 401, 403, 404 and 405: the credentials or the URL are wrong, which no contact can fix, so
//!   [`upsert`] fails with [`DeliveryError::Config`] rather than refuse every contact.
//! - Any other 4xx: the CRM refused the content. A request of several contacts is resent one
//!   contact a request, so that one bad contact does not sink the rest; a lone contact so
//!   refused is [`ContactOutcome::Rejected`], with the CRM's reason.
//!
//! While it waits (for the limiter, a `Retry-After` or a backoff), the client holds the
//! [`PauseSignal`], so that the Kafka stage pauses its partitions and the wait shows as lag.
//!
//! [`upsert`]: HttpDestination::upsert

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use leadflow_core::runtime::backoff::Backoff;
use leadflow_core::runtime::duration::millis_or_humantime;
use leadflow_core::runtime::secret::Secret;
use leadflow_core::stage::pause::{PauseGuard, PauseSignal};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::hubspot_wire::{self, BatchUpsertRequest, ErrorBody, MAX_INPUTS, UPSERT_PATH, UpsertInput};
use crate::rate_limit::WindowLimiter;

/// When a 429 has no usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);
/// A refusal's reason is kept to this many characters.
const MAX_ERROR_CHARS: usize = 500;

/// `[crm.http]`, the default project's connection, and each project's own
/// (`[crm.projects.<id>]`, see [`crate::config`]). The defaults are in `config/defaults.toml`.
/// Its `Debug` shows no token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpDestinationConfig {
    /// The CRM's API root, `http` or `https`; the upsert path is appended. Default
    /// `http://127.0.0.1:8092`, the CRM stand-in.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` (a HubSpot private app token); empty sends none.
    /// Default empty.
    pub access_token: Secret,
    /// Contacts per request, 1 to 100. Default 100.
    pub batch_size: usize,
    /// Requests allowed in any sliding window of `window`, at least 1. Default 190 (HubSpot's
    /// burst limit, with a little room).
    pub requests_per_window: u32,
    /// Default 10 s.
    #[serde(alias = "window_ms", deserialize_with = "millis_or_humantime")]
    pub window: Duration,
    /// Time for one request, answer included, before it counts as failed. Default 10 s.
    #[serde(alias = "request_timeout_ms", deserialize_with = "millis_or_humantime")]
    pub request_timeout: Duration,
    /// Requests per batch request, counting 5xx, timeouts and network errors (429s do not
    /// count), at least 1. Default 8.
    pub max_attempts: u32,
    /// The backoff before retry `n` (from 0) is random in
    /// `[0, min(backoff_max, backoff_initial * 2^n))`. Defaults 200 ms and 30 s.
    #[serde(alias = "backoff_initial_ms", deserialize_with = "millis_or_humantime")]
    pub backoff_initial: Duration,
    #[serde(alias = "backoff_max_ms", deserialize_with = "millis_or_humantime")]
    pub backoff_max: Duration,
}

/// One contact to upsert: its properties as the CRM should hold them for this version of the
/// lead. `leadflow_version` is added when the request is built.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactUpsert {
    pub lead_id: String,
    pub version: u64,
    pub properties: Map<String, Value>,
}

impl ContactUpsert {
    /// The same for every resend of this version, so that the CRM can recognise a repeat.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.lead_id, self.version)
    }

    fn input(&self) -> UpsertInput<'_> {
        UpsertInput::versioned(&self.lead_id, self.version, &self.properties, self.idempotency_key())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactOutcome {
    Delivered,
    /// The CRM refused this contact on its own (a 4xx other than 429): `error` is its reason,
    /// naming the field when the CRM did, after the status, e.g.
    /// `400 Bad Request: inputs[0].properties.email is not a valid email address`.
    Rejected {
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A request failed with 5xx, timeouts or network errors `max_attempts` times. Contacts of
    /// earlier requests may have been delivered; delivering them again is harmless.
    #[error("gave up on the CRM: {0}")]
    GaveUp(String),
    /// The settings are unusable, or the CRM refused the credentials or the URL.
    #[error("CRM client configuration: {0}")]
    Config(String),
}

/// The client's metrics; every label is a fixed set.
#[derive(Clone)]
pub struct HttpDestinationMetrics {
    /// `crm_requests_total{outcome}`: ok, rate_limited, server_error, network_error, rejected.
    pub requests: IntCounterVec,
    /// `crm_request_duration_seconds`: one HTTP request, from sending to the end of the answer.
    pub request_duration: Histogram,
    /// `crm_retries_total{reason}`: rate_limited, server_error, network_error.
    pub retries: IntCounterVec,
    /// `crm_contacts_total{outcome}`: delivered, rejected.
    pub contacts: IntCounterVec,
}

impl HttpDestinationMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = HttpDestinationMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "crm_requests_total",
                    "Batch upsert requests to the CRM, by outcome (ok, rate_limited, server_error, \
                     network_error: timeouts and lost connections included, rejected: any other 4xx).",
                ),
                &["outcome"],
            )?,
            request_duration: Histogram::with_opts(
                HistogramOpts::new("crm_request_duration_seconds", "Time for one request to the CRM.")
                    .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "crm_retries_total",
                    "CRM requests sent again, by reason (rate_limited, server_error, network_error).",
                ),
                &["reason"],
            )?,
            contacts: IntCounterVec::new(
                Opts::new(
                    "crm_contacts_total",
                    "Contacts the CRM settled, by outcome (delivered, rejected); counted again when \
                     delivered again.",
                ),
                &["outcome"],
            )?,
        };
        // Every series from the start, so that a rate over them never begins with a gap.
        for outcome in ["ok", "rate_limited", "server_error", "network_error", "rejected"] {
            metrics.requests.with_label_values(&[outcome]);
        }
        for reason in ["rate_limited", "server_error", "network_error"] {
            metrics.retries.with_label_values(&[reason]);
        }
        for outcome in ["delivered", "rejected"] {
            metrics.contacts.with_label_values(&[outcome]);
        }
        registry.register(Box::new(metrics.requests.clone()))?;
        registry.register(Box::new(metrics.request_duration.clone()))?;
        registry.register(Box::new(metrics.retries.clone()))?;
        registry.register(Box::new(metrics.contacts.clone()))?;
        Ok(metrics)
    }
}

/// Cheap to clone; clones share the limiter and the connection pool.
#[derive(Clone)]
pub struct HttpDestination {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    url: reqwest::Url,
    /// The config key of this connection, for error messages.
    key: String,
    authorization: Option<HeaderValue>,
    batch_size: usize,
    max_attempts: u32,
    backoff: Backoff,
    limiter: Mutex<WindowLimiter>,
    metrics: HttpDestinationMetrics,
}

/// How one HTTP request ended.
enum Answer {
    Accepted,
    RateLimited {
        retry_after: Duration,
    },
    /// Worth the same request again; `reason` is a metric label.
    Retryable {
        reason: &'static str,
        detail: String,
    },
    /// The credentials or the URL are wrong.
    Misconfigured(String),
    /// The CRM refused the content.
    Refused {
        status: StatusCode,
        error: String,
    },
}

/// How a batch request ended once retries are done.
enum Settled {
    Accepted,
    Refused { status: StatusCode, error: String },
}

impl HttpDestination {
    /// The connection of `[crm.http]`.
    pub fn new(
        config: &HttpDestinationConfig,
        metrics: HttpDestinationMetrics,
    ) -> Result<Self, DeliveryError> {
        Self::named(config, "crm.http", metrics)
    }

    /// The connection configured under `key` (`crm.http`, `crm.projects.<id>`), which its
    /// error messages name. Each connection has its own limiter: the budget is per CRM.
    pub fn named(
        config: &HttpDestinationConfig,
        key: &str,
        metrics: HttpDestinationMetrics,
    ) -> Result<Self, DeliveryError> {
        let bad = |message: String| Err(DeliveryError::Config(message));
        let base = match reqwest::Url::parse(&config.base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => url,
            Ok(_) => {
                return bad(format!("{key}.base_url must be an http or https URL, got {}", config.base_url));
            }
            Err(e) => return bad(format!("{key}.base_url is not a URL ({e}): {}", config.base_url)),
        };
        if base.query().is_some() || base.fragment().is_some() {
            return bad(format!("{key}.base_url must have no query or fragment, got {}", config.base_url));
        }
        let url = reqwest::Url::parse(&format!("{}{UPSERT_PATH}", base.as_str().trim_end_matches('/')))
            .map_err(|e| DeliveryError::Config(format!("{key}.base_url cannot take the upsert path: {e}")))?;
        if !(1..=MAX_INPUTS).contains(&config.batch_size) {
            return bad(format!("{key}.batch_size must be 1 to {MAX_INPUTS}, got {}", config.batch_size));
        }
        for (setting, value) in [
            ("requests_per_window", u64::from(config.requests_per_window)),
            ("max_attempts", u64::from(config.max_attempts)),
        ] {
            if value == 0 {
                return bad(format!("{key}.{setting} must be at least 1"));
            }
        }
        for (setting, value) in [("window", config.window), ("request_timeout", config.request_timeout)] {
            if value.is_zero() {
                return bad(format!("{key}.{setting} must be more than 0"));
            }
        }
        if config.backoff_max < config.backoff_initial {
            return bad(format!(
                "{key}.backoff_max must be at least {key}.backoff_initial ({:?}), got {:?}",
                config.backoff_initial, config.backoff_max
            ));
        }
        let authorization = match config.access_token.expose() {
            "" => None,
            token => {
                // The token itself stays out of the message.
                let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    DeliveryError::Config(format!("{key}.access_token holds characters a header cannot"))
                })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| DeliveryError::Config(format!("cannot build the HTTP client: {e}")))?;
        let inner = Inner {
            http,
            url,
            key: key.to_owned(),
            authorization,
            batch_size: config.batch_size,
            max_attempts: config.max_attempts,
            backoff: Backoff { initial: config.backoff_initial, max: config.backoff_max },
            limiter: Mutex::new(WindowLimiter::new(config.requests_per_window, config.window)),
            metrics,
        };
        Ok(HttpDestination { inner: Arc::new(inner) })
    }

    /// Upserts all contacts, chunked into `batch_size` requests sent one after the other, and
    /// returns one outcome per contact, in input order. Waits (holding `pause`) as long as the
    /// CRM asks with 429s; fails when a request runs out of attempts, or the CRM refuses the
    /// credentials or the URL.
    pub async fn upsert(
        &self,
        contacts: &[ContactUpsert],
        pause: &PauseSignal,
    ) -> Result<Vec<ContactOutcome>, DeliveryError> {
        let mut outcomes = Vec::with_capacity(contacts.len());
        for chunk in contacts.chunks(self.inner.batch_size) {
            match self.send(chunk, pause).await? {
                Settled::Accepted => outcomes.extend(chunk.iter().map(|_| self.delivered())),
                Settled::Refused { status, error } if chunk.len() == 1 => {
                    outcomes.push(self.rejected(&chunk[0], status, error));
                }
                Settled::Refused { status, .. } => {
                    tracing::info!(
                        contacts = chunk.len(),
                        status = status.as_u16(),
                        "the CRM refused a batch; sending its contacts one by one"
                    );
                    for contact in chunk {
                        let outcome = match self.send(std::slice::from_ref(contact), pause).await? {
                            Settled::Accepted => self.delivered(),
                            Settled::Refused { status, error } => self.rejected(contact, status, error),
                        };
                        outcomes.push(outcome);
                    }
                }
            }
        }
        Ok(outcomes)
    }

    fn delivered(&self) -> ContactOutcome {
        self.inner.metrics.contacts.with_label_values(&["delivered"]).inc();
        ContactOutcome::Delivered
    }

    fn rejected(&self, contact: &ContactUpsert, status: StatusCode, error: String) -> ContactOutcome {
        tracing::warn!(
            lead_id = %contact.lead_id,
            version = contact.version,
            status = status.as_u16(),
            error = %error,
            "the CRM refused a contact"
        );
        self.inner.metrics.contacts.with_label_values(&["rejected"]).inc();
        ContactOutcome::Rejected { error }
    }

    /// Sends one batch request until it is settled: the same body every time, so the same
    /// idempotency keys.
    async fn send(&self, contacts: &[ContactUpsert], pause: &PauseSignal) -> Result<Settled, DeliveryError> {
        let body =
            BatchUpsertRequest { inputs: contacts.iter().map(ContactUpsert::input).collect() }.to_json();
        let mut failures = 0;
        // Held from the first wait until the request goes out.
        let mut paused: Option<PauseGuard> = None;
        loop {
            self.wait_for_a_slot(pause, &mut paused).await;
            paused = None;
            let started = Instant::now();
            let answer = self.exchange(body.clone()).await;
            self.inner.metrics.request_duration.observe(started.elapsed().as_secs_f64());
            match answer {
                Answer::Accepted => {
                    self.inner.metrics.requests.with_label_values(&["ok"]).inc();
                    return Ok(Settled::Accepted);
                }
                Answer::RateLimited { retry_after } => {
                    self.inner.metrics.requests.with_label_values(&["rate_limited"]).inc();
                    self.inner.metrics.retries.with_label_values(&["rate_limited"]).inc();
                    tracing::info!(
                        retry_after_ms = retry_after.as_millis() as u64,
                        "the CRM is rate limiting; waiting"
                    );
                    self.lock_limiter().block_until(Instant::now() + retry_after);
                }
                Answer::Retryable { reason, detail } => {
                    self.inner.metrics.requests.with_label_values(&[reason]).inc();
                    failures += 1;
                    if failures >= self.inner.max_attempts {
                        return Err(DeliveryError::GaveUp(format!(
                            "{failures} attempts at a request of {} contacts, the last: {detail}",
                            contacts.len()
                        )));
                    }
                    self.inner.metrics.retries.with_label_values(&[reason]).inc();
                    let delay = self.inner.backoff.delay(failures - 1);
                    tracing::warn!(
                        attempt = failures,
                        delay_ms = delay.as_millis() as u64,
                        error = %detail,
                        "a CRM request failed; retrying"
                    );
                    let _ = paused.get_or_insert_with(|| pause.hold());
                    tokio::time::sleep(delay).await;
                }
                Answer::Misconfigured(message) => {
                    self.inner.metrics.requests.with_label_values(&["rejected"]).inc();
                    return Err(DeliveryError::Config(message));
                }
                Answer::Refused { status, error } => {
                    self.inner.metrics.requests.with_label_values(&["rejected"]).inc();
                    return Ok(Settled::Refused { status, error });
                }
            }
        }
    }

    /// How long until a request keeps to the even pace of the request budget.
    pub fn until_paced(&self) -> Duration {
        self.lock_limiter().until_paced(Instant::now())
    }

    /// Waits until the limiter lets a request go (and records it), holding the pause meanwhile.
    async fn wait_for_a_slot(&self, pause: &PauseSignal, paused: &mut Option<PauseGuard>) {
        loop {
            let wait = self.lock_limiter().wait_before_next(Instant::now());
            let Some(wait) = wait else { return };
            let _ = paused.get_or_insert_with(|| pause.hold());
            tokio::time::sleep(wait).await;
        }
    }

    fn lock_limiter(&self) -> std::sync::MutexGuard<'_, WindowLimiter> {
        // The limiter's state is valid after any panic: every method leaves it consistent.
        self.inner.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request(&self, body: reqwest::Body) -> reqwest::RequestBuilder {
        let mut request =
            self.inner.http.post(self.inner.url.clone()).header(CONTENT_TYPE, "application/json").body(body);
        if let Some(authorization) = &self.inner.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        request
    }

    async fn exchange(&self, body: String) -> Answer {
        let response = match self.request(body.into()).send().await {
            Ok(response) => response,
            Err(e) => return network_error(e),
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = retry_after(response.headers());
            // Read to the end, so the connection can be reused.
            let _ = response.bytes().await;
            return Answer::RateLimited { retry_after };
        }
        if status.is_server_error() {
            let _ = response.bytes().await;
            return Answer::Retryable {
                reason: "server_error",
                detail: format!("the CRM answered {status}"),
            };
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            let _ = response.bytes().await;
            return Answer::Retryable {
                reason: "network_error",
                detail: format!("the CRM answered {status}"),
            };
        }
        if status.is_success() && status != StatusCode::MULTI_STATUS {
            // The write is done whatever the body says; losing the rest of it changes nothing.
            let _ = response.bytes().await;
            return Answer::Accepted;
        }
        let body = match response.bytes().await {
            Ok(body) => body,
            // A refusal we could not read to the end: not known to be about the content.
            Err(e) => return network_error(e),
        };
        let reason = refusal_reason(status, &body);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Answer::Misconfigured(format!(
                "the CRM refused the credentials ({}.access_token): {reason}",
                self.inner.key
            )),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Answer::Misconfigured(format!(
                "the CRM has no upsert endpoint at {} ({}.base_url): {reason}",
                self.inner.url, self.inner.key
            )),
            _ => Answer::Refused { status, error: reason },
        }
    }
}

fn network_error(e: reqwest::Error) -> Answer {
    let what = if e.is_timeout() { "timed out" } else { "failed" };
    // Without the URL: this text goes into logs and errors, and a URL can carry credentials.
    let e = e.without_url();
    // The source chain says what actually happened (e.g. the connection closed mid-answer).
    let mut detail = format!("the request {what}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        detail.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    Answer::Retryable { reason: "network_error", detail }
}

/// `Retry-After`, at least 1 s (a 0 would have us hammer the CRM while it keeps refusing);
/// [`DEFAULT_RETRY_AFTER`] when there is none in seconds.
fn retry_after(headers: &HeaderMap) -> Duration {
    hubspot_wire::retry_after_seconds(headers).map_or(DEFAULT_RETRY_AFTER, |s| Duration::from_secs(s.max(1)))
}

/// The status, then what the CRM said ([`ErrorBody::reason`]); just the status when the body
/// says nothing.
fn refusal_reason(status: StatusCode, body: &[u8]) -> String {
    let said = ErrorBody::parse(body).map(ErrorBody::reason).unwrap_or_default();
    let reason = if said.is_empty() { status.to_string() } else { format!("{status}: {said}") };
    match reason.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason,
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::RETRY_AFTER;
    use serde_json::json;

    use super::*;

    fn config(base_url: &str) -> HttpDestinationConfig {
        HttpDestinationConfig {
            base_url: base_url.into(),
            access_token: Secret::default(),
            batch_size: 100,
            requests_per_window: 190,
            window: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_attempts: 8,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
        }
    }

    fn destination(config: &HttpDestinationConfig) -> Result<HttpDestination, DeliveryError> {
        HttpDestination::new(config, HttpDestinationMetrics::register(&Registry::new()).unwrap())
    }

    fn config_error(config: HttpDestinationConfig) -> String {
        match destination(&config) {
            Err(DeliveryError::Config(message)) => message,
            Err(e) => panic!("not a config error: {e}"),
            Ok(_) => panic!("accepted {config:?}"),
        }
    }

    #[test]
    fn bad_settings_are_refused_by_key() {
        let ok = config("http://127.0.0.1:8092");
        assert_eq!(
            config_error(HttpDestinationConfig { batch_size: 0, ..ok.clone() }),
            "crm.http.batch_size must be 1 to 100, got 0"
        );
        assert!(config_error(HttpDestinationConfig { batch_size: 101, ..ok.clone() }).contains("batch_size"));
        for url in ["127.0.0.1:8092", "not a url", "ftp://crm.example.com", "http://h/?q=1"] {
            assert!(config_error(config(url)).starts_with("crm.http.base_url "), "{url}");
        }
        assert_eq!(
            config_error(HttpDestinationConfig { requests_per_window: 0, ..ok.clone() }),
            "crm.http.requests_per_window must be at least 1"
        );
        assert!(
            config_error(HttpDestinationConfig { max_attempts: 0, ..ok.clone() }).contains("max_attempts")
        );
        assert_eq!(
            config_error(HttpDestinationConfig { window: Duration::ZERO, ..ok.clone() }),
            "crm.http.window must be more than 0"
        );
        assert!(
            config_error(HttpDestinationConfig { backoff_max: Duration::from_millis(10), ..ok.clone() })
                .contains("backoff_max")
        );
        let message = config_error(HttpDestinationConfig { access_token: "se\ncret".into(), ..ok.clone() });
        assert!(message.contains("access_token") && !message.contains("cret"), "{message}");
        assert!(destination(&ok).is_ok());
    }

    #[test]
    fn the_config_refuses_unknown_keys_and_its_debug_hides_the_token() {
        let mut json = serde_json::json!({
            "base_url": "http://crm", "access_token": "s3cret-token", "batch_size": 10,
            "requests_per_window": 5, "window_ms": 1000, "request_timeout_ms": 100, "max_attempts": 2,
            "backoff_initial_ms": 1, "backoff_max_ms": 2,
        });
        let parsed: HttpDestinationConfig = serde_json::from_value(json.clone()).unwrap();
        assert_eq!((parsed.batch_size, parsed.access_token.expose()), (10, "s3cret-token"));
        assert_eq!((parsed.window, parsed.backoff_max), (Duration::from_secs(1), Duration::from_millis(2)));
        assert!(!format!("{parsed:?}").contains("s3cret"));
        let new_names = serde_json::json!({
            "base_url": "http://crm", "access_token": "", "batch_size": 10, "requests_per_window": 5,
            "window": "1s", "request_timeout": "100ms", "max_attempts": 2, "backoff_initial": "1ms",
            "backoff_max": "2ms",
        });
        let parsed: HttpDestinationConfig = serde_json::from_value(new_names).unwrap();
        assert_eq!(
            (parsed.window, parsed.request_timeout),
            (Duration::from_secs(1), Duration::from_millis(100))
        );
        json["batch"] = 1.into();
        assert!(serde_json::from_value::<HttpDestinationConfig>(json).is_err());
    }

    #[tokio::test]
    async fn a_network_error_names_neither_the_url_nor_its_credentials() {
        // A port nothing listens on: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = HttpDestinationConfig {
            access_token: "pat-s3cret".into(),
            max_attempts: 1,
            ..config(&format!("http://crm-user:url-s3cret@127.0.0.1:{port}"))
        };
        let contacts = [ContactUpsert { lead_id: "L1".into(), version: 1, properties: Map::new() }];
        let error =
            destination(&config).unwrap().upsert(&contacts, &PauseSignal::default()).await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, DeliveryError::GaveUp(_)), "{text}");
        assert!(text.contains("the request failed: error sending request"), "{text}");
        assert!(!text.contains("s3cret") && !text.contains("127.0.0.1"), "{text}");
    }

    #[test]
    fn the_request_goes_to_the_upsert_path_with_the_token() {
        let with_token = HttpDestinationConfig {
            access_token: "pat-1".into(),
            ..config("https://api.example.com/crm-proxy/")
        };
        let destination = destination(&with_token).unwrap();
        let request = destination.request("{}".into()).build().unwrap();
        assert_eq!(request.url().as_str(), format!("https://api.example.com/crm-proxy{UPSERT_PATH}"));
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer pat-1");
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
        let without = self::destination(&config("http://127.0.0.1:1")).unwrap();
        assert!(without.request("{}".into()).build().unwrap().headers().get(AUTHORIZATION).is_none());
    }

    #[test]
    fn a_contacts_input_is_keyed_by_its_version() {
        let contact = ContactUpsert {
            lead_id: "L1".into(),
            version: 7,
            properties: Map::from_iter([("email".to_owned(), Value::from("a@b.co"))]),
        };
        let input = contact.input();
        assert_eq!((input.id, input.idempotency_key.as_str()), ("L1", "L1:7"));
        assert_eq!(input.properties[hubspot_wire::VERSION_PROPERTY], 7);
    }

    #[test]
    fn retry_after_is_whole_seconds_at_least_one_else_ten() {
        let headers =
            |value: &str| HeaderMap::from_iter([(RETRY_AFTER, HeaderValue::from_str(value).unwrap())]);
        assert_eq!(retry_after(&headers("3")), Duration::from_secs(3));
        assert_eq!(retry_after(&headers("0")), Duration::from_secs(1));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(&HeaderMap::new()), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn a_refusal_reason_is_the_status_then_what_the_crm_said_cut_short() {
        let bad = StatusCode::BAD_REQUEST;
        let body = json!({"status": "error", "message": "1 error", "category": "VALIDATION_ERROR",
                          "errors": [{"message": "inputs[0].properties.email is not a valid email address",
                                      "in": "inputs[0].properties.email"}]});
        assert_eq!(
            refusal_reason(bad, body.to_string().as_bytes()),
            "400 Bad Request: inputs[0].properties.email is not a valid email address"
        );
        let body = json!({"status": "error", "message": "Contact already exists", "category": "CONFLICT"});
        assert_eq!(
            refusal_reason(StatusCode::CONFLICT, body.to_string().as_bytes()),
            "409 Conflict: Contact already exists"
        );
        assert_eq!(refusal_reason(bad, b"<html>oops</html>"), "400 Bad Request");
        assert_eq!(refusal_reason(bad, b"{}"), "400 Bad Request");
        let long = json!({"message": "x".repeat(2_000)});
        assert_eq!(refusal_reason(bad, long.to_string().as_bytes()).chars().count(), MAX_ERROR_CHARS + 1);
    }
}
