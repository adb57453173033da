//! A stand-in for the CRM, in one of two modes fixed at start ([`Mode`], `--mode`, default
//! `hubspot`): the **HubSpot** mode, which behaves like HubSpot's real contacts API (last writer
//! wins, strict bodies, properties that must exist, email conflicts, daily limits), and the
//! **versioned** mode, a simplified CRM with a version guard that the sink was first built
//! against, kept as an option. [`router_with`] and [`serve_with`] take [`Settings`] (mode,
//! faults, token, precreated properties; [`Settings::default`] is HubSpot mode with only the
//! built-in properties). [`router`] and [`serve`], which take only faults, still give the
//! versioned mode, so that their callers keep the CRM they were written against.
//!
//! In HubSpot mode a write to a property that does not exist is refused, so LeadFlow's
//! properties must exist before the sink writes: `crm-sink setup` creates them (as the demo
//! does), or the stand-in starts with them (`--precreate-properties leadflow`,
//! [`Settings::hubspot_with_leadflow_properties`]).
//!
//! # Versioned mode
//!
//! `POST /crm/v3/objects/contacts/batch/upsert` with
//! `{"inputs":[{"idProperty":"leadflow_id","id","properties":{…},"idempotencyKey"}]}` (1 to
//! [`MAX_INPUTS`] inputs) answers 200 `{"status":"COMPLETE","results":[{"id","version","new"}]}`.
//!
//! Inputs are upserted by `id`, in order. `properties` is a flat object of strings and numbers and
//! must hold `leadflow_version`, a non-negative integer (or its decimal text, since HubSpot keeps
//! every property as text). A contact keeps the properties of the highest version it has seen: an
//! input whose version is lower than or equal to the stored one (a replay, or out of order)
//! changes nothing but is still answered 200 and counted. A result's `version` is the contact's
//! version after the input and `new` whether the input created it. `idempotencyKey` is required,
//! or HubSpot's `objectWriteTraceId` in its place (what the crm-sink sends); a request with a
//! single input may carry it in an `Idempotency-Key` header instead. Keys are
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
//! [`Faults`] (flags at start, or `PUT /__admin/faults` with `{"latencyMs","errorRate",
//! "dropAfterWriteRate","burstLimit","burstWindowMs"}`, omitted fields defaulting; the HubSpot-only
//! faults below are refused with a 400) adds latency
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
//! `GET /__admin/contacts` returns `{"contacts":{"<id>":`[`Contact`]`}}`, `GET /__admin/stats`
//! returns [`Stats`], `GET /__admin/faults` the faults, and `POST /__admin/reset` clears the
//! contacts, the stats, the idempotency keys seen and the faults.
//!
//! # HubSpot mode
//!
//! Every error body is `{"status":"error","message","category","correlationId"(a UUID-shaped
//! string), …}`. Property values are kept as text: a number or boolean is stored as its JSON text,
//! and `null` or `""` clears the property.
//!
//! **Paths** ([`UPSERT_PATHS`], [`READ_PATHS`], [`PROPERTIES_PATH`]): batch upsert at
//! `/crm/v3/objects/contacts/batch/upsert` and `/crm/objects/2026-03/contacts/batch/upsert`;
//! batch read at `/crm/v3/objects/contacts/batch/read` and
//! `/crm/objects/2026-03/contacts/batch/read`; `POST /crm/v3/properties/contacts`,
//! `GET /crm/v3/properties/contacts` (`{"results":[property…]}`) and
//! `GET /crm/v3/properties/contacts/{name}` (404 `OBJECT_NOT_FOUND` when missing).
//!
//! **Order of judgement** of a non-admin request: auth (401, then 403), then for batch upsert and
//! read the latency, then the limits (429; every non-admin call counts), then for batch upsert and
//! read the injected 503, then the body (400), then the write (answered, dropped, or late). The
//! properties API gets neither latency nor injected 503s, so a client's setup is deterministic.
//!
//! **Auth**: with a token (`--token T`, [`Settings::token`]; none by default, then nothing is
//! checked) a non-admin request without `Authorization: Bearer T` is 401 `INVALID_AUTHENTICATION`
//! ("Authentication credentials not found. …"). The fault `missingScopes: true` answers every
//! non-admin request 403 `MISSING_SCOPES` ("This app hasn't been granted all required scopes to
//! make this call.", `errors:[{"message":"One or more of the following scopes are required.",
//! "context":{"requiredGranularScopes":["crm.objects.contacts.write"]}}]`). 401s and 403s do not
//! count against the limits.
//!
//! **Properties**: built in are `email`, `firstname`, `lastname`, `company`, `country`, `phone`,
//! `lifecyclestage` and `hs_object_id` (read-only). Others are created with
//! `POST /crm/v3/properties/contacts` `{"name","label","type","fieldType","groupName",
//! "hasUniqueValue"?}` (other fields ignored): a missing field is 400 `VALIDATION_ERROR` "Missing
//! required fields: a, b" with one `errors[]` per field; `name` must match `^[a-z][a-z0-9_]*$` and
//! `type` be one of string, number, enumeration, datetime, date, bool (400 otherwise); an existing
//! name is 409 `OBJECT_ALREADY_EXISTS` "Property named 'x' already exists."; success is 201 with
//! `{name,label,type,fieldType,groupName,hasUniqueValue,createdAt}`. Properties can also exist from
//! the start: `--precreate-properties leadflow` (LeadFlow's set, [`PropertySpec::leadflow`]:
//! `leadflow_id` unique, `leadflow_version`, `leadflow_score`, `leadflow_stage`,
//! `leadflow_status`) or `--precreate-properties name[:unique],…`
//! ([`Settings::precreated_properties`]); and `POST /__admin/properties` with a JSON array of
//! `{"name","type"?,"hasUniqueValue"?}` adds more at any time, answering `{"created":[names]}`
//! (existing names are left alone).
//!
//! **Batch upsert** `{"inputs":[{"id","idProperty","properties","objectWriteTraceId"?}]}`, 1 to
//! 100 inputs. Any other field, top-level or in an input (`idempotencyKey`, say), and any missing
//! or mistyped one, is a 400 `VALIDATION_ERROR` "Invalid input JSON: …" with an `errors[]` per
//! field whose `in` names it (`inputs[1].idempotencyKey`). `idProperty` must be an existing
//! property with `hasUniqueValue`, or `email`; otherwise 400 "Property x does not exist" or
//! "Unable to perform update/upsert by non-unique property: x". Then every property written must
//! exist, not be read-only, be a string, number, boolean or null, and an `email` must pass the
//! versioned mode's check and have a last domain label of two or more letters; otherwise the whole
//! request is 400 `VALIDATION_ERROR` "Property values were not valid: [{"isValid":false,"message",
//! "error":CODE,"name"}…]" with `errors:[{"message":"Property \"foo\" does not exist","code":
//! "PROPERTY_DOESNT_EXIST","context":{"propertyName":["foo"]},"in":"inputs[0].properties.foo"}]`
//! (codes `PROPERTY_DOESNT_EXIST`, `READ_ONLY_VALUE`, `INVALID_PROPERTY_VALUE`, `INVALID_EMAIL`; an
//! email's value is never in a message). Nothing of a 400 is applied.
//!
//! **Last writer wins**: inputs apply in order; each finds the live contact whose `idProperty` is
//! `id` (emails compared without case), or creates one with the next internal id (`"1001"`,
//! `"1002"`, …), merges the given properties (others kept), sets the `idProperty` to `id` and
//! `hs_object_id` to the internal id, and sets `updatedAt`. No version guard. An input whose
//! email (or any `hasUniqueValue` property's value) belongs to another live contact, including
//! one created earlier in the same request, fails with a conflict. With the fault
//! `conflictAnswer: "multiStatus"` (the default) the other inputs still apply: a request whose
//! only input failed is 409 `CONFLICT` "Contact already exists. Existing ID: N" (N the other
//! contact's internal id); otherwise any failure makes it 207 `{"status":"COMPLETE","results":[the
//! applied],"numErrors":k,"errors":[{"status":"error","category":"CONFLICT","message",
//! "context":{"id":["<the input's id>"],"existingId":["N"]},"errors":[{"message","in":
//! "inputs[i].properties.email"}]}]}` (a request whose inputs all failed is a 207 with no results).
//! With `conflictAnswer: "wholeBatch"` the first conflict fails the request with that 409 and
//! nothing of it is applied. Success is 200 `{"status":"COMPLETE","results":[{"id","properties":
//! {every property of the contact},"createdAt","updatedAt","archived":false,"new"}]}`, `results`
//! in reverse input order (HubSpot promises no order).
//!
//! **Batch read** `{"idProperty"?,"inputs":[{"id"}],"properties"?:[…],"propertiesWithHistory"?}`
//! (strict like the upsert, 1 to 100 inputs; without `idProperty` the ids are internal ids, with
//! one it must be unique or `email`) answers 200 `{"status":"COMPLETE","results":[{"id",
//! "properties":{each requested property that exists (null when unset), hs_object_id, the
//! idProperty},"createdAt","updatedAt","archived":false}]}`, one result per contact, in reverse
//! order. If some id is not found (archived contacts are not), 207 with the found ones and
//! `"numErrors":1,"errors":[{"status":"error","category":"OBJECT_NOT_FOUND","message":"Could not
//! get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
//! "context":{"ids":[the missing ids]}}]`.
//!
//! **Limits**: a rolling window of `burstLimit` requests per `burstWindowMs` and a daily limit of
//! `dailyLimit` (per UTC day; also reset by `POST /__admin/daily/reset`), counting every admitted
//! non-admin request (refused ones do not count). The daily limit is judged first. A 429 is
//! `{"status":"error","message","errorType":"RATE_LIMIT","correlationId","policyName","groupName"}`,
//! `policyName` `TEN_SECONDLY_ROLLING` ("You have reached your ten_secondly_rolling limit.") or
//! `DAILY` ("You have reached your daily limit."), with no `Retry-After`. Every non-admin answer
//! carries `X-HubSpot-RateLimit-Max`, `-Remaining` and `-Interval-Milliseconds` when `burstLimit`
//! is set, and `X-HubSpot-RateLimit-Daily` and `-Daily-Remaining` when `dailyLimit` is set.
//! `PUT /__admin/faults` restarts the window, not the day.
//!
//! **Faults**: `latencyMs`, `errorRate` (503) and `dropAfterWriteRate` as in the versioned mode
//! (for batch upsert and read; drops for upserts only), plus `lateApplyRate` and
//! `lateApplyDelayMs` (default 1000): that fraction of valid upserts is held for the delay, then
//! applied, then answered, and the apply happens even if the client has gone meanwhile. The
//! fractions follow the golden-ratio sequence, each over its own count.
//!
//! **Admin** (no auth, no limits): `GET /__admin/contacts` returns `{"contacts":{"<leadflow_id,
//! or the internal id when it has none>":{"id","properties","createdAt","updatedAt","archived",
//! "versionHistory"}}}` ([`HubSpotContact`]; `versionHistory` is every `leadflow_version` written
//! to it in apply order; an archived contact shows only while no live one has its key);
//! `DELETE /__admin/contacts/{key}` archives the live contact (204, 404 when none), as a person
//! deleting it would, freeing its email; `PATCH /__admin/contacts/{key}` with `{"properties":{…}}`
//! merges them as a person editing it would, with no check but that it exists (200 with the
//! contact, 404); `GET /__admin/stats` returns [`HubSpotStats`]; `GET`/`PUT /__admin/faults`;
//! `POST /__admin/properties` (above); `POST /__admin/daily/reset`; and `POST /__admin/reset`
//! goes back to the start: the start's properties, no contacts, zero counters, default faults.

