//! SDK ids as lead ids. Segment SDKs send free-text ids (`"user 42"`, `"a+b@x.io"`); a lead id
//! is `[A-Za-z0-9._:@-]{1,128}`. An id that already is one stays as it is, so a lead keyed by
//! it through the write API is the same lead; any other id is encoded reversibly, so the read
//! API can show what the SDK sent.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ids::{MAX_ID_CHARS, check_lead_id};

/// The prefix of an encoded id. An id that starts with it is encoded too, even when it matches
/// the lead-id rule, so that no id as it is can equal another id's encoding.
pub const ENCODED_PREFIX: &str = "b64.";

/// The most UTF-8 bytes an id that needs encoding may have: its base64 must fit in a lead id
/// after [`ENCODED_PREFIX`].
pub const MAX_ENCODED_ID_BYTES: usize = (MAX_ID_CHARS - ENCODED_PREFIX.len()) * 6 / 8;

/// Why an SDK id cannot be a lead id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("the id is empty")]
    Empty,
    #[error(
        "the id is {bytes} bytes of UTF-8; an id with characters outside A-Z a-z 0-9 . _ : @ - \
         (or starting with \"b64.\") may have at most {MAX_ENCODED_ID_BYTES} bytes"
    )]
    TooLong { bytes: usize },
}

/// An SDK id (userId, anonymousId, previousId) as a LeadFlow lead id: as it is when it already
/// matches the lead-id rule ([A-Za-z0-9._:@-]{1,128}) and does not start with "b64.",
/// else "b64." + base64url-without-padding of its UTF-8 bytes. Err when that exceeds 128 chars
/// or the id is empty.
pub fn lead_id_of(sdk_id: &str) -> Result<String, IdError> {
    if sdk_id.is_empty() {
        return Err(IdError::Empty);
    }
    if !sdk_id.starts_with(ENCODED_PREFIX) && check_lead_id("id", sdk_id).is_ok() {
        return Ok(sdk_id.to_owned());
    }
    if sdk_id.len() > MAX_ENCODED_ID_BYTES {
        return Err(IdError::TooLong { bytes: sdk_id.len() });
    }
    Ok(format!("{ENCODED_PREFIX}{}", URL_SAFE_NO_PAD.encode(sdk_id)))
}

/// The SDK id a lead id stands for: the inverse of [`lead_id_of`]. A lead id that is not an
/// encoding (no "b64." prefix, or one whose rest is not canonical base64url of non-empty UTF-8,
/// as a lead posted through the write API may be) is itself.
pub fn sdk_id_of(lead_id: &str) -> String {
    lead_id
        .strip_prefix(ENCODED_PREFIX)
        .and_then(|encoded| URL_SAFE_NO_PAD.decode(encoded).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|sdk_id| !sdk_id.is_empty())
        .unwrap_or_else(|| lead_id.to_owned())
}

#[cfg(test)]
mod tests;
