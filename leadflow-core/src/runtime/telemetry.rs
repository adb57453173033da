//! Logs and metrics. Logs are `tracing` events: JSON when stderr is not a terminal, so that
//! collectors can parse them, and text when a person is watching. Metrics live in one
//! Prometheus registry per process, every name prefixed `leadflow_`.

use std::io::IsTerminal;

use prometheus::{IntGauge, Opts, Registry};
use tracing_subscriber::EnvFilter;

use crate::runtime::config::{LogFormat, TelemetryConfig};

pub const METRICS_NAMESPACE: &str = "leadflow";

/// Installs the global tracing subscriber. `RUST_LOG`, when set, overrides the configured filter.
pub fn init_logging(cfg: &TelemetryConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log_filter));
    let json = match cfg.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());

    // try_init: a second call (as in tests) keeps the first subscriber instead of panicking.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        builder.try_init()
    };
}

/// A registry whose metric names all start with `leadflow_`, holding `leadflow_build_info`.
pub fn metrics_registry(service: &str) -> Registry {
    let registry = Registry::new_custom(Some(METRICS_NAMESPACE.to_owned()), None)
        .expect("the namespace is a valid metric name prefix");
    let build_info = IntGauge::with_opts(
        Opts::new("build_info", "Always 1; labels name the service and its version.")
            .const_label("service", service)
            .const_label("version", env!("CARGO_PKG_VERSION")),
    )
    .expect("valid metric options");
    build_info.set(1);
    registry.register(Box::new(build_info)).expect("registered once per registry");
    registry
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    #[test]
    fn metrics_carry_the_namespace_and_build_info() {
        let registry = metrics_registry("enricher");
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&registry.gather(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("leadflow_build_info{service=\"enricher\""), "{text}");
    }
}
