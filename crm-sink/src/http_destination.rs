//! The CRM client's delivery policy: how the sink uses HubSpot's contacts batch upsert and batch
//! read (paths configurable; request and answer shapes in [`crate::hubspot_wire`]) to settle
//! each contact as one of the [`Destination`](crate::destination::Destination) port's outcomes
//! or errors. Up to `batch_size` (at most 100) contacts a request. Each contact's properties carry
//! `leadflow_version`, and its `objectWriteTraceId` is `{lead_id}:{version}`.
//!
//! HubSpot is last writer wins: it keeps whatever was written last, with no version guard and no
//! idempotency key. So a resend is safe only while no newer version of the lead has been written
//! (the sink sends one lead's versions strictly in order, one request at a time), and a request
//! whose outcome is unknown may still land later and overwrite a newer version. The client
//! never counts such a write as delivered on faith: it reads the contacts back first, and flags
//! the delivery as `unsure` so that the sink checks the contact again once a late write can no
//! longer land (see `crm.http.late_apply_window` and [`crate::reconcile`]).
//!
//! Requests go one at a time through a [`WindowLimiter`] (by default HubSpot's burst limit, 190
//! requests per 10 s), and each one is retried until it gets an answer that settles it:
//!
//! - 200: every contact of the request is delivered.
//! - 207 (partial success): the inputs its `errors` name are refused with their reason (a 409
//!   email conflict names the existing contact's id); the others are delivered. Inputs whose
//!   fate the answer does not say are sent again one by one.
//! - 429: the ten-second limit blocks the limiter for the `Retry-After` seconds, or, as HubSpot
//!   sends none, for the window's length its `X-HubSpot-RateLimit-Interval-Milliseconds` gives
//!   (10 s when neither is there), then the request goes again. The daily limit (`policyName:
//!   DAILY`) blocks it for `daily_limit_probe` (the reset is at midnight in the account's time
//!   zone, which the API does not tell), sets `crm_daily_limit_reached`, and tries once per probe
//!   instead of spinning. A 429 does not use up the request's attempts: it says nothing is wrong
//!   with the request or the CRM, only that we are early. So a CRM that only ever answers 429
//!   keeps the stage paused, growing lag, rather than failing it.
//! - Connection failures before anything was sent: the same body again after an exponential
//!   backoff with full jitter, up to `max_attempts` requests.
//! - Timeouts, dropped connections and 5xx (the outcome is unknown): after the backoff, the
//!   contacts are read back; those the CRM already holds at their version (or newer) are
//!   delivered, and the request goes again with the rest. After `max_attempts`, [`upsert`] fails
//!   with [`DeliveryError::GaveUp`] and the batch is redone later.
//! - 401, 403 (missing scopes included), 404, 405, and a 400 `PROPERTY_DOESNT_EXIST`: the
//!   credentials, the URL or the account's properties are wrong, which no contact can fix, so
//!   [`upsert`] fails with [`DeliveryError::Config`] rather than refuse every contact. The
//!   connection then reports the problem (readiness, `crm_configuration_error`) and waits
//!   [`CONFIG_ERROR_PAUSE`] before its next request.
//! - Any other 4xx: the CRM refused the content. A request of several contacts is resent one
//!   contact a request, so that one bad contact does not sink the rest; a lone contact so
//!   refused is [`ContactOutcome::Rejected`], with the CRM's reason.
//!
//! While it waits (for the limiter, a `Retry-After` or a backoff), the client holds the
//! [`PauseSignal`], so that the Kafka stage pauses its partitions and the wait shows as lag.
//!
//! [`upsert`]: HttpDestination::upsert

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use leadflow_core::runtime::backoff::Backoff;
use leadflow_core::runtime::duration::millis_or_humantime;
use leadflow_core::runtime::secret::Secret;
use leadflow_core::stage::pause::{PauseGuard, PauseSignal};
use leadflow_core::store::shared_budget::{Grant, SharedBudget};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::hubspot_wire::{
    self, BatchAnswer, BatchReadRequest, BatchUpsertRequest, ContactRecord, ErrorBody, MAX_INPUTS, READ_PATH,
    UPSERT_PATH, UpsertInput,
};
use crate::rate_limit::WindowLimiter;

/// When a 429 has no usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);
/// A refusal's reason is kept to this many characters.
const MAX_ERROR_CHARS: usize = 500;
/// How long a connection waits after the CRM refused its configuration (credentials, URL,
/// properties) before it asks again: long enough not to spend the budget on a refusal, short
/// enough that a fix is noticed soon.
pub const CONFIG_ERROR_PAUSE: Duration = Duration::from_secs(30);

