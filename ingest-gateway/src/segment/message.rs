//! One Segment-spec message (track, identify, page, screen, group, alias) as the LeadFlow records
//! it stands for, pure: the message and what the route knows in, records or the reason the
//! message cannot be used out. The clock is [`Received::received_at`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use leadflow_core::contract::records::{LeadEvent, NameSubmitted};

use crate::ids::MAX_ID_CHARS;
use crate::segment::event_names::event_type_of;
use crate::segment::identity::lead_id_of;
use crate::write::validation::{MAX_COMPANY_CHARS, MAX_EMAIL_CHARS, MAX_NAME_CHARS};

/// The most bytes one message may have, serialised compactly (the spec's limit).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// The most characters each string of the kept `context` subset may have.
pub const MAX_CONTEXT_CHARS: usize = 1024;
/// The prefix of an eventId derived from a `messageId` too long to be one.
pub const HASHED_MESSAGE_ID_PREFIX: &str = "mid-sha256:";

/// The fields of `context.page` and `context.campaign` kept in `properties.context`: what
/// scoring rules can use (where a visit came from, which page), nothing that names a device.
const CONTEXT_PAGE_FIELDS: &[&str] = &["path", "url", "referrer", "title", "search"];
const CONTEXT_CAMPAIGN_FIELDS: &[&str] = &["name", "source", "medium", "term", "content"];
/// The most characters of a sent value an [`Unusable::reason`] quotes.
const MAX_QUOTED_CHARS: usize = 64;

/// What the gateway knows about a message besides the message itself.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The project of the write key; every record is stamped with it.
    pub project_id: &'a str,
    /// When the gateway received the message: the mapping's clock.
    pub received_at: OffsetDateTime,
    /// The batch's `sentAt` (a message's own `sentAt` wins).
    pub batch_sent_at: Option<&'a str>,
    /// The project's event-name map (ProjectDoc::event_types).
    pub event_types: &'a BTreeMap<String, String>,
    /// The call type the route implies (`/v1/track`, `/v1/t` → Some(Track)); None for batch routes,
    /// where each message's `type` says.
    pub route_type: Option<CallType>,
}

/// The six calls of the Segment spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallType {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

impl CallType {
    /// Every call, in the spec's order.
    pub const ALL: [CallType; 6] = [
        CallType::Track,
        CallType::Identify,
        CallType::Page,
        CallType::Screen,
        CallType::Group,
        CallType::Alias,
    ];

    /// The call's name as a message's `type` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Track => "track",
            CallType::Identify => "identify",
            CallType::Page => "page",
            CallType::Screen => "screen",
            CallType::Group => "group",
            CallType::Alias => "alias",
        }
    }

    /// The call a message's `type` names, in any ASCII case; None for anything else.
    pub fn from_type(name: &str) -> Option<CallType> {
        CallType::ALL.into_iter().find(|call| call.as_str().eq_ignore_ascii_case(name))
    }
}

/// What one message becomes: records to publish, in this order (names, then events). Every
/// record has `project_id` set from `Received`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapped {
    pub names: Vec<NameSubmitted>,
    pub events: Vec<LeadEvent>,
}

/// Why a message cannot be used: `kind` is the dead letter's `errorKind` (snake_case, e.g.
/// "message_too_large", "missing_identity", "unknown_type", "invalid_id", "not_an_object"),
/// `reason` its `error` text naming the field. Never includes a secret (writeKey) or a value
/// longer than 200 chars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub kind: &'static str,
    pub reason: String,
}

impl Unusable {
    fn new(kind: &'static str, reason: impl Into<String>) -> Self {
        Unusable { kind, reason: reason.into() }
    }
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.reason)
    }
}

impl std::error::Error for Unusable {}

