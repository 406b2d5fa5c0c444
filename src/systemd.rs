//! Talking to systemd: readiness notifications, the watchdog, and listening sockets passed
//! in by socket activation. All of it does nothing when natterd was not started by systemd.

use std::net::TcpListener;
use std::time::Duration;

use anyhow::Context;
use sd_notify::NotifyState;
use tracing::debug;

fn notify(states: &[NotifyState]) {
    // Only systemd listens; failing to tell it is not worth stopping for.
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "sd_notify failed");
    }
}

/// READY=1: listening and serving.
pub fn ready() {
    notify(&[NotifyState::Ready]);
}

/// RELOADING=1, with the timestamp newer systemd versions ask for.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// STOPPING=1: shutdown has begun.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// Pets the watchdog at half its interval, if the unit set `WatchdogSec`. Runs forever.
pub async fn watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut tick = tokio::time::interval((interval / 2).max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        notify(&[NotifyState::Watchdog]);
    }
}

/// TCP listeners passed by socket activation (`LISTEN_FDS`), in order; empty when none.
pub fn passed_listeners() -> anyhow::Result<Vec<TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for i in 0..fds.len() {
        let listener = fds
            .take_tcp_listener(i)
            .with_context(|| format!("passed socket {i} is not a TCP listener"))?;
        if let Some(listener) = listener {
            listener.set_nonblocking(true)?;
            listeners.push(listener);
        }
    }
    Ok(listeners)
}
