//! The read API's query parameters and its opaque page cursor. Pure: every parameter is
//! checked here, before any query reaches MongoDB, and a bad one is named in the 400.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use leadflow_core::contract::records::Stage;
use leadflow_core::model::read_model::LeadStatus;

use crate::error::FieldError;

pub const DEFAULT_LIST_LIMIT: u32 = 25;
pub const DEFAULT_LEADERBOARD_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 100;
/// The longest name search, in characters.
pub const MAX_SEARCH_CHARS: usize = 100;
/// A cursor is a few dozen bytes; anything much longer is not one of ours.
const MAX_CURSOR_CHARS: usize = 512;

pub const STATUSES: [LeadStatus; 3] = [LeadStatus::Verified, LeadStatus::ToCheck, LeadStatus::Rejected];
pub const STAGES: [Stage; 4] = [Stage::Cold, Stage::Warm, Stage::Hot, Stage::Qualified];

pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Cold => "cold",
        Stage::Warm => "warm",
        Stage::Hot => "hot",
        Stage::Qualified => "qualified",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// `(score desc, _id asc)`.
    Score,
    /// `(lastActivityMs desc, _id asc)`.
    #[default]
    Recent,
}

/// Where the previous page ended: the last lead's sort key and id. Sent to clients as base64url
/// (no padding) JSON; they pass it back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "sort", rename_all = "lowercase", deny_unknown_fields)]
pub enum Cursor {
    /// The score is carried as text (`{:e}`): Rust's float formatting round-trips exactly, a JSON number
    /// read back by serde_json may be off by one unit in the last place, which would repeat or
    /// skip a lead at the page boundary.
    Score {
        score: String,
        id: String,
    },
    Recent {
        at: i64,
        id: String,
    },
}

impl Cursor {
    pub fn after_score(score: f64, id: &str) -> Self {
        Cursor::Score { score: format!("{score:e}"), id: id.to_owned() }
    }

    pub fn after_recent(last_activity_ms: i64, id: &str) -> Self {
        Cursor::Recent { at: last_activity_ms, id: id.to_owned() }
    }

    pub fn sort(&self) -> SortOrder {
        match self {
            Cursor::Score { .. } => SortOrder::Score,
            Cursor::Recent { .. } => SortOrder::Recent,
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a cursor serialises"))
    }

    /// The cursor in `text`, or why it is not one.
    pub fn decode(text: &str) -> Result<Cursor, String> {
        if text.chars().count() > MAX_CURSOR_CHARS {
            return Err("is too long to be a cursor".to_owned());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| "is not base64url".to_owned())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| "is not a cursor".to_owned())?;
        let id = match &cursor {
            Cursor::Score { score, id } => {
                if !score.parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err("holds no valid score".to_owned());
                }
                id
            }
            Cursor::Recent { id, .. } => id,
        };
        if id.is_empty() {
            return Err("holds no lead id".to_owned());
        }
        Ok(cursor)
    }

    /// The score of a `Score` cursor (checked finite by `decode`).
    pub fn score(&self) -> Option<f64> {
        match self {
            Cursor::Score { score, .. } => score.parse().ok(),
            Cursor::Recent { .. } => None,
        }
    }
}

/// `GET /api/leads`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub status: Option<LeadStatus>,
    pub stage: Option<Stage>,
    /// The name search, trimmed and lower-cased; `None` when absent or blank.
    pub name_contains: Option<String>,
    pub sort: SortOrder,
    pub limit: u32,
    pub after: Option<Cursor>,
}

fn error(field: &str, reason: &'static str, message: String) -> FieldError {
    FieldError { field: field.to_owned(), reason, message }
}

fn one_of<T: Copy>(
    field: &str,
    value: &str,
    allowed: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, FieldError> {
    allowed.iter().copied().find(|a| name(*a) == value).ok_or_else(|| {
        let names: Vec<&str> = allowed.iter().map(|a| name(*a)).collect();
        error(field, "invalid_value", format!("{field} must be one of {}; got {value:?}", names.join(", ")))
    })
}

fn limit(value: &str, max: u32) -> Result<u32, FieldError> {
    match value.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(error(
            "limit",
            "invalid_value",
            format!("limit must be an integer from 1 to {max}; got {value:?}"),
        )),
    }
}

/// Checks that each parameter is known and given once; returns them in order.
fn known_once<'a>(
    pairs: &'a [(String, String)],
    known: &[&str],
) -> Result<Vec<(&'a str, &'a str)>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (key, _) in pairs {
        if !known.contains(&key.as_str()) {
            errors.push(error(
                key,
                "unknown_field",
                format!("unknown query parameter {key:?}; known: {}", known.join(", ")),
            ));
        } else if seen.contains(&key.as_str()) {
            errors.push(error(key, "too_many", format!("{key} may be given once")));
        } else {
            seen.push(key);
        }
    }
    if errors.is_empty() {
        Ok(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
    } else {
        Err(errors)
    }
}

