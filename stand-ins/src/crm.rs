//! A stand-in for the CRM (HubSpot's contacts batch upsert, simplified):
//! `POST /crm/v3/objects/contacts/batch/upsert` with
//! `{"inputs":[{"idProperty":"leadflow_id","id","properties":{…},"idempotencyKey"}]}` (1 to
//! [`MAX_INPUTS`] inputs) answers 200 `{"status":"COMPLETE","results":[{"id","version","new"}]}`.
//!
//! # Contacts
//!
//! Inputs are upserted by `id`, in order. `properties` is a flat object of strings and numbers and
//! must hold `leadflow_version`, a non-negative integer (or its decimal text, since HubSpot keeps
//! every property as text). A contact keeps the properties of the highest version it has seen: an
//! input whose version is lower than or equal to the stored one (a replay, or out of order)
//! changes nothing but is still answered 200 and counted. A result's `version` is the contact's
//! version after the input and `new` whether the input created it. `idempotencyKey` is required;
//! a request with a single input may carry it in an `Idempotency-Key` header instead. Keys are
//! only counted: an input whose key came in an earlier applied request adds to
//! `repeatedIdempotencyKeys`.
//!
//! A bad body is answered 400
//! `{"status":"error","message","category":"VALIDATION_ERROR","errors":[{"message","in"}]}`, one
//! error per bad field, `in` naming it like `inputs[3].properties.leadflow_version` (`body` when the
//! body is not a JSON object). Unknown fields, top-level or in an input, are errors, and
//! `idProperty` must be `leadflow_id`. Like HubSpot, the stand-in checks the `email` property when
//! an input carries one: it must be a string with a non-empty local part, an `@`, a domain (after
//! the last `@`) holding a `.` other than at its ends, and no whitespace; otherwise the error is
//! `inputs[i].properties.email is not a valid email address` (the value is left out of it). One
//! bad input fails the whole batch: nothing in it is applied.
//!
//! # Faults
//!
//! [`Faults`] (flags at start, or `PUT /__admin/faults` with `{"latencyMs","errorRate",
//! "dropAfterWriteRate","burstLimit","burstWindowMs"}`, omitted fields defaulting) adds latency
//! to every upsert; limits upserts to `burstLimit` per `burstWindowMs` window (restarted by a
//! `PUT`), answering 429 `{"status":"error","category":"RATE_LIMITS","message"}` with
//! `Retry-After` in whole seconds (at least 1); answers the `errorRate` fraction of the rest 503
//! `{"status":"error","category":"INTERNAL_ERROR","message"}` before reading the body; and, for
//! the `dropAfterWriteRate` fraction of applied requests, applies the batch and then closes the
//! connection without a response, so the client cannot tell the write happened. Both fractions
//! follow a fixed golden-ratio sequence. A request is judged in this order: latency, burst limit,
//! injected failure, body (400), then the write (200 or dropped). Dropping needs [`serve`]; through
//! the bare [`router`] such a request is applied and answered 500 with category
//! `DROPPED_CONNECTION`.
//!
//! # Admin
//!
//! `GET /__admin/contacts` returns `{"contacts":{"<id>":`[`Contact`]`}}`, `GET /__admin/stats`
//! returns [`Stats`], `GET /__admin/faults` the faults, and `POST /__admin/reset` clears the
//! contacts, the stats, the idempotency keys seen and the faults.

mod batch;
pub mod cli;
mod conn;
mod faults;
mod http;
mod state;

use std::future::Future;

use tokio::net::TcpListener;

pub use batch::{EMAIL_PROPERTY, FieldError, ID_PROPERTY, MAX_INPUTS, VERSION_PROPERTY};
pub use faults::Faults;
pub use http::{UPSERT_PATH, router};
pub use state::{Contact, Stats, UpsertResult};

/// Serves the stand-in on `listener` until `shutdown` completes, then lets in-flight requests
/// finish. Connections can be dropped after a write only when served this way.
pub async fn serve(
    listener: TcpListener,
    faults: Faults,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(faults).into_make_service_with_connect_info::<conn::DropSwitch>();
    axum::serve(conn::DroppingListener(listener), app).with_graceful_shutdown(shutdown).await
}
