//! A stand-in for [nationalize.io](https://nationalize.io): `GET /?name=…` or
//! `GET /?name[]=…&name[]=…` (up to ten names) answers `{"count","name","country":[…]}` objects
//! like the real API, with its errors (401 bad `apikey`, 422 missing or invalid `name`, 429 when
//! the quota is spent) and its `X-Rate-Limit-Limit`/`-Remaining`/`-Reset` headers on every answer
//! (`Retry-After` too on a 429). The quota counts requests, whatever number of names each carries.
//!
//! # Predictions
//!
//! [`predict`] is the whole rule, so a test can compute what the stand-in will answer:
//!
//! - the response's `name` is the name as received; the rule reads its lowercase form;
//! - an empty name, or one whose lowercase form starts with `unknown`, gets `count: 0` and no
//!   countries;
//! - any other name gets 1 to 3 distinct countries from [`COUNTRIES`], drawn from SplitMix64
//!   seeded with the FNV-1a 64 hash of the lowercase UTF-8 bytes. Probabilities are whole basis
//!   points (4 decimals), in (0, 1], sorted descending and summing to less than 1. The top one
//!   lies in (0.6, 0.95] for about half the names and in [0.2, 0.6] for the rest, so a pipeline
//!   sees both confident and doubtful outcomes. `count` is between 50 and 200 049.
//!
//! # Faults
//!
//! [`Faults`] (flags at start, or `PUT /__admin/faults` with `{"latencyMs","errorRate","quota",
//! "windowS","apiKey"}`, omitted fields defaulting) adds latency to every request, fails the
//! `errorRate` fraction of admitted requests with 503 on a fixed golden-ratio sequence, limits
//! requests to `quota` per `windowS`-second window (restarted by a `PUT`), and requires an API
//! key. A request is judged in this order: latency, key (401), quota (429), injected failure
//! (503), then the name (422 or 200). `GET /__admin/stats` returns [`Stats`];
//! `POST /__admin/reset` zeroes them and clears the faults.

pub mod cli;
mod faults;
mod gate;
mod http;
mod predict;

use std::future::Future;

use tokio::net::TcpListener;

pub use faults::Faults;
pub use gate::{Stats, UNLIMITED};
pub use http::{MAX_BATCH, router};
pub use predict::{COUNTRIES, CountryProbability, Prediction, predict};

/// Serves the stand-in on `listener` until `shutdown` completes, then lets in-flight requests
/// finish.
pub async fn serve(
    listener: TcpListener,
    faults: Faults,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(faults)).with_graceful_shutdown(shutdown).await
}