/// `status`, `stage`, `q`, `sort`, `limit`, `cursor`: every error, each naming its parameter.
pub fn parse_list_query(pairs: &[(String, String)]) -> Result<ListQuery, Vec<FieldError>> {
    let pairs = known_once(pairs, &["status", "stage", "q", "sort", "limit", "cursor"])?;
    let mut query = ListQuery {
        status: None,
        stage: None,
        name_contains: None,
        sort: SortOrder::default(),
        limit: DEFAULT_LIST_LIMIT,
        after: None,
    };
    let mut errors = Vec::new();
    let mut cursor_text = None;
    for (key, value) in pairs {
        let parsed = match key {
            "status" => one_of(key, value, &STATUSES, LeadStatus::as_str).map(|s| query.status = Some(s)),
            "stage" => one_of(key, value, &STAGES, stage_name).map(|s| query.stage = Some(s)),
            "sort" => one_of(key, value, &[SortOrder::Score, SortOrder::Recent], |s| match s {
                SortOrder::Score => "score",
                SortOrder::Recent => "recent",
            })
            .map(|s| query.sort = s),
            "limit" => limit(value, MAX_LIMIT).map(|n| query.limit = n),
            "q" => {
                let q = value.trim();
                if q.chars().count() > MAX_SEARCH_CHARS {
                    Err(error("q", "too_long", format!("q must be at most {MAX_SEARCH_CHARS} characters")))
                } else {
                    query.name_contains = (!q.is_empty()).then(|| q.to_lowercase());
                    Ok(())
                }
            }
            _ => {
                cursor_text = Some(value);
                Ok(())
            }
        };
        errors.extend(parsed.err());
    }
    // After the loop: whether the cursor fits depends on `sort`, wherever it stood.
    if let Some(text) = cursor_text {
        match Cursor::decode(text) {
            Ok(cursor) if cursor.sort() != query.sort => errors.push(error(
                "cursor",
                "invalid_value",
                "cursor belongs to another sort order; pass the same sort as the page it came from"
                    .to_owned(),
            )),
            Ok(cursor) => query.after = Some(cursor),
            Err(why) => errors.push(error(
                "cursor",
                "invalid_format",
                format!("cursor {why}; pass nextCursor unchanged"),
            )),
        }
    }
    if errors.is_empty() { Ok(query) } else { Err(errors) }
}

/// `GET /api/leaderboard`: `limit` only.
pub fn parse_leaderboard_query(pairs: &[(String, String)]) -> Result<u32, Vec<FieldError>> {
    let pairs = known_once(pairs, &["limit"])?;
    match pairs.first() {
        Some((_, value)) => limit(value, MAX_LIMIT).map_err(|e| vec![e]),
        None => Ok(DEFAULT_LEADERBOARD_LIMIT),
    }
}