fn default_upsert_path() -> String {
    UPSERT_PATH.to_owned()
}

fn default_read_path() -> String {
    READ_PATH.to_owned()
}

/// `[crm.http]`, the default project's connection, and each project's own
/// (`[crm.projects.<id>]`, see [`crate::config`]). The defaults are in `config/defaults.toml`.
/// Its `Debug` shows no token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpDestinationConfig {
    /// The CRM's API root, `http` or `https`; the paths are appended. Default
    /// `http://127.0.0.1:8092`, the CRM stand-in.
    pub base_url: String,
    /// The batch upsert's path under `base_url`. Default HubSpot's v3 path; HubSpot's
    /// date-versioned one (`/crm/objects/2026-03/contacts/batch/upsert`) works the same.
    #[serde(default = "default_upsert_path")]
    pub upsert_path: String,
    /// The batch read's path under `base_url`. Default HubSpot's v3 path.
    #[serde(default = "default_read_path")]
    pub read_path: String,
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
    /// How long after it was sent a request whose answer never came may still be applied by
    /// the CRM. A contact written by such a request (or by an instance that took over a
    /// partition this recently) is read back once this has passed. Default 60 s.
    #[serde(deserialize_with = "millis_or_humantime")]
    pub late_apply_window: Duration,
    /// While the CRM's daily limit is spent, one request every this long, to notice its reset.
    /// Default 15 min.
    #[serde(deserialize_with = "millis_or_humantime")]
    pub daily_limit_probe: Duration,
    /// The name of the request budget in MongoDB that every replica of the sink shares (the
    /// `budgets` collection): `requests_per_window` per `window` per deployment, however many
    /// replicas run. Connections to one CRM account give it the same name. Empty (the default):
    /// the connection's config key (`crm.http`, `crm.projects.<id>`).
    #[serde(default)]
    pub budget_name: String,
}

/// Sub-windows per window of the shared budget: at HubSpot's 190 per 10 s, 17 a second, so 170
/// per 10 s steady (see `leadflow_core::store::shared_budget`).
const BUDGET_SUB_WINDOWS: u32 = 10;
/// How long to wait before asking the shared budget again when MongoDB did not answer: a request
/// the budget cannot count is not sent.
const BUDGET_UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);

/// One contact to upsert: its properties as the CRM should hold them for this version of the
/// lead. `leadflow_version` is added when the request is built.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactUpsert {
    pub lead_id: String,
    pub version: u64,
    pub properties: Map<String, Value>,
}

