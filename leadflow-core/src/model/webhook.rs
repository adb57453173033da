//! Outbound webhooks, the pure part: how a delivery is signed and checked, when a failed one is
//! tried again, when an endpoint is disabled, and which URLs may be called at all. No I/O and
//! no clock; every time is passed in.
//!
//! # Signature ([`sign`], [`verify`])
//!
//! Deliveries follow the Standard Webhooks convention. Each one carries three headers:
//!
//! - `webhook-id`: the message's id, the same on every attempt, so a receiver can dedupe
//!   ([`message_id`] derives it from the message's unique key);
//! - `webhook-timestamp`: the attempt's time, whole seconds since the Unix epoch;
//! - `webhook-signature`: `v1,` and the standard base64 of HMAC-SHA256 over
//!   `{webhook-id}.{webhook-timestamp}.{body}`, keyed by the endpoint's secret. The header may
//!   hold several space-separated signatures (during a key rotation); one match is enough.
//!
//! A secret ([`WebhookSecret`]) is 24 to 64 random bytes (32 when generated), written
//! `whsec_<base64>`; it is shown once, when the subscription is made. A receiver refuses a
//! timestamp more than [`DEFAULT_TOLERANCE`] (5 minutes) from its clock, either way.
//!
//! # Retry schedule ([`RetrySchedule::standard`])
//!
//! A message gets up to 10 attempts. The delay before each, counted from the end of the
//! previous one, is the Standard Webhooks spec's example schedule:
//!
//! | Attempt | Delay       | Time since the first attempt (without jitter) |
//! | ------- | ----------- | --------------------------------------------- |
//! | 1       | immediately | 0:00:00                                       |
//! | 2       | 5 seconds   | 0:00:05                                       |
//! | 3       | 5 minutes   | 0:05:05                                       |
//! | 4       | 30 minutes  | 0:35:05                                       |
//! | 5       | 2 hours     | 2:35:05                                       |
//! | 6       | 5 hours     | 7:35:05                                       |
//! | 7       | 10 hours    | 17:35:05                                      |
//! | 8       | 14 hours    | 31:35:05                                      |
//! | 9       | 20 hours    | 51:35:05                                      |
//! | 10      | 24 hours    | 75:35:05                                      |
//!
//! Each delay is jittered by up to ±20 %, drawn uniformly (the first attempt stays immediate),
//! so that endpoints that failed together are not retried in the same instant. When the 10th
//! attempt fails the message is given up; it stays replayable. Tests use the same schedule
//! scaled down ([`RetrySchedule::scaled`]).
//!
//! An attempt is delivered on a 2xx answer and failed on anything else, redirects and no answer
//! included; a 410 Gone disables the endpoint at once ([`AttemptOutcome`]).
//!
//! # Disabling an endpoint ([`DisablePolicy`])
//!
//! An endpoint that has failed for longer than 5 days ([`DISABLE_AFTER`]), counted from its
//! first failure since its last success, is disabled: nothing more is sent to it until it is
//! enabled again, and its undelivered messages can then be replayed.
//!
//! # Where webhooks may go ([`check_url`], [`check_resolved`])
//!
//! See [`destination`]: `https` only, `http` to loopback only in tests, and never to private,
//! link-local or metadata addresses unless [`UrlPolicy`] says so (metadata and link-local never).

pub mod destination;
pub mod payload;
mod retry;
mod signature;

pub use destination::{AddressClass, UrlPolicy, UrlRefusal, check_resolved, check_url, classify};
pub use retry::{
    AttemptOutcome, DISABLE_AFTER, DisablePolicy, Jitter, RetrySchedule, STANDARD_DELAYS, STANDARD_JITTER,
    ScheduleError,
};
pub use signature::{
    DEFAULT_TOLERANCE, GENERATED_SECRET_BYTES, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    MAX_SECRET_BYTES, MIN_SECRET_BYTES, SECRET_PREFIX, SecretError, VerifyError, WebhookSecret, message_id,
    sign, verify,
};
