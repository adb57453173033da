//! Layered configuration: embedded defaults, then an optional TOML file, then `LEADFLOW_`
//! environment variables (`__` separates levels: `LEADFLOW_KAFKA__BOOTSTRAP_SERVERS`).
//! Every config struct uses `deny_unknown_fields`, so a misspelt key fails at start-up with
//! its name rather than being silently ignored. Durations are humantime strings ("50ms",
//! "30s"), and their old unit-suffixed names still work ([`crate::runtime::duration`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::runtime::duration;

pub const ENV_PREFIX: &str = "LEADFLOW_";
/// `LEADFLOW_CONFIG` names the config file; it is not itself a config key.
pub const CONFIG_FILE_ENV: &str = "LEADFLOW_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {} does not exist", path.display())]
    MissingFile { path: PathBuf },
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
}

/// Loads `T` from the three layers. `file` wins over the defaults, the environment over both.
/// `embedded_defaults` are TOML texts compiled into the binary, later ones overriding earlier
/// ones: the shared defaults first, then the service's own.
pub fn load<T: DeserializeOwned>(embedded_defaults: &[&str], file: Option<&Path>) -> Result<T, ConfigError> {
    let mut layers: Vec<Layer> =
        embedded_defaults.iter().map(|text| Layer::read(Toml::string(text))).collect();
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::MissingFile { path: path.to_owned() });
        }
        layers.push(Layer::read(Toml::file_exact(path)));
    }
    let env = Env::prefixed(ENV_PREFIX).ignore(&[&CONFIG_FILE_ENV[ENV_PREFIX.len()..]]).split("__");
    layers.push(Layer::read(env));
    // A key a layer sets under its old (or new) name replaces the other name's value below it.
    for i in 1..layers.len() {
        let (earlier, later) = layers.split_at_mut(i);
        if let Ok(later) = &later[0].data {
            for earlier in earlier.iter_mut().filter_map(|layer| layer.data.as_mut().ok()) {
                for (profile, table) in earlier.iter_mut() {
                    if let Some(later_table) = later.get(profile) {
                        duration::supersede(table, later_table);
                    }
                }
            }
        }
    }
    let figment = layers.into_iter().fold(Figment::new(), Figment::merge);
    figment.extract().map_err(|e| ConfigError::Invalid(Box::new(e)))
}

/// One layer, read once: its data can be edited before it is merged, and it still names its
/// source in errors.
struct Layer {
    metadata: Metadata,
    data: Result<Map<Profile, Dict>, figment::Error>,
}

impl Layer {
    fn read(provider: impl Provider) -> Self {
        Layer { metadata: provider.metadata(), data: provider.data() }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.data.clone()
    }
}

/// The defaults every service shares: the local stack's addresses and the logging setup.
pub const SHARED_DEFAULTS: &str = include_str!("../../config/shared-defaults.toml");

/// Loads `T` with the file named by `LEADFLOW_CONFIG`, if set.
pub fn load_from_env<T: DeserializeOwned>(embedded_defaults: &[&str]) -> Result<T, ConfigError> {
    let file = std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from);
    load(embedded_defaults, file.as_deref())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stderr is not a terminal, human-readable text when it is.
    Auto,
    Json,
    Text,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub ops_listen: SocketAddr,
    pub log_format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive; `RUST_LOG` overrides it when set.
    pub log_filter: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight work may take to finish after SIGTERM before the process gives up.
    #[serde(alias = "grace_period_ms", deserialize_with = "duration::millis_or_humantime")]
    pub grace_period: Duration,
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        kafka: SampleKafka,
        telemetry: TelemetryConfig,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SampleKafka {
        bootstrap_servers: String,
    }

    const DEFAULTS: &str = r#"
        [kafka]
        bootstrap_servers = "127.0.0.1:9092"
        [telemetry]
        ops_listen = "127.0.0.1:9102"
        log_format = "auto"
        log_filter = "info"
    "#;

    // figment::Jail serialises access to the process environment, which tests share.
    #[test]
    fn layers_apply_in_order_defaults_file_env() {
        figment::Jail::expect_with(|jail| {
            let cfg: Sample = load(&[DEFAULTS], None).unwrap();
            assert_eq!(cfg.kafka.bootstrap_servers, "127.0.0.1:9092");

            jail.create_file(
                "svc.toml",
                "[kafka]\nbootstrap_servers = \"file:9092\"\n[telemetry]\nlog_filter = \"debug\"\n",
            )?;
            let cfg: Sample = load(&[DEFAULTS], Some(Path::new("svc.toml"))).unwrap();
            assert_eq!(cfg.kafka.bootstrap_servers, "file:9092");
            assert_eq!(cfg.telemetry.log_filter, "debug");
            assert_eq!(cfg.telemetry.ops_listen.port(), 9102, "a key the file omits keeps its default");

            jail.set_env("LEADFLOW_KAFKA__BOOTSTRAP_SERVERS", "env:9092");
            jail.set_env("LEADFLOW_TELEMETRY__LOG_FORMAT", "json");
            let cfg: Sample = load(&[DEFAULTS], Some(Path::new("svc.toml"))).unwrap();
            assert_eq!(cfg.kafka.bootstrap_servers, "env:9092");
            assert_eq!(cfg.telemetry.log_format, LogFormat::Json);
            assert_eq!(cfg.telemetry.log_filter, "debug", "the file still wins where env is silent");
            Ok(())
        });
    }

    #[test]
    fn later_embedded_layers_override_earlier_ones() {
        figment::Jail::expect_with(|_| {
            let overlay = "[telemetry]\nops_listen = \"127.0.0.1:9104\"\n";
            let cfg: Sample = load(&[DEFAULTS, overlay], None).unwrap();
            assert_eq!(cfg.telemetry.ops_listen.port(), 9104);
            assert_eq!(cfg.telemetry.log_filter, "info");
            Ok(())
        });
    }

    #[test]
    fn unknown_key_in_file_is_rejected_by_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("svc.toml", "[kafka]\nbootstrap_server = \"typo:9092\"\n")?;
            let err = load::<Sample>(&[DEFAULTS], Some(Path::new("svc.toml"))).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("bootstrap_server"), "{msg}");
            assert!(msg.contains("unknown field"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn unknown_key_in_env_is_rejected_by_name() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LEADFLOW_TELEMETRY__OPS_PORT", "9999");
            let msg = load::<Sample>(&[DEFAULTS], None).unwrap_err().to_string();
            assert!(msg.contains("ops_port"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn config_file_variable_is_not_treated_as_a_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(CONFIG_FILE_ENV, "/nonexistent.toml");
            let err = load_from_env::<Sample>(&[DEFAULTS]).unwrap_err();
            assert!(matches!(err, ConfigError::MissingFile { .. }), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_value_type_names_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LEADFLOW_TELEMETRY__OPS_LISTEN", "not-an-address");
            let msg = load::<Sample>(&[DEFAULTS], None).unwrap_err().to_string();
            assert!(msg.to_lowercase().contains("telemetry.ops_listen"), "{msg}");
            Ok(())
        });
    }
}
