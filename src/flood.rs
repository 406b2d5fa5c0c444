//! Flood control: a token bucket per user, in lines.

use std::time::Duration;

use tokio::time::Instant;

/// Allows `burst` lines at once, then `rate` lines per second.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket; `rate` 0 allows everything.
    pub fn new(rate: f64, burst: u32, now: Instant) -> Bucket {
        let burst = f64::from(burst.max(1));
        Bucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one line's token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(seconds((1.0 - self.tokens) / self.rate))
        }
    }

    /// How long until a token is there; None if one is there now.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.wait_for(1.0, now)
    }

    /// How long until the bucket holds `level` tokens; None if it does at `now`.
    fn wait_for(&self, level: f64, now: Instant) -> Option<Duration> {
        if self.rate <= 0.0 {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        (tokens < level).then(|| seconds((level - tokens) / self.rate))
    }

    /// Takes `cost` tokens (a fraction of a line, for telnet commands) whether or not they
    /// are there: the bucket may go into debt, down to `-burst`, and [`Bucket::debt`] then
    /// says how long to stop reading until it is paid off.
    pub fn charge(&mut self, cost: f64, now: Instant) {
        if self.rate <= 0.0 {
            return;
        }
        self.refill(now);
        self.tokens = (self.tokens - cost).max(-self.burst);
    }

    /// How long until the bucket is out of debt; None if it is not in debt.
    pub fn debt(&self, now: Instant) -> Option<Duration> {
        self.wait_for(0.0, now)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Whether the bucket would be full at `now`: it then holds nothing a new one would not.
    pub fn is_refilled(&self, now: Instant) -> bool {
        self.wait_for(self.burst, now).is_none()
    }

    /// Whether the bucket refills at `rate`.
    pub fn has_rate(&self, rate: f64) -> bool {
        self.rate == rate
    }

    /// Whether the bucket has refilled completely: the end of a flood episode.
    pub fn is_full(&self) -> bool {
        self.rate <= 0.0 || self.tokens >= self.burst - 1.0
    }
}

/// Longest wait a bucket ever asks for, whatever its rate: a deadline computed from it can
/// never overflow.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// `secs` as a duration, clamped to `0..=MAX_WAIT` (NaN counts as 0).
fn seconds(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs)
        .unwrap_or(if secs > 0.0 { MAX_WAIT } else { Duration::ZERO })
        .min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2.0, 3, t0);
        for _ in 0..3 {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(b.wait(t0), Some(wait));
        assert_eq!(b.wait(t0 + wait), None);
        assert!(b.take(t0 + Duration::from_millis(499)).is_err());
        assert!(b.take(t0 + Duration::from_millis(500)).is_ok());
        assert!(!b.is_full());
        assert!(b.take(t0 + Duration::from_secs(10)).is_ok());
        assert!(b.is_full());
    }

    #[test]
    fn charges_go_into_debt_and_are_paid_off_by_time() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2.0, 2, t0);
        assert_eq!(b.debt(t0), None);
        for _ in 0..30 {
            b.charge(0.1, t0);
        }
        // 2 tokens less 3: one in debt, paid off in half a second at 2 per second.
        let debt = b.debt(t0).unwrap();
        assert!((debt.as_secs_f64() - 0.5).abs() < 1e-6, "{debt:?}");
        assert!(b.take(t0).is_err());
        assert_eq!(b.debt(t0 + Duration::from_millis(501)), None);
        // Debt is bounded: a flood of charges costs at most `burst` seconds of rate.
        for _ in 0..1_000_000 {
            b.charge(1.0, t0);
        }
        assert_eq!(b.debt(t0), Some(Duration::from_secs(1)));
    }

    #[test]
    fn extreme_rates_never_overflow_a_deadline() {
        let t0 = Instant::now();
        for rate in [1e-300, f64::MIN_POSITIVE, 1e300, f64::MAX] {
            let mut b = Bucket::new(rate, u32::MAX, t0);
            b.charge(f64::MAX, t0);
            let wait = b.debt(t0).unwrap_or_default();
            assert!(wait <= MAX_WAIT, "{rate}: {wait:?}");
            let _ = t0 + wait;
        }
    }

    #[test]
    fn zero_rate_is_off() {
        let t0 = Instant::now();
        let mut b = Bucket::new(0.0, 1, t0);
        assert!((0..1000).all(|_| b.take(t0).is_ok()));
    }
}