/// Maps one message (an item of a batch, or a single call's body) to its records. The lead is
/// the `userId`, else the `anonymousId` ([`lead_id_of`]); the eventId the `messageId`; the
/// timestamp the device's, corrected for its clock. `track` names its eventType ([`event_type_of`]),
/// page, screen and group have theirs. An `identify` with both ids, or an `alias`, also yields a
/// merge record (`merge_into` set) on the lead that disappears; an `identify` whose traits hold a
/// name yields a NameSubmitted.
pub fn map_message(message: &Value, received: &Received) -> Result<Mapped, Unusable> {
    let compact = serde_json::to_vec(message).unwrap_or_default();
    if compact.len() > MAX_MESSAGE_BYTES {
        return Err(Unusable::new(
            "message_too_large",
            format!("the message is {} bytes serialised; the limit is {MAX_MESSAGE_BYTES}", compact.len()),
        ));
    }
    let Some(object) = message.as_object() else {
        return Err(Unusable::new("not_an_object", "a message must be a JSON object"));
    };
    let call = call_type(object, received.route_type)?;
    let base = LeadEvent {
        project_id: received.project_id.to_owned(),
        event_id: event_id_of(object, &compact, received.received_at),
        lead_id: String::new(),
        event_type: String::new(),
        timestamp: corrected_timestamp(object, received),
        properties: properties_of(object, call),
        merge_into: None,
        forwarded_from: None,
        hops: 0,
    };
    match call {
        CallType::Track => {
            // The lead first: a message naming nobody is missing its identity, whatever else.
            let lead_id = lead_of_message(object)?;
            let name = match object.get("event") {
                Some(Value::String(name)) if !name.is_empty() => name,
                _ => {
                    return Err(Unusable::new(
                        "missing_event",
                        "a track call needs event: a non-empty string",
                    ));
                }
            };
            let event_type = event_type_of(name, received.event_types);
            Ok(single(on_lead(base, lead_id, event_type)))
        }
        CallType::Page => Ok(single(on_lead(base, lead_of_message(object)?, "page_view"))),
        CallType::Screen => Ok(single(on_lead(base, lead_of_message(object)?, "screen_view"))),
        CallType::Group => Ok(single(on_lead(base, lead_of_message(object)?, "group"))),
        CallType::Identify => identify(object, base, received),
        CallType::Alias => alias(object, base),
    }
}

fn single(event: LeadEvent) -> Mapped {
    Mapped { names: Vec::new(), events: vec![event] }
}

fn on_lead(base: LeadEvent, lead_id: String, event_type: impl Into<String>) -> LeadEvent {
    LeadEvent { lead_id, event_type: event_type.into(), ..base }
}

/// The route's call type wins over the message's `type`: a client that posts to `/v1/track`
/// means a track call, whatever it left in the body.
fn call_type(object: &Map<String, Value>, route: Option<CallType>) -> Result<CallType, Unusable> {
    if let Some(call) = route {
        return Ok(call);
    }
    let expected = CallType::ALL.map(CallType::as_str).join(", ");
    match object.get("type") {
        Some(Value::String(name)) => CallType::from_type(name).ok_or_else(|| {
            Unusable::new("unknown_type", format!("type {} is not one of {expected}", quoted(name)))
        }),
        None | Some(Value::Null) => {
            Err(Unusable::new("unknown_type", format!("type is missing; it must be one of {expected}")))
        }
        Some(_) => Err(Unusable::new("unknown_type", format!("type must be a string: one of {expected}"))),
    }
}

/// `text` as a quoted string for an error message, cut to a few characters.
fn quoted(text: &str) -> String {
    let cut: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    if cut.len() < text.len() { format!("{cut:?}…") } else { format!("{cut:?}") }
}

