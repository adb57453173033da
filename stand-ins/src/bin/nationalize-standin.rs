//! The nationalize.io stand-in as a process; see `stand_ins::nationalize` for what it answers.

use std::process::ExitCode;

use stand_ins::nationalize::{self, cli};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    let config = match cli::parse_args(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("nationalize-standin: {e}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "nationalize stand-in failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: cli::Config) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    // Handlers go in before the address is announced: a caller may signal as soon as it reads it.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = sigterm.recv() => {},
            _ = sigint.recv() => {},
        }
        tracing::info!("shutdown requested; finishing in-flight requests");
    };
    tracing::info!(addr = %local_addr, "nationalize stand-in listening");
    nationalize::serve(listener, config.faults, shutdown).await?;
    tracing::info!("nationalize stand-in stopped");
    Ok(())
}
