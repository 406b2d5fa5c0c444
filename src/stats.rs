//! Counters: for the whole server ([`Stats`]) and for one connection ([`Meter`]).
//!
//! Plain relaxed atomics: each number is exact, but a report taken while traffic flows is
//! not one instant's snapshot, which is fine for monitoring.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Server-wide totals since start.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Group and private messages passed on.
    pub lines_relayed: AtomicU64,
    /// Bytes read from clients.
    pub bytes_in: AtomicU64,
    /// Bytes written to clients.
    pub bytes_out: AtomicU64,
    /// Users kicked by an operator.
    pub kicks: AtomicU64,
    /// Clients dropped because their send queue overflowed.
    pub dropped_send_queue: AtomicU64,
    /// Clients dropped because they accepted no output for too long.
    pub dropped_write_timeout: AtomicU64,
    /// Connections closed because no nickname was chosen in time.
    pub dropped_login_timeout: AtomicU64,
    /// Users disconnected for sending nothing for too long.
    pub dropped_idle_timeout: AtomicU64,
    /// Connections refused because the server was full.
    pub refused_server_full: AtomicU64,
    /// Connections refused because their address had too many open.
    pub refused_per_address: AtomicU64,
    /// Connections refused because their address connected too often.
    pub refused_connect_rate: AtomicU64,
    /// Group messages skipped for slow readers.
    pub skipped_messages: AtomicU64,
    /// Connections refused because their address is banned.
    pub refused_banned: AtomicU64,
    /// Logins refused because the nickname is banned.
    pub refused_banned_nick: AtomicU64,
    /// Messages refused because their sender is muted.
    pub muted_messages: AtomicU64,
    /// `/report`s received.
    pub reports: AtomicU64,
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// Reads a counter.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Relaxed)
}

/// One connection's traffic, shared by its session (which counts) and the hub (which
/// reports).
#[derive(Debug)]
pub struct Meter {
    created: Instant,
    /// Lines received.
    pub lines: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes sent.
    pub bytes_out: AtomicU64,
    /// When the last line arrived, in milliseconds after `created`.
    last_line_ms: AtomicU64,
}

impl Default for Meter {
    fn default() -> Self {
        Meter {
            created: Instant::now(),
            lines: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            last_line_ms: AtomicU64::new(0),
        }
    }
}

impl Meter {
    /// Counts one received line.
    pub fn line(&self) {
        add(&self.lines, 1);
        let ms = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_line_ms.store(ms, Relaxed);
    }

    /// Time since the last line (or since connecting, before any).
    pub fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_line_ms.load(Relaxed));
        self.created.elapsed().saturating_sub(last)
    }
}
