//! The `[auth]` section. The admin token and the JWT secret have no defaults: a gateway without
//! them refuses to start (exit 2), naming the environment variable that sets each, so that no
//! deployment runs with a guessable credential.

use std::time::Duration;

use serde::Deserialize;

use leadflow_core::runtime::duration::millis_or_humantime;
use leadflow_core::runtime::secret::Secret;

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 24;
/// The shortest JWT secret accepted (HS256 wants at least 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
pub const ADMIN_TOKEN_ENV: &str = "LEADFLOW_AUTH__ADMIN_TOKEN";
pub const JWT_SECRET_ENV: &str = "LEADFLOW_AUTH__JWT_SECRET";

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawAuthConfig")]
pub struct AuthConfig {
    /// The bootstrap credential of the management API (`Authorization: Bearer <token>`).
    pub admin_token: Secret,
    /// Signs the dashboard's session JWTs (HS256); used by `crate::users`.
    pub jwt_secret: Secret,
    /// How long a dashboard session lasts.
    pub session_ttl: Duration,
    /// How long a replica trusts what it read of a key or a project: the bound on how long a
    /// revoked key still works, and how often an open stream re-checks its key.
    pub cache_ttl: Duration,
    /// The rate limit of a key whose key and project set none, in events per minute.
    pub default_events_per_minute: u32,
    /// Adds `Secure` to the session cookie (set it behind TLS).
    pub cookie_secure: bool,
}

/// As written; [`AuthConfig`] is this, checked. The secrets default to empty so that their
/// absence is reported by the check, naming the variable, rather than as serde's missing field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthConfig {
    #[serde(default)]
    admin_token: Secret,
    #[serde(default)]
    jwt_secret: Secret,
    #[serde(alias = "session_ttl_ms", deserialize_with = "millis_or_humantime")]
    session_ttl: Duration,
    #[serde(alias = "cache_ttl_ms", deserialize_with = "millis_or_humantime")]
    cache_ttl: Duration,
    default_events_per_minute: u32,
    cookie_secure: bool,
}

impl TryFrom<RawAuthConfig> for AuthConfig {
    type Error = String;

    fn try_from(raw: RawAuthConfig) -> Result<Self, String> {
        if raw.admin_token.expose().chars().count() < MIN_ADMIN_TOKEN_CHARS {
            return Err(format!(
                "auth.admin_token is {}; set {ADMIN_TOKEN_ENV} to a random token of at least \
                 {MIN_ADMIN_TOKEN_CHARS} characters",
                if raw.admin_token.is_empty() { "missing" } else { "too short" }
            ));
        }
        if raw.jwt_secret.expose().len() < MIN_JWT_SECRET_BYTES {
            return Err(format!(
                "auth.jwt_secret is {}; set {JWT_SECRET_ENV} to a random secret of at least \
                 {MIN_JWT_SECRET_BYTES} bytes",
                if raw.jwt_secret.is_empty() { "missing" } else { "too short" }
            ));
        }
        if raw.cache_ttl.is_zero() {
            return Err("auth.cache_ttl must be more than 0".to_owned());
        }
        if raw.default_events_per_minute == 0 || raw.default_events_per_minute > super::MAX_EVENTS_PER_MINUTE
        {
            return Err(format!(
                "auth.default_events_per_minute must be 1..={}",
                super::MAX_EVENTS_PER_MINUTE
            ));
        }
        Ok(AuthConfig {
            admin_token: raw.admin_token,
            jwt_secret: raw.jwt_secret,
            session_ttl: raw.session_ttl,
            cache_ttl: raw.cache_ttl,
            default_events_per_minute: raw.default_events_per_minute,
            cookie_secure: raw.cookie_secure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: serde_json::Value) -> Result<AuthConfig, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    fn full() -> serde_json::Value {
        serde_json::json!({
            "admin_token": "a".repeat(24), "jwt_secret": "j".repeat(32), "session_ttl": "1h",
            "cache_ttl": "2s", "default_events_per_minute": 100, "cookie_secure": false,
        })
    }

    #[test]
    fn a_full_section_reads_with_durations_and_hidden_secrets() {
        let config = parse(full()).unwrap();
        assert_eq!(config.cache_ttl, Duration::from_secs(2));
        assert_eq!(config.session_ttl, Duration::from_secs(3600));
        assert!(!format!("{config:?}").contains("aaaa"), "{config:?}");
    }

    #[test]
    fn a_missing_or_short_secret_names_its_variable_and_never_quotes_it() {
        for (field, value, env, says) in [
            ("admin_token", None, ADMIN_TOKEN_ENV, "missing"),
            ("admin_token", Some("short-token-123"), ADMIN_TOKEN_ENV, "too short"),
            ("jwt_secret", None, JWT_SECRET_ENV, "missing"),
            ("jwt_secret", Some("short-secret-456"), JWT_SECRET_ENV, "too short"),
        ] {
            let mut config = full();
            match value {
                Some(v) => config[field] = v.into(),
                None => {
                    config.as_object_mut().unwrap().remove(field);
                }
            }
            let error = parse(config).unwrap_err();
            assert!(error.contains(env) && error.contains(says), "{error}");
            assert!(value.is_none_or(|v| !error.contains(v)), "{error}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let mut config = full();
        config["cache_tll"] = "1s".into();
        assert!(parse(config).unwrap_err().contains("cache_tll"));
    }
}
