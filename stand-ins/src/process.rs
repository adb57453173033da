//! What every stand-in binary does around its server: read `--flag value` / `--flag=value`
//! arguments, log to stderr, announce the bound address, and turn SIGTERM/SIGINT into a graceful
//! stop (exit 0; 2 for bad flags, 1 when the server fails).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::str::FromStr;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// A future that completes when the process is asked to stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The `(flag, value)` pairs of the arguments after the program name.
pub fn flags(args: impl IntoIterator<Item = String>) -> Result<Vec<(String, String)>, String> {
    let mut args = args.into_iter();
    let mut pairs = Vec::new();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let value = inline.or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"))?;
        pairs.push((flag, value));
    }
    Ok(pairs)
}

pub fn parse_value<T: FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{flag}: cannot parse {value:?}"))
}

/// The whole `main` of a stand-in: `what` names it in logs ("crm stand-in"), `parse` reads the
/// flags into an address and the server's settings, `serve` runs the server until shutdown.
pub fn main<S, Fut>(
    binary: &str,
    what: &str,
    usage: &str,
    parse: impl FnOnce(Vec<String>) -> Result<(SocketAddr, S), String>,
    serve: impl FnOnce(TcpListener, S, Shutdown) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = std::io::Result<()>>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("{usage}");
        return ExitCode::SUCCESS;
    }
    let (listen, settings) = match parse(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{binary}: {e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        // Handlers go in before the address is announced: a caller may signal as soon as it reads it.
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let what_stops = what.to_owned();
        let shutdown: Shutdown = Box::pin(async move {
            tokio::select! {
                _ = sigterm.recv() => {},
                _ = sigint.recv() => {},
            }
            tracing::info!(stand_in = %what_stops, "shutdown requested; finishing in-flight requests");
        });
        tracing::info!(addr = %local_addr, "{what} listening");
        serve(listener, settings, shutdown).await?;
        tracing::info!("{what} stopped");
        Ok::<(), std::io::Error>(())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{what} failed");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_take_their_value_inline_or_next() {
        let pairs = flags(["--a=1", "--b", "2"].map(String::from)).unwrap();
        assert_eq!(pairs, vec![("--a".into(), "1".into()), ("--b".into(), "2".into())]);
        assert!(flags(["--a".to_owned()]).unwrap_err().contains("--a needs a value"));
        assert!(parse_value::<u64>("--n", "x").unwrap_err().contains("--n"));
    }
}