impl ContactUpsert {
    fn input(&self) -> UpsertInput<'_> {
        UpsertInput::versioned(&self.lead_id, self.version, &self.properties)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactOutcome {
    /// The CRM holds this version. `unsure`: a request carrying the contact got no answer, so it
    /// may still be applied late, over a newer version: read the contact back once the late-apply
    /// window has passed.
    Delivered { unsure: bool },
    /// The CRM refused this contact on its own (a 4xx other than 429): `error` is its reason,
    /// naming the field when the CRM did, after the status, e.g.
    /// `409 Conflict: Contact already exists. Existing ID: 1001`.
    Rejected { error: String },
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A request failed with 5xx, timeouts or network errors `max_attempts` times. Contacts of
    /// earlier requests may have been delivered; the batch is redone.
    #[error("gave up on the CRM: {0}")]
    GaveUp(String),
    /// The settings are unusable, or the CRM refused the credentials, the URL or the properties.
    #[error("CRM client configuration: {0}")]
    Config(String),
}

/// The client's metrics; every label is a fixed set.
#[derive(Clone)]
pub struct HttpDestinationMetrics {
    /// `crm_requests_total{outcome}`: ok, partial, rate_limited, daily_limited, server_error,
    /// network_error, unknown_outcome, rejected, read.
    pub requests: IntCounterVec,
    /// `crm_request_duration_seconds`: one HTTP request, from sending to the end of the answer.
    pub request_duration: Histogram,
    /// `crm_retries_total{reason}`: rate_limited, server_error, network_error.
    pub retries: IntCounterVec,
    /// `crm_contacts_total{outcome}`: delivered, rejected, confirmed_by_read.
    pub contacts: IntCounterVec,
    /// `crm_daily_limit_reached`: 1 while a connection waits out the CRM's daily limit.
    pub daily_limit_reached: IntGauge,
    /// `crm_configuration_error`: 1 while a connection's last answer said its configuration is
    /// wrong (credentials, scopes, URL, missing properties).
    pub configuration_error: IntGauge,
    /// `crm_budget_waits_total{reason}`: waits for the budget the replicas share (exhausted: the
    /// deployment spent its window; unavailable: MongoDB did not answer).
    pub budget_waits: IntCounterVec,
}

const REQUEST_OUTCOMES: [&str; 9] = [
    "ok",
    "partial",
    "rate_limited",
    "daily_limited",
    "server_error",
    "network_error",
    "unknown_outcome",
    "rejected",
    "read",
];

impl HttpDestinationMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = HttpDestinationMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "crm_requests_total",
                    "Requests to the CRM, by outcome (ok, partial: a 207, rate_limited, daily_limited, \
                     server_error, network_error: nothing sent, unknown_outcome: no answer, or a 5xx, \
                     rejected: any other 4xx, read: a batch read answered).",
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
                    "Contacts the CRM settled, by outcome (delivered, rejected, confirmed_by_read: a \
                     write without an answer that a read back found applied); counted again when \
                     delivered again.",
                ),
                &["outcome"],
            )?,
            daily_limit_reached: IntGauge::new(
                "crm_daily_limit_reached",
                "1 while the CRM's daily request limit is spent and deliveries wait for its reset.",
            )?,
            configuration_error: IntGauge::new(
                "crm_configuration_error",
                "1 while the CRM refuses the sink's configuration (credentials, scopes, URL, properties).",
            )?,
            budget_waits: IntCounterVec::new(
                Opts::new(
                    "crm_budget_waits_total",
                    "Waits for the CRM request budget every replica shares, by reason (exhausted: the \
                     deployment spent the window; unavailable: MongoDB did not answer).",
                ),
                &["reason"],
            )?,
        };
        for reason in ["exhausted", "unavailable"] {
            metrics.budget_waits.with_label_values(&[reason]);
        }
        registry.register(Box::new(metrics.budget_waits.clone()))?;
        // Every series from the start, so that a rate over them never begins with a gap.
        for outcome in REQUEST_OUTCOMES {
            metrics.requests.with_label_values(&[outcome]);
        }
        for reason in ["rate_limited", "server_error", "network_error"] {
            metrics.retries.with_label_values(&[reason]);
        }
        for outcome in ["delivered", "rejected", "confirmed_by_read"] {
            metrics.contacts.with_label_values(&[outcome]);
        }
        registry.register(Box::new(metrics.requests.clone()))?;
        registry.register(Box::new(metrics.request_duration.clone()))?;
        registry.register(Box::new(metrics.retries.clone()))?;
        registry.register(Box::new(metrics.contacts.clone()))?;
        registry.register(Box::new(metrics.daily_limit_reached.clone()))?;
        registry.register(Box::new(metrics.configuration_error.clone()))?;
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
    upsert_url: reqwest::Url,
    read_url: reqwest::Url,
    /// The config key of this connection, for error messages.
    key: String,
    authorization: Option<HeaderValue>,
    batch_size: usize,
    max_attempts: u32,
    backoff: Backoff,
    late_apply_window: Duration,
    daily_limit_probe: Duration,
    limiter: Mutex<WindowLimiter>,
    /// `(name, requests_per_window, window)` of the budget shared through MongoDB.
    budget_shape: (String, u32, Duration),
    /// The budget every replica shares, once [`HttpDestination::share_budget`] was called.
    shared: OnceLock<SharedBudget>,
    /// What the CRM last said is wrong with this connection's configuration; `None` once a
    /// request succeeds.
    config_problem: Mutex<Option<String>>,
    metrics: HttpDestinationMetrics,
}

/// How one HTTP request ended.
enum Answer {
    Accepted,
    /// 207: the inputs named failed, with their reasons; `unattributed` errors named no input.
    Partial {
        failed: HashMap<String, String>,
        unattributed: usize,
    },
    RateLimited {
        retry_after: Duration,
        daily: bool,
    },
    /// Nothing reached the CRM (the connection failed): worth the same request again.
    NotSent {
        detail: String,
    },
    /// The CRM may or may not have applied it: no answer, or a 5xx. `reason` is a metric label.
    Unknown {
        reason: &'static str,
        detail: String,
    },
    /// The credentials, the URL or the account's properties are wrong.
    Misconfigured(String),
    /// The CRM refused the content.
    Refused {
        status: StatusCode,
        error: String,
    },
}