/// The query parameters `GET /api/leads/{id}` and its sub-resources take: none.
pub fn parse_no_query(pairs: &[(String, String)]) -> Result<(), Vec<FieldError>> {
    known_once(pairs, &[]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn fields(result: Result<ListQuery, Vec<FieldError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn no_parameters_is_the_default_query() {
        assert_eq!(
            parse_list_query(&[]).unwrap(),
            ListQuery {
                status: None,
                stage: None,
                name_contains: None,
                sort: SortOrder::Recent,
                limit: 25,
                after: None
            }
        );
    }

    #[test]
    fn every_parameter_parses() {
        let cursor = Cursor::after_score(42.5, "lead-1").encode();
        let query = parse_list_query(&pairs(&[
            ("status", "To Check"),
            ("stage", "hot"),
            ("q", "  ÉLan "),
            ("sort", "score"),
            ("limit", "100"),
            ("cursor", &cursor),
        ]))
        .unwrap();
        assert_eq!(query.status, Some(LeadStatus::ToCheck));
        assert_eq!(query.stage, Some(Stage::Hot));
        assert_eq!(query.name_contains.as_deref(), Some("élan"));
        assert_eq!((query.sort, query.limit), (SortOrder::Score, 100));
        assert_eq!(query.after, Some(Cursor::after_score(42.5, "lead-1")));
        assert_eq!(
            parse_list_query(&pairs(&[("q", "   ")])).unwrap().name_contains,
            None,
            "blank is no search"
        );
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("status", "verified", "Verified, To Check, Rejected"),
            ("stage", "Hot", "cold, warm, hot, qualified"),
            ("sort", "name", "score, recent"),
            ("limit", "0", "1 to 100"),
            ("limit", "101", "1 to 100"),
            ("limit", "ten", "1 to 100"),
            ("limit", "-1", "1 to 100"),
        ];
        for (key, value, listed) in cases {
            let errors = parse_list_query(&pairs(&[(key, value)])).unwrap_err();
            assert_eq!(errors.len(), 1, "{key}={value}");
            assert_eq!(errors[0].field, *key);
            assert_eq!(errors[0].reason, "invalid_value");
            assert!(errors[0].message.contains(listed), "{key}={value}: {}", errors[0].message);
        }
        let long = "a".repeat(101);
        assert_eq!(fields(parse_list_query(&pairs(&[("q", &long)]))), ["q"]);
        assert!(parse_list_query(&pairs(&[("q", &"é".repeat(100))])).is_ok(), "100 characters, not bytes");
        assert_eq!(fields(parse_list_query(&pairs(&[("page", "2")]))), ["page"]);
        assert_eq!(fields(parse_list_query(&pairs(&[("stage", "hot"), ("stage", "warm")]))), ["stage"]);
        assert_eq!(
            fields(parse_list_query(&pairs(&[("status", "x"), ("limit", "0"), ("cursor", "!")]))),
            ["status", "limit", "cursor"],
            "every error at once"
        );
    }

    #[test]
    fn malformed_cursors_are_named() {
        let not_json = URL_SAFE_NO_PAD.encode(b"hello");
        let wrong_shape = URL_SAFE_NO_PAD.encode(br#"{"sort":"score","id":"a"}"#);
        let extra_field = URL_SAFE_NO_PAD.encode(br#"{"sort":"recent","at":1,"id":"a","x":1}"#);
        let bad_score = URL_SAFE_NO_PAD.encode(br#"{"sort":"score","score":"NaN","id":"a"}"#);
        let text_score = URL_SAFE_NO_PAD.encode(br#"{"sort":"score","score":"many","id":"a"}"#);
        let empty_id = URL_SAFE_NO_PAD.encode(br#"{"sort":"recent","at":1,"id":""}"#);
        let padded = format!("{}=", Cursor::after_recent(1, "a").encode());
        let long = "A".repeat(600);
        for text in [
            "",
            "***",
            "a",
            &not_json,
            &wrong_shape,
            &extra_field,
            &bad_score,
            &text_score,
            &empty_id,
            &padded,
            &long,
        ] {
            let errors = parse_list_query(&pairs(&[("sort", "recent"), ("cursor", text)])).unwrap_err();
            assert_eq!(errors.len(), 1, "{text:?}");
            assert_eq!(
                (errors[0].field.as_str(), errors[0].reason),
                ("cursor", "invalid_format"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_cursor_of_the_other_sort_is_refused_wherever_sort_stands() {
        let score_cursor = Cursor::after_score(1.0, "a").encode();
        for order in [
            [("cursor", score_cursor.as_str()), ("sort", "recent")],
            [("sort", "recent"), ("cursor", &score_cursor)],
        ] {
            assert_eq!(fields(parse_list_query(&pairs(&order))), ["cursor"]);
        }
        let recent = Cursor::after_recent(5, "a").encode();
        assert_eq!(fields(parse_list_query(&pairs(&[("cursor", &recent), ("sort", "score")]))), ["cursor"]);
        assert!(parse_list_query(&pairs(&[("cursor", &recent)])).is_ok(), "recent is the default sort");
    }

    #[test]
    fn the_leaderboard_takes_a_limit_only() {
        assert_eq!(parse_leaderboard_query(&[]).unwrap(), 10);
        assert_eq!(parse_leaderboard_query(&pairs(&[("limit", "3")])).unwrap(), 3);
        assert_eq!(parse_leaderboard_query(&pairs(&[("limit", "0")])).unwrap_err()[0].field, "limit");
        assert_eq!(parse_leaderboard_query(&pairs(&[("stage", "hot")])).unwrap_err()[0].field, "stage");
        assert_eq!(parse_no_query(&pairs(&[("x", "1")])).unwrap_err()[0].field, "x");
    }

    proptest! {
        #[test]
        fn score_cursors_round_trip_exactly(score in prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL, id in "[A-Za-z0-9._:@-]{1,128}") {
            let cursor = Cursor::after_score(score, &id);
            let back = Cursor::decode(&cursor.encode()).unwrap();
            prop_assert_eq!(back.score().unwrap().to_bits(), score.to_bits());
            prop_assert_eq!(back, cursor);
        }

        #[test]
        fn recent_cursors_round_trip(at in any::<i64>(), id in "[A-Za-z0-9._:@-]{1,128}") {
            let cursor = Cursor::after_recent(at, &id);
            let text = cursor.encode();
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {}", text);
            prop_assert_eq!(Cursor::decode(&text).unwrap(), cursor);
        }

        /// Whatever a client sends as a cursor, the answer is a cursor or an error, never a panic.
        #[test]
        fn any_text_decodes_or_fails_cleanly(text in ".{0,80}") {
            let _ = Cursor::decode(&text);
        }
    }
}