/// An id field (`userId`, `anonymousId`, `previousId`, `messageId`, `groupId`) as text: a
/// non-empty string, or an integer as its decimal text (SDKs allow numbers as ids). Anything
/// else counts as absent.
fn id_text<'a>(object: &'a Map<String, Value>, field: &str) -> Option<Cow<'a, str>> {
    match object.get(field)? {
        Value::String(text) if !text.is_empty() => Some(Cow::Borrowed(text)),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// The lead of the SDK id sent as `field`.
fn lead_of(field: &str, sdk_id: &str) -> Result<String, Unusable> {
    lead_id_of(sdk_id).map_err(|e| Unusable::new("invalid_id", format!("{field} cannot be a lead id: {e}")))
}

/// The lead a message names, for keying its dead letter when it cannot be used: its `userId`'s,
/// else its `anonymousId`'s, whichever is an id and encodes.
pub fn lead_named(message: &Value) -> Option<String> {
    let object = message.as_object()?;
    ["userId", "anonymousId"].iter().find_map(|field| lead_id_of(&id_text(object, field)?).ok())
}

/// The message's lead: its `userId`, else its `anonymousId`.
fn lead_of_message(object: &Map<String, Value>) -> Result<String, Unusable> {
    let (field, sdk_id) = id_text(object, "userId")
        .map(|id| ("userId", id))
        .or_else(|| id_text(object, "anonymousId").map(|id| ("anonymousId", id)))
        .ok_or_else(|| {
            Unusable::new(
                "missing_identity",
                "neither userId nor anonymousId is present as a non-empty string or an integer",
            )
        })?;
    lead_of(field, &sdk_id)
}

/// `identify`: an event on the lead; a merge record when the message ties an anonymous lead to
/// a different known one; a name for enrichment when the traits hold one.
fn identify(object: &Map<String, Value>, base: LeadEvent, received: &Received) -> Result<Mapped, Unusable> {
    let lead_id = lead_of_message(object)?;
    // The anonymous id only matters for the merge, but then it matters: a merge that could not
    // be recorded is a dead letter, not a silent loss.
    let anonymous_lead = match (id_text(object, "userId"), id_text(object, "anonymousId")) {
        (Some(_), Some(anonymous_id)) => Some(lead_of("anonymousId", &anonymous_id)?),
        _ => None,
    };
    let names = object
        .get("traits")
        .and_then(Value::as_object)
        .and_then(|traits| submitted_name(traits, &lead_id, received.project_id, base.timestamp))
        .into_iter()
        .collect();
    let event = on_lead(base, lead_id, "identify");
    let merge =
        anonymous_lead.filter(|anonymous_lead| *anonymous_lead != event.lead_id).map(|anonymous_lead| {
            LeadEvent { lead_id: anonymous_lead, merge_into: Some(event.lead_id.clone()), ..event.clone() }
        });
    Ok(Mapped { names, events: std::iter::once(event).chain(merge).collect() })
}

/// `alias`: the `previousId`'s lead becomes part of the `userId`'s. An alias of a lead to
/// itself changes nothing and yields no record.
fn alias(object: &Map<String, Value>, base: LeadEvent) -> Result<Mapped, Unusable> {
    let sdk_id = |field: &str| {
        id_text(object, field).ok_or_else(|| {
            Unusable::new(
                "missing_identity",
                format!("an alias call needs {field} as a non-empty string or an integer"),
            )
        })
    };
    let previous = lead_of("previousId", &sdk_id("previousId")?)?;
    let user = lead_of("userId", &sdk_id("userId")?)?;
    if previous == user {
        return Ok(Mapped::default());
    }
    Ok(single(LeadEvent { merge_into: Some(user), ..on_lead(base, previous, "alias") }))
}

/// The NameSubmitted an identify's traits stand for: when they hold a name (`name`, else
/// `firstName` and `lastName`). Values are trimmed and cut to the records' bounds, except an
/// email, which is left out when too long or not shaped like one (a cut address is a wrong one).
fn submitted_name(
    traits: &Map<String, Value>,
    lead_id: &str,
    project_id: &str,
    submitted_at: OffsetDateTime,
) -> Option<NameSubmitted> {
    let name = trimmed(traits.get("name")).map(str::to_owned).or_else(|| {
        let parts: Vec<&str> = [trimmed(traits.get("firstName")), trimmed(traits.get("lastName"))]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    })?;
    let email = trimmed(traits.get("email"))
        .filter(|email| email.chars().count() <= MAX_EMAIL_CHARS && looks_like_email(email));
    let company = match traits.get("company") {
        Some(Value::Object(company)) => trimmed(company.get("name")),
        company => trimmed(company),
    };
    Some(NameSubmitted {
        project_id: project_id.to_owned(),
        lead_id: lead_id.to_owned(),
        name: cut_trimmed(&name, MAX_NAME_CHARS),
        email: email.map(str::to_owned),
        company: company.map(|company| cut_trimmed(company, MAX_COMPANY_CHARS)),
        submitted_at,
    })
}

/// A string `value`, trimmed; None when absent, of another type or blank.
fn trimmed(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).map(str::trim).filter(|text| !text.is_empty())
}

/// The write API's shape of an email (`write::validation`), so a name from an identify is held
/// to what a posted name is.
fn looks_like_email(email: &str) -> bool {
    email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(char::is_whitespace)
}

/// The first `max` characters of `text`.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The first `max` characters of a trimmed `text`, trimmed again where the cut left a space.
fn cut_trimmed(text: &str, max: usize) -> String {
    cut(text, max).trim_end().to_owned()
}

