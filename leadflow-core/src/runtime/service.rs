//! What every service binary does around its own work: load config, start logging, turn
//! SIGTERM/SIGINT into a cancellation token, serve the ops endpoints, and map the outcome to an
//! exit code (0 after a clean drain, 1 on failure, 2 on bad config).

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use prometheus::Registry;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::runtime::config::{TelemetryConfig, load_from_env};
use crate::runtime::ops_server::{self, ReadinessChecks};
use crate::runtime::{shutdown, telemetry};

/// A service's config: whatever it holds, it has a telemetry section.
pub trait ServiceConfig: DeserializeOwned {
    fn telemetry(&self) -> &TelemetryConfig;
}

/// What a running service gets from its runtime.
pub struct ServiceContext {
    pub name: &'static str,
    pub shutdown: CancellationToken,
    pub metrics: Registry,
}

/// The whole `main` of a service: `run` does the service's work until the token is cancelled.
pub fn run_main<C, F, Fut, E>(name: &'static str, service_defaults: &str, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, ServiceContext) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let config: C = match load_from_env(&[crate::runtime::config::SHARED_DEFAULTS, service_defaults]) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(config.telemetry());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "could not start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = match shutdown::on_termination_signal() {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(error = %e, "could not install signal handlers");
                return ExitCode::FAILURE;
            }
        };
        let context = ServiceContext { name, shutdown, metrics: telemetry::metrics_registry(name) };
        tracing::info!(service = name, version = env!("CARGO_PKG_VERSION"), "starting");
        match run(config, context).await {
            Ok(()) => {
                tracing::info!(service = name, "stopped cleanly");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(service = name, error = %e, "stopped on error");
                ExitCode::FAILURE
            }
        }
    })
}

/// Serves the ops endpoints on `telemetry.ops_listen` until the context's token fires.
pub async fn serve_ops(
    context: &ServiceContext,
    telemetry: &TelemetryConfig,
    readiness: ReadinessChecks,
) -> std::io::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    ops_server::serve(telemetry.ops_listen, context.metrics.clone(), readiness, context.shutdown.clone())
        .await
}
