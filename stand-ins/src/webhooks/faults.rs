//! The misbehaviour a test can ask of the receiver, set from flags at start or over
//! `PUT /__admin/faults` (this struct is that endpoint's JSON body).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Omitted JSON fields take their default, so a `PUT` replaces every setting at once and `{}`
/// means "behave".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Faults {
    /// Delay before every answer.
    pub latency_ms: u64,
    /// How many requests to each path, counted from when the faults were set, get `fail_status`.
    pub fail_first: u64,
    pub fail_status: u16,
    /// The answer to every other request.
    pub status: u16,
    /// Faults for one path instead of these; they have no `per_path` of their own.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub per_path: BTreeMap<String, Faults>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults { latency_ms: 0, fail_first: 0, fail_status: 500, status: 200, per_path: BTreeMap::new() }
    }
}

impl Faults {
    /// The faults that apply to requests to `path`.
    pub fn for_path(&self, path: &str) -> &Faults {
        self.per_path.get(path).unwrap_or(self)
    }

    /// The status the `nth` request (from 1) to a path under these faults is answered with.
    pub fn answer(&self, nth: u64) -> u16 {
        if nth <= self.fail_first { self.fail_status } else { self.status }
    }

    /// Rejects settings serde accepts but the receiver cannot honour.
    pub fn validate(&self) -> Result<(), String> {
        for (name, status) in [("failStatus", self.fail_status), ("status", self.status)] {
            if !(200..=599).contains(&status) {
                return Err(format!("{name} must be a final HTTP status (200 to 599), got {status}"));
            }
        }
        for (path, faults) in &self.per_path {
            if !path.starts_with('/') || path.starts_with("/__admin/") {
                return Err(format!("perPath keys are paths outside /__admin/, got {path:?}"));
            }
            if !faults.per_path.is_empty() {
                return Err(format!("perPath.{path} cannot have a perPath of its own"));
            }
            faults.validate().map_err(|e| format!("perPath.{path}: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_are_camel_case_omitted_ones_default_and_paths_override() {
        let f: Faults =
            serde_json::from_str(r#"{"latencyMs":5,"failFirst":2,"perPath":{"/b":{"status":204}}}"#).unwrap();
        assert_eq!((f.latency_ms, f.fail_first, f.fail_status, f.status), (5, 2, 500, 200));
        assert_eq!(f.for_path("/a"), &f);
        let b = f.for_path("/b");
        assert_eq!((b.latency_ms, b.fail_first, b.status), (0, 0, 204));
        assert!(serde_json::from_str::<Faults>(r#"{"failFirts":2}"#).is_err());
    }

    #[test]
    fn the_first_requests_fail_then_the_status_is_answered() {
        let f = Faults { fail_first: 2, fail_status: 503, status: 202, ..Faults::default() };
        assert_eq!([1, 2, 3, 4].map(|n| f.answer(n)), [503, 503, 202, 202]);
        assert_eq!(Faults::default().answer(1), 200);
    }

    #[test]
    fn out_of_range_settings_are_rejected() {
        assert!(Faults { status: 99, ..Faults::default() }.validate().is_err());
        assert!(Faults { fail_status: 600, ..Faults::default() }.validate().is_err());
        let nested = Faults { per_path: [("/a".to_owned(), Faults::default())].into(), ..Faults::default() };
        assert!(nested.validate().is_ok());
        let twice = Faults { per_path: [("/b".to_owned(), nested.clone())].into(), ..Faults::default() };
        assert!(twice.validate().unwrap_err().contains("perPath./b"));
        let admin = Faults {
            per_path: [("/__admin/stats".to_owned(), Faults::default())].into(),
            ..Faults::default()
        };
        assert!(admin.validate().is_err());
        let bad = Faults {
            per_path: [("/a".to_owned(), Faults { status: 1, ..Faults::default() })].into(),
            ..nested
        };
        assert!(bad.validate().unwrap_err().contains("perPath./a: status"));
    }
}
