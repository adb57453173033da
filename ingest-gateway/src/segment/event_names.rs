//! Segment event names as LeadFlow event types. Segment's names are free text
//! (`"Order Completed"`); an eventType is `^[a-z][a-z0-9_]{0,63}$`, the key of scoring rules.

use std::collections::BTreeMap;

use crate::write::validation::check_event_type;

/// The longest eventType.
pub const MAX_EVENT_TYPE_CHARS: usize = 64;

/// What a name normalises to when nothing of it is left, and the prefix of one that starts with a
/// digit (an eventType starts with a letter).
const EMPTY_OR_DIGIT_PREFIX: &str = "e_";

/// The project's map first (exact name), else the default normalisation: ASCII-lowercase,
/// every run of characters outside [a-z0-9] → one '_', trimmed of '_', "e_" prefixed when empty
/// or starting with a digit, cut to 64 characters (and trailing '_' trimmed again).
///
/// A mapped value that is not a valid eventType (the project's map is checked when it is saved,
/// so only a stale map has one) is passed over for the default normalisation.
pub fn event_type_of(name: &str, map: &BTreeMap<String, String>) -> String {
    match map.get(name) {
        Some(mapped) if check_event_type(mapped).is_ok() => mapped.clone(),
        _ => normalised(name),
    }
}

/// The default normalisation of [`event_type_of`].
pub fn normalised(name: &str) -> String {
    let mut words = String::with_capacity(name.len());
    for c in name.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            words.push(c);
        } else if !words.ends_with('_') {
            words.push('_');
        }
    }
    let words = words.trim_matches('_');
    let mut event_type = match words.chars().next() {
        None => return EMPTY_OR_DIGIT_PREFIX.to_owned(),
        Some(c) if c.is_ascii_digit() => format!("{EMPTY_OR_DIGIT_PREFIX}{words}"),
        Some(_) => words.to_owned(),
    };
    // Every character is ASCII here, so bytes are characters.
    if event_type.len() > MAX_EVENT_TYPE_CHARS {
        event_type.truncate(MAX_EVENT_TYPE_CHARS);
        let kept = event_type.trim_end_matches('_').len();
        event_type.truncate(kept);
    }
    event_type
}

#[cfg(test)]
mod tests;
