//! The Segment-compatible API: the Segment spec's messages, as existing SDKs send them, mapped
//! to LeadFlow's records.
//!
//! - The mapping, pure: [`identity`] (SDK ids as lead ids), [`event_names`] (event names as
//!   event types) and [`message`] (one message as its records, or why it cannot be used).
//! - The HTTP layer: [`handlers`] (the `/v1` routes), [`body`] (JSON, `text/plain`, gzip, the
//!   limits), [`write_key`] (the credential), [`cors`] (per project, after the body is read),
//!   [`settings`] (the document analytics.js loads) and [`sdk_assets`] (the browser tracker's
//!   files). An unusable message becomes a dead letter (`DeadLetter::for_input`) in [`handlers`].

pub mod event_names;
pub mod identity;
pub mod message;

pub mod body;
pub mod cors;
pub mod handlers;
pub mod sdk_assets;
pub mod settings;
pub mod write_key;