/// How each contact of a request ended once retries are done.
#[derive(Debug, Clone, PartialEq)]
enum Settled {
    Delivered {
        unsure: bool,
    },
    Refused {
        status: StatusCode,
        error: String,
    },
    /// Refused with the other contacts of its request, or its fate unsaid: send it alone.
    SendAlone,
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
        let under_base = |setting: &str, path: &str| {
            if !path.starts_with('/') {
                return Err(DeliveryError::Config(format!("{key}.{setting} must start with /, got {path}")));
            }
            reqwest::Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/')))
                .map_err(|e| DeliveryError::Config(format!("{key}.{setting} cannot go under base_url: {e}")))
        };
        let upsert_url = under_base("upsert_path", &config.upsert_path)?;
        let read_url = under_base("read_path", &config.read_path)?;
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
        for (setting, value) in [
            ("window", config.window),
            ("request_timeout", config.request_timeout),
            ("daily_limit_probe", config.daily_limit_probe),
        ] {
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
            upsert_url,
            read_url,
            key: key.to_owned(),
            authorization,
            batch_size: config.batch_size,
            max_attempts: config.max_attempts,
            backoff: Backoff { initial: config.backoff_initial, max: config.backoff_max },
            late_apply_window: config.late_apply_window,
            daily_limit_probe: config.daily_limit_probe,
            limiter: Mutex::new(WindowLimiter::new(config.requests_per_window, config.window)),
            budget_shape: (
                if config.budget_name.is_empty() { key.to_owned() } else { config.budget_name.clone() },
                config.requests_per_window,
                config.window,
            ),
            shared: OnceLock::new(),
            config_problem: Mutex::new(None),
            metrics,
        };
        Ok(HttpDestination { inner: Arc::new(inner) })
    }

    /// Counts this connection's requests in the budget every replica shares, in `collection`
    /// (`SharedBudget::collection_in`), besides its own limiter. Without it the budget is this
    /// process's alone.
    pub fn share_budget(
        &self,
        collection: mongodb::Collection<leadflow_core::store::documents::BudgetDoc>,
    ) -> Result<(), DeliveryError> {
        let (name, limit, window) = &self.inner.budget_shape;
        // Below 11 requests a window there are too few for ten sub-windows: fewer, larger ones.
        let k = BUDGET_SUB_WINDOWS.min(limit.saturating_sub(1).max(1));
        let budget = SharedBudget::rolling(collection, &format!("crm/{name}"), u64::from(*limit), *window, k)
            .map_err(|e| {
                DeliveryError::Config(format!(
                    "{}: requests_per_window {limit} per {window:?} cannot be shared: {e}",
                    self.inner.key
                ))
            })?;
        let _ = self.inner.shared.set(budget);
        Ok(())
    }

    /// The shared budget of this connection, if it has one.
    pub fn shared_budget(&self) -> Option<&SharedBudget> {
        self.inner.shared.get()
    }

    /// How long after an unanswered write the CRM may still apply it.
    pub fn late_apply_window(&self) -> Duration {
        self.inner.late_apply_window
    }

    /// What the CRM last said is wrong with this connection's configuration, if it did since the
    /// last request that succeeded.
    pub fn config_problem(&self) -> Option<String> {
        self.inner.config_problem.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Upserts all contacts, chunked into `batch_size` requests sent one after the other, and
    /// returns one outcome per contact, in input order. Waits (holding `pause`) as long as the
    /// CRM asks with 429s; fails when a request runs out of attempts, or the CRM refuses the
    /// configuration.
    pub async fn upsert(
        &self,
        contacts: &[ContactUpsert],
        pause: &PauseSignal,
    ) -> Result<Vec<ContactOutcome>, DeliveryError> {
        let mut outcomes = Vec::with_capacity(contacts.len());
        for chunk in contacts.chunks(self.inner.batch_size) {
            let settled = self.send(chunk, pause).await?;
            if settled.contains(&Settled::SendAlone) {
                tracing::info!(
                    contacts = settled.iter().filter(|s| **s == Settled::SendAlone).count(),
                    "the CRM refused a batch or left contacts unsettled; sending them one by one"
                );
            }
            for (contact, settled) in chunk.iter().zip(settled) {
                let settled = match settled {
                    Settled::SendAlone => self.send(std::slice::from_ref(contact), pause).await?.remove(0),
                    other => other,
                };
                outcomes.push(match settled {
                    Settled::Delivered { unsure } => self.delivered(unsure),
                    Settled::Refused { status, error } => self.rejected(contact, status, error),
                    // A lone contact is never told to go alone.
                    Settled::SendAlone => unreachable!("a request of one contact settles it"),
                });
            }
        }
        Ok(outcomes)
    }

    fn delivered(&self, unsure: bool) -> ContactOutcome {
        self.inner.metrics.contacts.with_label_values(&["delivered"]).inc();
        ContactOutcome::Delivered { unsure }
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

    /// Sends one batch request until each of its contacts is settled. After an unknown outcome
    /// the contacts are read back, and only those the CRM does not hold yet go again.
    async fn send(
        &self,
        contacts: &[ContactUpsert],
        pause: &PauseSignal,
    ) -> Result<Vec<Settled>, DeliveryError> {
        let mut settled: Vec<Option<Settled>> = vec![None; contacts.len()];
        let mut pending: Vec<usize> = (0..contacts.len()).collect();
        let mut unsure = false;
        let mut failures = 0;
        // Held from the first wait until the request goes out.
        let mut paused: Option<PauseGuard> = None;
        while !pending.is_empty() {
            let body = BatchUpsertRequest { inputs: pending.iter().map(|i| contacts[*i].input()).collect() };
            self.wait_for_a_slot(pause, &mut paused).await;
            paused = None;
            let answer = self.exchange(self.inner.upsert_url.clone(), body.to_json()).await;
            let retry = match answer {
                Answer::Accepted => {
                    self.count_request("ok");
                    self.configuration_fine();
                    for i in pending.drain(..) {
                        settled[i] = Some(Settled::Delivered { unsure });
                    }
                    continue;
                }
                Answer::Partial { failed, unattributed } => {
                    self.count_request("partial");
                    self.configuration_fine();
                    for i in pending.drain(..) {
                        settled[i] = Some(match failed.get(&contacts[i].lead_id) {
                            Some(error) => Settled::Refused {
                                status: StatusCode::MULTI_STATUS,
                                error: cut(format!("207 Multi-Status: {error}")),
                            },
                            // Some error named no input: this one may be it.
                            None if unattributed > 0 => Settled::SendAlone,
                            None => Settled::Delivered { unsure },
                        });
                    }
                    continue;
                }
                Answer::RateLimited { retry_after, daily } => {
                    self.count_request(if daily { "daily_limited" } else { "rate_limited" });
                    self.inner.metrics.retries.with_label_values(&["rate_limited"]).inc();
                    let wait = if daily { self.inner.daily_limit_probe } else { retry_after };
                    if daily {
                        self.inner.metrics.daily_limit_reached.set(1);
                        tracing::warn!(
                            probe_in_s = wait.as_secs(),
                            "the CRM's daily request limit is spent; deliveries wait for its reset"
                        );
                    } else {
                        tracing::info!(
                            retry_after_ms = wait.as_millis() as u64,
                            "the CRM is rate limiting; waiting"
                        );
                    }
                    self.lock_limiter().block_until(Instant::now() + wait);
                    continue;
                }
                Answer::NotSent { detail } => ("network_error", detail),
                Answer::Unknown { reason, detail } => {
                    unsure = true;
                    (reason, detail)
                }
                Answer::Misconfigured(message) => {
                    self.count_request("rejected");
                    return Err(self.misconfigured(message));
                }
                Answer::Refused { status, error } if pending.len() == 1 => {
                    self.count_request("rejected");
                    self.configuration_fine();
                    settled[pending.remove(0)] = Some(Settled::Refused { status, error });
                    continue;
                }
                Answer::Refused { .. } => {
                    self.count_request("rejected");
                    self.configuration_fine();
                    for i in pending.drain(..) {
                        settled[i] = Some(Settled::SendAlone);
                    }
                    continue;
                }
            };
            let (reason, detail) = retry;
            self.count_request(if reason == "network_error" && !unsure { "network_error" } else { reason });
            failures += 1;
            if failures >= self.inner.max_attempts {
                return Err(DeliveryError::GaveUp(format!(
                    "{failures} attempts at a request of {} contacts, the last: {detail}",
                    pending.len()
                )));
            }
            self.inner
                .metrics
                .retries
                .with_label_values(&[if reason == "server_error" { "server_error" } else { "network_error" }])
                .inc();
            let delay = self.inner.backoff.delay(failures - 1);
            tracing::warn!(attempt = failures, delay_ms = delay.as_millis() as u64, error = %detail, "a CRM request failed; retrying");
            let _ = paused.get_or_insert_with(|| pause.hold());
            tokio::time::sleep(delay).await;
            if unsure {
                // Resend only what the CRM does not hold yet: under last writer wins a resend is
                // harmless, but a read is cheaper than a write and says what happened.
                let ids: Vec<&str> = pending.iter().map(|i| contacts[*i].lead_id.as_str()).collect();
                if let Ok(found) = self.read_once(&ids, &[], pause, &mut paused).await {
                    pending.retain(|i| {
                        let contact = &contacts[*i];
                        let held = found.get(&contact.lead_id).and_then(ContactRecord::version);
                        if held.is_some_and(|v| v >= contact.version) {
                            self.inner.metrics.contacts.with_label_values(&["confirmed_by_read"]).inc();
                            settled[*i] = Some(Settled::Delivered { unsure: true });
                            false
                        } else {
                            true
                        }
                    });
                }
            }
        }
        Ok(settled.into_iter().map(|s| s.expect("every contact is settled")).collect())
    }

    /// The CRM's copy of each of `lead_ids` it has (at most 100), by lead id, with `properties`
    /// as well as the id and the version. Retries as the upsert does; unknown ids are left out.
    pub async fn read(
        &self,
        lead_ids: &[&str],
        properties: &[&str],
        pause: &PauseSignal,
    ) -> Result<HashMap<String, ContactRecord>, DeliveryError> {
        let mut failures = 0;
        let mut paused = None;
        loop {
            match self.read_once(lead_ids, properties, pause, &mut paused).await {
                Ok(found) => return Ok(found),
                Err(ReadFailure::Config(message)) => return Err(self.misconfigured(message)),
                Err(ReadFailure::Retry(detail)) => {
                    failures += 1;
                    if failures >= self.inner.max_attempts {
                        return Err(DeliveryError::GaveUp(format!(
                            "{failures} attempts at a batch read: {detail}"
                        )));
                    }
                    let _ = paused.get_or_insert_with(|| pause.hold());
                    tokio::time::sleep(self.inner.backoff.delay(failures - 1)).await;
                }
            }
        }
    }

    async fn read_once(
        &self,
        lead_ids: &[&str],
        properties: &[&str],
        pause: &PauseSignal,
        paused: &mut Option<PauseGuard>,
    ) -> Result<HashMap<String, ContactRecord>, ReadFailure> {
        let body = BatchReadRequest::of(lead_ids, properties).to_json();
        loop {
            self.wait_for_a_slot(pause, paused).await;
            let started = Instant::now();
            let response = self.post(self.inner.read_url.clone(), body.clone()).send().await;
            self.inner.metrics.request_duration.observe(started.elapsed().as_secs_f64());
            let response = match response {
                Ok(response) => response,
                Err(e) => return Err(ReadFailure::Retry(network_detail(e))),
            };
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(|e| ReadFailure::Retry(network_detail(e)))?;
            if status == StatusCode::TOO_MANY_REQUESTS {
                let daily = ErrorBody::parse(&bytes).is_some_and(|b| b.is_daily_limit());
                let wait = if daily { self.inner.daily_limit_probe } else { retry_after(&headers) };
                self.count_request(if daily { "daily_limited" } else { "rate_limited" });
                self.lock_limiter().block_until(Instant::now() + wait);
                continue;
            }
            if status.is_success() {
                self.count_request("read");
                let answer = BatchAnswer::parse(&bytes).unwrap_or_default();
                return Ok(answer
                    .results
                    .into_iter()
                    .filter_map(|r| Some((r.lead_id()?.to_owned(), r)))
                    .collect());
            }
            if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
                return Err(ReadFailure::Retry(format!("the CRM answered {status}")));
            }
            let reason = refusal_reason(status, &bytes);
            return Err(ReadFailure::Config(format!(
                "the CRM refused a batch read ({}.read_path, access_token): {reason}",
                self.inner.key
            )));
        }
    }

    fn count_request(&self, outcome: &str) {
        self.inner.metrics.requests.with_label_values(&[outcome]).inc();
    }

    /// Records a configuration refusal: reported until a request succeeds, and the next request
    /// waits [`CONFIG_ERROR_PAUSE`] so that a refusal does not spend the budget.
    fn misconfigured(&self, message: String) -> DeliveryError {
        tracing::error!(connection = %self.inner.key, error = %message, "the CRM refuses this connection's configuration; fix it (see crm-sink setup)");
        *self.inner.config_problem.lock().unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
        self.inner.metrics.configuration_error.set(1);
        self.lock_limiter().block_until(Instant::now() + CONFIG_ERROR_PAUSE);
        DeliveryError::Config(message)
    }

    fn configuration_fine(&self) {
        let mut problem = self.inner.config_problem.lock().unwrap_or_else(PoisonError::into_inner);
        if problem.take().is_some() {
            self.inner.metrics.configuration_error.set(0);
        }
        self.inner.metrics.daily_limit_reached.set(0);
    }

    /// How long a block the CRM asked for (a 429, the daily limit, a configuration refusal)
    /// still holds this connection's requests back.
    pub fn blocked_for(&self) -> Duration {
        self.lock_limiter().blocked_for(Instant::now())
    }

    /// How long until a request keeps to the even pace of the request budget.
    pub fn until_paced(&self) -> Duration {
        self.lock_limiter().until_paced(Instant::now())
    }

    /// Waits until the limiter lets a request go (and records it), then until the budget every
    /// replica shares has room for it, holding the pause meanwhile.
    async fn wait_for_a_slot(&self, pause: &PauseSignal, paused: &mut Option<PauseGuard>) {
        loop {
            let wait = self.lock_limiter().wait_before_next(Instant::now());
            let Some(wait) = wait else { break };
            let _ = paused.get_or_insert_with(|| pause.hold());
            tokio::time::sleep(wait).await;
        }
        let Some(budget) = self.inner.shared.get() else { return };
        loop {
            let now = OffsetDateTime::now_utc();
            let wait = match budget.take(1, now).await {
                Ok(Grant::Granted { .. }) => return,
                Ok(Grant::Exhausted { until }) => {
                    self.inner.metrics.budget_waits.with_label_values(&["exhausted"]).inc();
                    Duration::try_from(until - now).unwrap_or(Duration::ZERO).max(Duration::from_millis(5))
                }
                Err(e) => {
                    self.inner.metrics.budget_waits.with_label_values(&["unavailable"]).inc();
                    tracing::warn!(error = %e, "the shared CRM budget cannot be counted (MongoDB); waiting");
                    BUDGET_UNAVAILABLE_RETRY
                }
            };
            let _ = paused.get_or_insert_with(|| pause.hold());
            tokio::time::sleep(wait).await;
        }
    }

    fn lock_limiter(&self) -> std::sync::MutexGuard<'_, WindowLimiter> {
        // The limiter's state is valid after any panic: every method leaves it consistent.
        self.inner.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn post(&self, url: reqwest::Url, body: String) -> reqwest::RequestBuilder {
        let mut request = self.inner.http.post(url).header(CONTENT_TYPE, "application/json").body(body);
        if let Some(authorization) = &self.inner.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        request
    }

    async fn exchange(&self, url: reqwest::Url, body: String) -> Answer {
        let started = Instant::now();
        let answer = self.exchange_untimed(url, body).await;
        self.inner.metrics.request_duration.observe(started.elapsed().as_secs_f64());
        answer
    }

    async fn exchange_untimed(&self, url: reqwest::Url, body: String) -> Answer {
        let response = match self.post(url, body).send().await {
            Ok(response) => response,
            Err(e) if e.is_connect() => return Answer::NotSent { detail: network_detail(e) },
            Err(e) => return Answer::Unknown { reason: "unknown_outcome", detail: network_detail(e) },
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(body) => body,
            // An answer we could not read to the end: what it said is not known.
            Err(e) => return Answer::Unknown { reason: "unknown_outcome", detail: network_detail(e) },
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            let daily = ErrorBody::parse(&body).is_some_and(|b| b.is_daily_limit());
            return Answer::RateLimited { retry_after: retry_after(&headers), daily };
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            return Answer::Unknown { reason: "server_error", detail: format!("the CRM answered {status}") };
        }
        if status == StatusCode::MULTI_STATUS {
            let answer = BatchAnswer::parse(&body).unwrap_or_default();
            let (failed, unattributed) = answer.failures();
            // A 207 that names nothing is still a partial failure: every contact goes alone.
            let unattributed = if failed.is_empty() { unattributed.max(1) } else { unattributed };
            return Answer::Partial { failed, unattributed };
        }
        if status.is_success() {
            return Answer::Accepted;
        }
        let reason = refusal_reason(status, &body);
        let said = ErrorBody::parse(&body);
        let mut missing = said.as_ref().map(|b| b.missing_properties()).unwrap_or_default();
        if said.as_ref().is_some_and(ErrorBody::id_property_unusable) {
            missing.push(hubspot_wire::ID_PROPERTY.to_owned());
        }
        match status {
            StatusCode::BAD_REQUEST if !missing.is_empty() => Answer::Misconfigured(format!(
                "the CRM lacks the contact properties {} ({}); run `crm-sink setup`: {reason}",
                missing.join(", "),
                self.inner.key
            )),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Answer::Misconfigured(format!(
                "the CRM refused the credentials or their scopes ({}.access_token): {reason}",
                self.inner.key
            )),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Answer::Misconfigured(format!(
                "the CRM has no upsert endpoint at {} ({}.base_url, upsert_path): {reason}",
                self.inner.upsert_url, self.inner.key
            )),
            _ => Answer::Refused { status, error: reason },
        }
    }
}

