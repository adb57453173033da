//! The misbehaviour a test can ask of the CRM stand-in, set from flags at start or over
//! `PUT /__admin/faults` (this struct is that endpoint's JSON body).

use serde::{Deserialize, Serialize};

/// Omitted JSON fields take their default, so a `PUT` replaces every setting at once and `{}`
/// means "behave".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Faults {
    /// Delay before every answer to the upsert endpoint.
    pub latency_ms: u64,
    /// Fraction of admitted requests answered 503 before anything is applied, in [0, 1].
    pub error_rate: f64,
    /// Fraction of applied requests whose connection is dropped instead of answered, in [0, 1].
    pub drop_after_write_rate: f64,
    /// Requests allowed per burst window; `None` is unlimited.
    pub burst_limit: Option<u64>,
    /// Length of the burst window, at least 1.
    pub burst_window_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        // HubSpot's burst limit counts per ten seconds.
        Faults {
            latency_ms: 0,
            error_rate: 0.0,
            drop_after_write_rate: 0.0,
            burst_limit: None,
            burst_window_ms: 10_000,
        }
    }
}

impl Faults {
    /// Rejects settings serde accepts but the stand-in cannot honour.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in
            [("errorRate", self.error_rate), ("dropAfterWriteRate", self.drop_after_write_rate)]
        {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be within [0, 1], got {rate}"));
            }
        }
        if self.burst_window_ms == 0 {
            return Err("burstWindowMs must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_are_camel_case_and_omitted_ones_default() {
        let f: Faults = serde_json::from_str(r#"{"latencyMs":5,"dropAfterWriteRate":0.5}"#).unwrap();
        assert_eq!(f, Faults { latency_ms: 5, drop_after_write_rate: 0.5, ..Faults::default() });
        let f: Faults =
            serde_json::from_str(r#"{"errorRate":0.1,"burstLimit":3,"burstWindowMs":500}"#).unwrap();
        assert_eq!((f.error_rate, f.burst_limit, f.burst_window_ms), (0.1, Some(3), 500));
    }

    #[test]
    fn out_of_range_settings_are_rejected() {
        assert!(Faults { error_rate: 1.5, ..Faults::default() }.validate().is_err());
        assert!(Faults { drop_after_write_rate: f64::NAN, ..Faults::default() }.validate().is_err());
        assert!(Faults { burst_window_ms: 0, ..Faults::default() }.validate().is_err());
        assert!(
            Faults { error_rate: 1.0, drop_after_write_rate: 1.0, ..Faults::default() }.validate().is_ok()
        );
    }
}
