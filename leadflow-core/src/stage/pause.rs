//! How a processor tells its stage that it waits on an outside limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

/// Lets a processor say "I am waiting on something outside (a rate limit)": while any
/// [`PauseGuard`] lives, the stage pauses its partitions, so waiting records show up as lag.
#[derive(Clone)]
pub struct PauseSignal {
    holders: Arc<AtomicUsize>,
    paused: Arc<watch::Sender<bool>>,
}

impl Default for PauseSignal {
    fn default() -> Self {
        PauseSignal { holders: Arc::new(AtomicUsize::new(0)), paused: Arc::new(watch::Sender::new(false)) }
    }
}

impl PauseSignal {
    pub fn hold(&self) -> PauseGuard {
        if self.holders.fetch_add(1, Ordering::SeqCst) == 0 {
            self.paused.send_replace(true);
        }
        PauseGuard { signal: self.clone() }
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.paused.subscribe()
    }
}

pub struct PauseGuard {
    signal: PauseSignal,
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        if self.signal.holders.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.signal.paused.send_replace(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_is_paused_while_any_guard_lives() {
        let signal = PauseSignal::default();
        assert!(!signal.is_paused());
        let first = signal.hold();
        let second = signal.hold();
        drop(first);
        assert!(signal.is_paused(), "one guard still holds the pause");
        drop(second);
        assert!(!signal.is_paused());
    }
}
