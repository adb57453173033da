//! The misbehaviour a test can ask of the CRM stand-in, set from flags at start or over
//! `PUT /__admin/faults` (this struct is that endpoint's JSON body).

use serde::{Deserialize, Serialize};

use super::settings::Mode;

/// Omitted JSON fields take their default, so a `PUT` replaces every setting at once and `{}`
/// means "behave". The HubSpot-mode fields are left out of the JSON while at their defaults, so
/// the versioned mode's JSON is what it always was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Faults {
    /// Delay before every answer to the upsert endpoint (and, in HubSpot mode, batch read).
    pub latency_ms: u64,
    /// Fraction of admitted requests answered 503 before anything is applied, in [0, 1].
    pub error_rate: f64,
    /// Fraction of applied requests whose connection is dropped instead of answered, in [0, 1].
    pub drop_after_write_rate: f64,
    /// Requests allowed per burst window; `None` is unlimited.
    pub burst_limit: Option<u64>,
    /// Length of the burst window, at least 1.
    pub burst_window_ms: u64,
    /// HubSpot mode: fraction of valid upserts held for `late_apply_delay_ms`, then applied,
    /// then answered, in [0, 1].
    #[serde(skip_serializing_if = "is_zero_rate")]
    pub late_apply_rate: f64,
    /// HubSpot mode: how long a late apply is held.
    #[serde(skip_serializing_if = "is_default_late_delay")]
    pub late_apply_delay_ms: u64,
    /// HubSpot mode: requests allowed per UTC day; `None` is unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_limit: Option<u64>,
    /// HubSpot mode: every non-admin request is answered 403 `MISSING_SCOPES`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missing_scopes: bool,
    /// HubSpot mode: how a batch upsert with a conflicting email is answered.
    #[serde(skip_serializing_if = "ConflictAnswer::is_default")]
    pub conflict_answer: ConflictAnswer,
}

/// How HubSpot answers a batch in which some input's email belongs to another contact: that is
/// unverified, so the stand-in can do either and the sink must survive both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConflictAnswer {
    /// The other inputs are applied; the request is answered 207 (409 for a lone input).
    #[default]
    MultiStatus,
    /// The whole request is answered 409 and nothing of it is applied.
    WholeBatch,
}

impl ConflictAnswer {
    fn is_default(&self) -> bool {
        *self == ConflictAnswer::default()
    }
}

const DEFAULT_LATE_APPLY_DELAY_MS: u64 = 1_000;

fn is_zero_rate(rate: &f64) -> bool {
    *rate == 0.0
}

fn is_default_late_delay(ms: &u64) -> bool {
    *ms == DEFAULT_LATE_APPLY_DELAY_MS
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
            late_apply_rate: 0.0,
            late_apply_delay_ms: DEFAULT_LATE_APPLY_DELAY_MS,
            daily_limit: None,
            missing_scopes: false,
            conflict_answer: ConflictAnswer::MultiStatus,
        }
    }
}

impl Faults {
    /// Rejects settings serde accepts but the stand-in cannot honour.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("errorRate", self.error_rate),
            ("dropAfterWriteRate", self.drop_after_write_rate),
            ("lateApplyRate", self.late_apply_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be within [0, 1], got {rate}"));
            }
        }
        if self.burst_window_ms == 0 {
            return Err("burstWindowMs must be at least 1".into());
        }
        Ok(())
    }

    /// A `PUT /__admin/faults` body, judged for `mode`; the error names the bad field.
    pub fn from_json(body: &[u8], mode: Mode) -> Result<Faults, String> {
        let faults = serde_json::from_slice::<Faults>(body).map_err(|e| e.to_string())?;
        faults.validate_for(mode).map(|()| faults)
    }

    /// [`validate`](Self::validate), and in the versioned mode no HubSpot-only fault: it would
    /// be silently ignored there.
    pub fn validate_for(&self, mode: Mode) -> Result<(), String> {
        self.validate()?;
        let defaults = Faults::default();
        let hubspot_only = [
            ("lateApplyRate", self.late_apply_rate != defaults.late_apply_rate),
            ("lateApplyDelayMs", self.late_apply_delay_ms != defaults.late_apply_delay_ms),
            ("dailyLimit", self.daily_limit.is_some()),
            ("missingScopes", self.missing_scopes),
            ("conflictAnswer", self.conflict_answer != defaults.conflict_answer),
        ];
        match hubspot_only.iter().find(|(_, set)| *set) {
            Some((name, _)) if mode == Mode::Versioned => Err(format!("{name} applies only in hubspot mode")),
            _ => Ok(()),
        }
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
        assert!(Faults { late_apply_rate: 1.1, ..Faults::default() }.validate().is_err());
    }

    #[test]
    fn hubspot_only_faults_are_refused_in_the_versioned_mode_and_hidden_while_default() {
        let late = Faults { late_apply_rate: 0.5, ..Faults::default() };
        assert!(late.validate_for(Mode::Versioned).unwrap_err().contains("lateApplyRate"));
        assert!(late.validate_for(Mode::HubSpot).is_ok());
        let scoped = Faults { missing_scopes: true, ..Faults::default() };
        assert!(scoped.validate_for(Mode::Versioned).unwrap_err().contains("missingScopes"));
        let json = serde_json::to_value(Faults::default()).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 5, "{json}");
        let f: Faults =
            serde_json::from_str(r#"{"conflictAnswer":"wholeBatch","dailyLimit":3,"lateApplyDelayMs":600}"#)
                .unwrap();
        assert_eq!(
            (f.conflict_answer, f.daily_limit, f.late_apply_delay_ms),
            (ConflictAnswer::WholeBatch, Some(3), 600)
        );
    }
}