enum ReadFailure {
    Retry(String),
    Config(String),
}

fn network_detail(e: reqwest::Error) -> String {
    let what = if e.is_timeout() { "timed out" } else { "failed" };
    // Without the URL: this text goes into logs and errors, and a URL can carry credentials.
    let e = e.without_url();
    let mut detail = format!("the request {what}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        detail.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    detail
}

/// `Retry-After`, at least 1 s (a 0 would have us hammer the CRM while it keeps refusing). HubSpot
/// sends none: then its rolling window's length (`X-HubSpot-RateLimit-Interval-Milliseconds`),
/// after which the oldest request of the window has left it; [`DEFAULT_RETRY_AFTER`] when
/// neither is there.
fn retry_after(headers: &HeaderMap) -> Duration {
    if let Some(seconds) = hubspot_wire::retry_after_seconds(headers) {
        return Duration::from_secs(seconds.max(1));
    }
    hubspot_wire::rate_limit_remaining(headers)
        .map_or(DEFAULT_RETRY_AFTER, |(_, interval)| interval.max(Duration::from_millis(100)))
}

/// The status, then what the CRM said ([`ErrorBody::reason`]); just the status when the body
/// says nothing.
fn refusal_reason(status: StatusCode, body: &[u8]) -> String {
    let said = ErrorBody::parse(body).map(|b| b.reason()).unwrap_or_default();
    cut(if said.is_empty() { status.to_string() } else { format!("{status}: {said}") })
}

/// `reason` cut to [`MAX_ERROR_CHARS`].
fn cut(reason: String) -> String {
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
            upsert_path: UPSERT_PATH.into(),
            read_path: READ_PATH.into(),
            late_apply_window: Duration::from_secs(60),
            daily_limit_probe: Duration::from_secs(900),
            budget_name: String::new(),
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
            "backoff_initial_ms": 1, "backoff_max_ms": 2, "late_apply_window": "1m", "daily_limit_probe": "15m",
        });
        let parsed: HttpDestinationConfig = serde_json::from_value(json.clone()).unwrap();
        assert_eq!((parsed.batch_size, parsed.access_token.expose()), (10, "s3cret-token"));
        assert_eq!((parsed.window, parsed.backoff_max), (Duration::from_secs(1), Duration::from_millis(2)));
        assert!(!format!("{parsed:?}").contains("s3cret"));
        let new_names = serde_json::json!({
            "base_url": "http://crm", "access_token": "", "batch_size": 10, "requests_per_window": 5,
            "window": "1s", "request_timeout": "100ms", "max_attempts": 2, "backoff_initial": "1ms",
            "backoff_max": "2ms", "late_apply_window": "1m", "daily_limit_probe": "15m",
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
        let request = destination.post(destination.inner.upsert_url.clone(), "{}".into()).build().unwrap();
        assert_eq!(request.url().as_str(), format!("https://api.example.com/crm-proxy{UPSERT_PATH}"));
        assert_eq!(
            destination.inner.read_url.as_str(),
            format!("https://api.example.com/crm-proxy{READ_PATH}")
        );
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer pat-1");
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
        let without = self::destination(&config("http://127.0.0.1:1")).unwrap();
        let request = without.post(without.inner.upsert_url.clone(), "{}".into()).build().unwrap();
        assert!(request.headers().get(AUTHORIZATION).is_none());
    }

    #[test]
    fn a_contacts_input_carries_its_version_and_trace_id() {
        let contact = ContactUpsert {
            lead_id: "L1".into(),
            version: 7,
            properties: Map::from_iter([("email".to_owned(), Value::from("a@b.co"))]),
        };
        let input = contact.input();
        assert_eq!((input.id, input.object_write_trace_id.as_str()), ("L1", "L1:7"));
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
