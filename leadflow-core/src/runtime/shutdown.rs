//! One cancellation token per process, cancelled on SIGTERM or SIGINT. Every task takes a clone
//! and stops its intake when it fires; the service then drains, commits and exits 0.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled when the process receives SIGTERM or SIGINT.
pub fn on_termination_signal() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
            _ = cancel.cancelled() => return,
        };
        tracing::info!(signal = name, "shutdown requested; draining");
        cancel.cancel();
    });
    Ok(token)
}
