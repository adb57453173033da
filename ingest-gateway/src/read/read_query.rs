//! The read API's query parameters and its opaque page cursor. Pure: every parameter is
//! checked here, before any query reaches MongoDB, and a bad one is named in the 400.

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

/// Where the previous page ended, sent to clients as the text `<score>~<ms>~<leadId>` (the
/// OpenAPI document gives its pattern, [`CURSOR_PATTERN`]). In recent order: the last lead's
/// stored score, its last activity (ms since the epoch) and its id. In score order: the last
/// lead's score as of the ranking instant, that instant (ms since the epoch), and its id, so that
/// every page ranks at the instant of the first. The score is written as Rust's `{:e}`, which
/// reads back to the same bits (a decimal rounded by hand may be off by one unit in the last
/// place, which would repeat or skip a lead at the page boundary).
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub score: f64,
    pub at: i64,
    pub id: String,
}

/// What [`Cursor::decode`] accepts, as the OpenAPI document states it for `cursor`.
pub const CURSOR_PATTERN: &str = r"^-?[0-9]+(\.[0-9]+)?(e-?[0-9]+)?~-?[0-9]{1,18}~[A-Za-z0-9._:@-]{1,128}$";

impl Cursor {
    /// After the lead with `score`, last activity `last_activity_ms` and `id`.
    pub fn after(score: f64, last_activity_ms: i64, id: &str) -> Self {
        Cursor { score, at: last_activity_ms, id: id.to_owned() }
    }

    pub fn encode(&self) -> String {
        format!("{:e}~{}~{}", self.score, self.at, self.id)
    }

    /// The cursor in `text`, or why it is not one. Accepts exactly [`CURSOR_PATTERN`] (at most
    /// 512 characters): a score too large for an f64 reads as infinity, which is still a place.
    pub fn decode(text: &str) -> Result<Cursor, String> {
        if text.chars().count() > MAX_CURSOR_CHARS {
            return Err("is too long to be a cursor".to_owned());
        }
        let shape = || "is not <score>~<lastActivityMs>~<leadId>".to_owned();
        let mut parts = text.splitn(3, '~');
        let (Some(score), Some(at), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(shape());
        };
        if !is_score_text(score) {
            return Err("holds no valid score".to_owned());
        }
        let digits = at.strip_prefix('-').unwrap_or(at);
        if !(1..=18).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("holds no valid lastActivityMs (1 to 18 digits)".to_owned());
        }
        let id_ok = (1..=128).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:@".contains(&b));
        if !id_ok {
            return Err("holds no valid lead id".to_owned());
        }
        Ok(Cursor {
            score: score.parse().map_err(|_| "holds no valid score".to_owned())?,
            at: at.parse().map_err(|_| shape())?,
            id: id.to_owned(),
        })
    }
}

/// `-?[0-9]+(\.[0-9]+)?(e-?[0-9]+)?`: what `{:e}` writes for a finite f64, and no more.
fn is_score_text(text: &str) -> bool {
    fn digits(text: &str) -> bool {
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
    }
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once('e') {
        Some((m, e)) => (m, Some(e.strip_prefix('-').unwrap_or(e))),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(digits)
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

pub(crate) fn limit(value: &str, max: u32) -> Result<u32, FieldError> {
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
pub(crate) fn known_once<'a>(
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
    if let Some(text) = cursor_text {
        match Cursor::decode(text) {
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
        let cursor = Cursor::after(42.5, 7, "lead-1").encode();
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
        assert_eq!(query.after, Some(Cursor::after(42.5, 7, "lead-1")));
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
        let long = format!("1e0~1~{}", "a".repeat(600));
        let id_129 = format!("1e0~1~{}", "a".repeat(129));
        for text in [
            "",
            "***",
            "a",
            "1e0~1",
            "~1~a",
            "NaN~1~a",
            "inf~1~a",
            "many~1~a",
            "+1~1~a",
            "1.~1~a",
            ".5~1~a",
            "1e~1~a",
            "1E5~1~a",
            "1e0~~a",
            "1e0~1.5~a",
            "1e0~1234567890123456789~a",
            "1e0~1~",
            "1e0~1~lead 1",
            "1e0~1~a~b",
            "1e0~1~léad",
            "eyJzb3J0IjoicmVjZW50IiwiYXQiOjEsImlkIjoiYSJ9",
            &id_129,
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
        for text in ["0~0~a", "-1.25e-7~-123456789012345678~a.b_c:d@e-f", "1e99999~1~a", "12~3~x"] {
            assert!(Cursor::decode(text).is_ok(), "{text:?} matches the documented pattern");
        }
        assert_eq!(Cursor::decode("1e99999~1~a").unwrap().score, f64::INFINITY, "still a place");
    }

    /// It carries both sort keys: a cursor continues either order.
    #[test]
    fn a_cursor_continues_either_sort_order() {
        let cursor = Cursor::after(1.0, 5, "a").encode();
        for sort in ["score", "recent"] {
            let query = parse_list_query(&pairs(&[("cursor", &cursor), ("sort", sort)])).unwrap();
            assert_eq!(query.after, Some(Cursor::after(1.0, 5, "a")), "{sort}");
        }
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
        fn cursors_round_trip_exactly(score in prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL, at in -999_999_999_999_999_999i64..=999_999_999_999_999_999, id in "[A-Za-z0-9._:@-]{1,128}") {
            let cursor = Cursor::after(score, at, &id);
            let text = cursor.encode();
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~:@".contains(&b)), "URL-safe: {}", text);
            let back = Cursor::decode(&text).unwrap();
            prop_assert_eq!(back.score.to_bits(), score.to_bits());
            prop_assert_eq!(back, cursor);
        }

        /// Whatever a client sends as a cursor, the answer is a cursor or an error, never a panic.
        #[test]
        fn any_text_decodes_or_fails_cleanly(text in ".{0,80}") {
            let _ = Cursor::decode(&text);
        }
    }
}
