//! A webhook receiver: it takes a `POST` on any path, so one process stands for several
//! endpoints (`/a`, `/b`, a Slack-compatible incoming webhook at `/slack`), records every request
//! and checks its Standard Webhooks signature, and can be told to be slow or to fail.
//!
//! # Receiving
//!
//! A `POST` to any path outside `/__admin/` is recorded as a [`Delivery`]: its path and query,
//! the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers as received, the
//! content type, the body as text (and parsed, when it is JSON), when it arrived, the status it
//! was answered with, and its [`Verification`]: `valid` when the timestamp is within the
//! tolerance (`--tolerance-s`, default 300, either way) and one of the space-separated
//! `v1,<base64>` signatures is the HMAC-SHA256 of `{id}.{timestamp}.{body}` under the path's
//! secret; otherwise why not (`noSecret`, `missingHeaders`, `badTimestamp`, `outsideTolerance`,
//! `mismatch`). It is checked here, independently of LeadFlow's signing code, as a customer's
//! receiver would. A secret is `whsec_<base64>` (the bare base64 is accepted too, as the spec's
//! libraries do); one for every path comes from `--secret`, and `PUT /__admin/secrets` with
//! `{"secret": "whsec_…" | null, "perPath": {"/a": "whsec_…"}}` replaces them (a path's own
//! secret wins over the common one). Requests are recorded whether or not they verify. Other
//! methods are 405; unknown `/__admin/` paths are 404.
//!
//! A 2xx answer has the body `ok` as `text/plain`, as Slack's incoming webhooks answer (a Slack
//! message is just a `POST` of `{"text": …}`, read back from the delivery's `json`); any other
//! answer says `injected failure`.
//!
//! # Faults
//!
//! [`Faults`] (flags at start, or `PUT /__admin/faults` with `{"latencyMs","failFirst",
//! "failStatus","status","perPath"}`, omitted fields defaulting): every request to a path waits
//! `latencyMs` before its answer (it is recorded on arrival); the first `failFirst` requests to
//! each path, counted from start or the last `PUT`, are answered `failStatus` (default 500), and
//! the rest `status` (default 200). `perPath` maps a path to faults of the same shape (without a
//! `perPath` of their own) that replace the top-level ones for that path, so `/a` can fail while
//! `/b` stays healthy.
//!
//! # Admin
//!
//! `GET /__admin/deliveries` returns `{"deliveries": [`[`Delivery`]`…]}` in arrival order
//! (`?path=/a` for one path's); `GET /__admin/stats` returns [`Stats`] (requests, 2xx answers,
//! other answers, verified requests and distinct `webhook-id`s, in total and per path);
//! `GET`/`PUT /__admin/faults`; `PUT /__admin/secrets`; and `POST /__admin/reset` goes back to
//! the start: no deliveries, zero counters, the start's faults and secrets.

pub mod cli;
mod faults;
mod http;
mod inbox;
mod signature;

use std::future::Future;

use tokio::net::TcpListener;

pub use faults::Faults;
pub use http::router;
pub use inbox::{Delivery, PathStats, Stats};
pub use signature::{ReceiverSecret, Secrets, Verification};

/// What the receiver starts with, and goes back to on `POST /__admin/reset`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub faults: Faults,
    pub secrets: Secrets,
    /// How far a `webhook-timestamp` may be from the receiver's clock, either way.
    pub tolerance_s: u64,
}

/// The Standard Webhooks libraries' tolerance: five minutes.
pub const DEFAULT_TOLERANCE_S: u64 = 300;

impl Default for Settings {
    fn default() -> Self {
        Settings { faults: Faults::default(), secrets: Secrets::default(), tolerance_s: DEFAULT_TOLERANCE_S }
    }
}

impl Settings {
    /// Default faults and tolerance, one secret for every path.
    pub fn with_secret(secret: ReceiverSecret) -> Self {
        Settings { secrets: Secrets { secret: Some(secret), ..Secrets::default() }, ..Settings::default() }
    }
}

/// Serves the receiver on `listener` until `shutdown` completes, then lets in-flight requests
/// finish.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(settings)).with_graceful_shutdown(shutdown).await
}
