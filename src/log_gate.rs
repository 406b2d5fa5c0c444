//! A bound on what clients can make natterd write to its log.
//!
//! Every log event a client can cause (a refused nickname, a refused connection, a flood, a
//! report, a slow reader) passes a token bucket of its connection and one shared by all, so
//! no client, and no crowd of them, can fill the disk or drown the operators' own events.
//! What is held back is counted and said every [`REPORT_INTERVAL`] as one line,
//! `N similar events suppressed`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use crate::flood::Bucket;

/// Log events one connection may cause at once, then [`PER_CONNECTION_RATE`] per second.
pub const PER_CONNECTION_BURST: u32 = 20;
/// Log events per second one connection may cause in the long run.
pub const PER_CONNECTION_RATE: f64 = 0.5;
/// Log events all clients together may cause at once, then [`TOTAL_RATE`] per second.
pub const TOTAL_BURST: u32 = 1000;
/// Log events per second all clients together may cause in the long run.
pub const TOTAL_RATE: f64 = 200.0;
/// How often the number of suppressed events is logged (when it is not zero).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// The shared part: the total bucket and the count of what was held back.
#[derive(Debug)]
pub struct LogGate {
    total: Mutex<Bucket>,
    suppressed: AtomicU64,
    suppressed_total: AtomicU64,
}

impl Default for LogGate {
    fn default() -> Self {
        LogGate {
            total: Mutex::new(Bucket::new(TOTAL_RATE, TOTAL_BURST, Instant::now())),
            suppressed: AtomicU64::new(0),
            suppressed_total: AtomicU64::new(0),
        }
    }
}

impl LogGate {
    /// A bucket for one connection's log events.
    pub fn connection() -> Bucket {
        Bucket::new(PER_CONNECTION_RATE, PER_CONNECTION_BURST, Instant::now())
    }

    /// Whether an event of the connection that owns `mine` may be logged now; if not, it is
    /// counted as suppressed.
    pub fn allow(&self, mine: &mut Bucket) -> bool {
        let now = Instant::now();
        let ok = mine.take(now).is_ok() && self.take_total(now);
        if !ok {
            self.suppress();
        }
        ok
    }

    /// Whether an event that belongs to no connection yet (an accept, a refusal) may be
    /// logged now; if not, it is counted as suppressed.
    pub fn allow_shared(&self) -> bool {
        let ok = self.take_total(Instant::now());
        if !ok {
            self.suppress();
        }
        ok
    }

    fn take_total(&self, now: Instant) -> bool {
        let mut total = self.total.lock().unwrap_or_else(PoisonError::into_inner);
        total.take(now).is_ok()
    }

    fn suppress(&self) {
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        self.suppressed_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Events held back since start.
    pub fn suppressed(&self) -> u64 {
        self.suppressed_total.load(Ordering::Relaxed)
    }

    /// Logs `N similar events suppressed` for what was held back since the last call, if
    /// anything was.
    pub fn report(&self) {
        let n = self.suppressed.swap(0, Ordering::Relaxed);
        if n > 0 {
            warn!(suppressed = n, "{n} similar events suppressed");
        }
    }

    /// Calls [`LogGate::report`] every [`REPORT_INTERVAL`]. Runs forever.
    pub async fn report_periodically(&self) {
        let mut tick = tokio::time::interval(REPORT_INTERVAL);
        loop {
            tick.tick().await;
            self.report();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_connection_is_held_to_its_burst_and_everything_is_counted() {
        let gate = LogGate::default();
        let mut mine = LogGate::connection();
        let allowed = (0..10_000).filter(|_| gate.allow(&mut mine)).count();
        // Burst, plus whatever the rate refilled while the loop ran.
        assert!(
            (PER_CONNECTION_BURST as usize..PER_CONNECTION_BURST as usize + 3).contains(&allowed),
            "{allowed}"
        );
        assert_eq!(gate.suppressed() as usize, 10_000 - allowed);
        gate.report();
        assert_eq!(
            gate.suppressed.load(Ordering::Relaxed),
            0,
            "reset by report"
        );
        assert_eq!(gate.suppressed() as usize, 10_000 - allowed, "total kept");
    }

    #[test]
    fn many_connections_are_held_to_the_total() {
        let gate = LogGate::default();
        let allowed = (0..5_000)
            .filter(|_| gate.allow(&mut LogGate::connection()))
            .count();
        assert!(
            (TOTAL_BURST as usize..TOTAL_BURST as usize + 200).contains(&allowed),
            "{allowed}"
        );
        let shared = (0..1_000).filter(|_| gate.allow_shared()).count();
        assert!(shared < 200, "{shared}");
    }
}