/// The eventId: the `messageId` (the SDK's dedup key, so a resent batch is dropped as repeats),
/// hashed when longer than an eventId may be. Without one, a UUIDv7 of the receiving time whose
/// other bits are the message's hash, so the same message received twice in the same
/// millisecond is one event.
fn event_id_of(object: &Map<String, Value>, compact: &[u8], received_at: OffsetDateTime) -> String {
    match id_text(object, "messageId") {
        Some(id) if id.chars().count() <= MAX_ID_CHARS => id.into_owned(),
        Some(id) => format!("{HASHED_MESSAGE_ID_PREFIX}{}", hex::encode(Sha256::digest(id.as_bytes()))),
        None => {
            let millis = u64::try_from(received_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            let digest = Sha256::digest(compact);
            let mut bits = [0u8; 10];
            bits.copy_from_slice(&digest[..10]);
            uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid().to_string()
        }
    }
}

/// An RFC 3339 instant in `field`; absent when missing or unparseable.
fn instant(object: &Map<String, Value>, field: &str) -> Option<OffsetDateTime> {
    object.get(field).and_then(Value::as_str).and_then(parse_instant)
}

fn parse_instant(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// When the event happened, corrected for the device's clock: the device's own time between
/// the event and sending it, counted back from when the gateway received it. Never later than
/// receiving it.
fn corrected_timestamp(object: &Map<String, Value>, received: &Received) -> OffsetDateTime {
    let happened = instant(object, "originalTimestamp").or_else(|| instant(object, "timestamp"));
    let sent = instant(object, "sentAt").or_else(|| received.batch_sent_at.and_then(parse_instant));
    let at = match (happened, sent) {
        (Some(happened), Some(sent)) => received
            .received_at
            .checked_sub(sent - happened)
            // A record's timestamp is RFC 3339, which has four-digit years only.
            .filter(|at| (0..=9999).contains(&at.year()))
            .unwrap_or(happened),
        (Some(happened), None) => happened,
        (None, _) => received.received_at,
    };
    at.min(received.received_at)
}

/// The message's `properties` (none for identify and group, whose fields are traits), a
/// group's `groupId`, and the kept subset of `context` as `properties.context`.
fn properties_of(object: &Map<String, Value>, call: CallType) -> Map<String, Value> {
    let mut properties = match call {
        CallType::Identify | CallType::Group => Map::new(),
        CallType::Track | CallType::Page | CallType::Screen | CallType::Alias => {
            object.get("properties").and_then(Value::as_object).cloned().unwrap_or_default()
        }
    };
    if call == CallType::Group
        && let Some(group_id) = id_text(object, "groupId")
    {
        properties.insert("groupId".to_owned(), Value::String(group_id.into_owned()));
    }
    let context = context_subset(object);
    if !context.is_empty() {
        properties.insert("context".to_owned(), Value::Object(context));
    }
    properties
}

/// `context.page`, `context.campaign` (the UTM parameters) and `context.userAgent`: only the
/// fields named, each a string cut to [`MAX_CONTEXT_CHARS`]; whatever else a device sends
/// (ip, locale, library, traits) is left out.
fn context_subset(object: &Map<String, Value>) -> Map<String, Value> {
    let Some(context) = object.get("context").and_then(Value::as_object) else {
        return Map::new();
    };
    let mut subset = Map::new();
    for (field, kept) in [("page", CONTEXT_PAGE_FIELDS), ("campaign", CONTEXT_CAMPAIGN_FIELDS)] {
        let strings = context.get(field).and_then(Value::as_object).map(|inner| bounded_strings(inner, kept));
        if let Some(strings) = strings.filter(|strings| !strings.is_empty()) {
            subset.insert(field.to_owned(), Value::Object(strings));
        }
    }
    if let Some(Value::String(user_agent)) = context.get("userAgent") {
        subset.insert("userAgent".to_owned(), Value::String(cut(user_agent, MAX_CONTEXT_CHARS)));
    }
    subset
}

/// The string fields of `object` named in `kept`, each cut to [`MAX_CONTEXT_CHARS`].
fn bounded_strings(object: &Map<String, Value>, kept: &[&str]) -> Map<String, Value> {
    kept.iter()
        .filter_map(|field| {
            let text = object.get(*field)?.as_str()?;
            Some(((*field).to_owned(), Value::String(cut(text, MAX_CONTEXT_CHARS))))
        })
        .collect()
}

#[cfg(test)]
mod tests;