mod batch;
pub mod cli;
mod conn;
mod faults;
mod http;
pub mod hubspot;
mod settings;
mod state;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

pub use batch::{EMAIL_PROPERTY, FieldError, ID_PROPERTY, MAX_INPUTS, VERSION_PROPERTY};
pub use faults::{ConflictAnswer, Faults};
pub use http::{UPSERT_PATH, router};
pub use hubspot::{HubSpotContact, HubSpotStats, PROPERTIES_PATH, PropertySpec, READ_PATHS, UPSERT_PATHS};
pub use settings::{Mode, Settings};
pub use state::{Contact, Stats, UpsertResult};

/// The date-versioned batch upsert path (HubSpot mode only; [`UPSERT_PATH`] is the v3 one).
pub const DATED_UPSERT_PATH: &str = UPSERT_PATHS[1];
/// The batch read paths (HubSpot mode only).
pub const READ_PATH: &str = READ_PATHS[0];
pub const DATED_READ_PATH: &str = READ_PATHS[1];

/// The stand-in's routes in `settings.mode`, over fresh state; [`router`] is the versioned one.
pub fn router_with(settings: &Settings) -> Router {
    match settings.mode {
        Mode::Versioned => router(settings.faults.clone()),
        Mode::HubSpot => hubspot::router(settings),
    }
}

/// Serves the versioned mode on `listener` until `shutdown` completes; see [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    faults: Faults,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, Settings::versioned(faults), shutdown).await
}

/// Serves the stand-in on `listener` until `shutdown` completes, then lets in-flight requests
/// finish. Connections can be dropped after a write only when served this way.
pub async fn serve_with(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router_with(&settings).into_make_service_with_connect_info::<conn::DropSwitch>();
    axum::serve(conn::DroppingListener(listener), app).with_graceful_shutdown(shutdown).await
}
