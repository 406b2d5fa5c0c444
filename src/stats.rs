//! Counters: for the whole server ([`Stats`]) and for one connection ([`Meter`]).
//!
//! Plain relaxed atomics: each number is exact, but a report taken while traffic flows is
//! not one instant's snapshot, which is fine for monitoring.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::cause::{Dropped, Refused};

/// Server-wide totals since start.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Group and private messages passed on.
    pub lines_relayed: AtomicU64,
    /// Copies of group messages and `/me` lines queued for their readers on this node.
    pub deliveries: AtomicU64,
    /// Bytes read from clients.
    pub bytes_in: AtomicU64,
    /// Bytes written to clients.
    pub bytes_out: AtomicU64,
    /// Users kicked by an operator.
    pub kicks: AtomicU64,
    /// Connections and logins refused, by cause ([`Stats::refused`]).
    refused: [AtomicU64; Refused::ALL.len()],
    /// Connections the server ended, by cause ([`Stats::dropped`]).
    dropped: [AtomicU64; Dropped::ALL.len()],
    /// Group messages skipped for slow readers.
    pub skipped_messages: AtomicU64,
    /// Messages refused because their sender is muted.
    pub muted_messages: AtomicU64,
    /// `/report`s received.
    pub reports: AtomicU64,
}

impl Stats {
    /// Counts one refusal for `cause`.
    pub fn refuse(&self, cause: Refused) {
        add(&self.refused[cause as usize], 1);
    }

    /// Counts one connection ended for `cause`.
    pub fn drop_for(&self, cause: Dropped) {
        add(&self.dropped[cause as usize], 1);
    }

    /// Refusals by cause, every cause listed.
    pub fn refused(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Refused::ALL
            .into_iter()
            .map(|c| (c.name(), get(&self.refused[c as usize])))
    }

    /// Connections ended by cause, every cause listed.
    pub fn dropped(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Dropped::ALL
            .into_iter()
            .map(|c| (c.name(), get(&self.dropped[c as usize])))
    }
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
