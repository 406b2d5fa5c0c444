//! Signals: SIGTERM and SIGINT shut down gracefully (a second one exits at once), SIGHUP
//! reloads the configuration through the same path as `natterctl reload`, SIGUSR1 reopens
//! the log file like `natterctl reopen-logs`.

use std::sync::Arc;

use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook_tokio::Signals;
use tracing::warn;

use crate::daemon::Daemon;

/// Starts listening for signals. Call early, so none arrives unhandled.
pub fn listen() -> std::io::Result<Signals> {
    Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
}

/// Acts on signals for the rest of the process's life.
pub async fn handle(mut signals: Signals, daemon: Arc<Daemon>) {
    while let Some(signal) = signals.next().await {
        if signal == SIGHUP {
            // The outcome is logged by reload itself.
            let _ = daemon.reload();
        } else if signal == SIGUSR1 {
            daemon.logs.reopen();
        } else if !daemon.request_shutdown(None) {
            warn!(signal, "second signal during shutdown: exiting now");
            std::process::exit(1);
        }
    }
}
