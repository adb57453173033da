//! The misbehaviour a test can ask of the stand-in, set from flags at start or over
//! `PUT /__admin/faults` (this struct is that endpoint's JSON body).

use serde::{Deserialize, Serialize};

/// Omitted JSON fields take their default, so a `PUT` replaces every setting at once and `{}`
/// means "behave".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Faults {
    /// Delay before every answer.
    pub latency_ms: u64,
    /// Fraction of admitted requests answered 503, in [0, 1].
    pub error_rate: f64,
    /// Requests allowed per window; `None` is unlimited.
    pub quota: Option<u64>,
    /// Length of the quota window, at least 1.
    pub window_s: u64,
    /// When set, requests must carry `apikey=<this>`.
    pub api_key: Option<String>,
}

impl Default for Faults {
    fn default() -> Self {
        // A day, as nationalize.io's free tier counts.
        Faults { latency_ms: 0, error_rate: 0.0, quota: None, window_s: 86_400, api_key: None }
    }
}

impl Faults {
    /// Rejects settings serde accepts but the stand-in cannot honour.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!("errorRate must be within [0, 1], got {}", self.error_rate));
        }
        if self.window_s == 0 {
            return Err("windowS must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_are_camel_case_and_omitted_ones_default() {
        let f: Faults = serde_json::from_str(r#"{"latencyMs":5,"errorRate":0.5,"quota":null}"#).unwrap();
        assert_eq!(f, Faults { latency_ms: 5, error_rate: 0.5, ..Faults::default() });
        let f: Faults = serde_json::from_str(r#"{"windowS":60,"quota":3,"apiKey":"k"}"#).unwrap();
        assert_eq!((f.window_s, f.quota, f.api_key.as_deref()), (60, Some(3), Some("k")));
    }

    #[test]
    fn out_of_range_settings_are_rejected() {
        assert!(Faults { error_rate: 1.5, ..Faults::default() }.validate().is_err());
        assert!(Faults { error_rate: f64::NAN, ..Faults::default() }.validate().is_err());
        assert!(Faults { window_s: 0, ..Faults::default() }.validate().is_err());
        assert!(Faults { error_rate: 1.0, ..Faults::default() }.validate().is_ok());
    }
}
