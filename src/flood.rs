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
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// How long until a token is there; None if one is there now.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        if self.rate <= 0.0 {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        (tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - tokens) / self.rate))
    }

    /// Whether the bucket has refilled completely: the end of a flood episode.
    pub fn is_full(&self) -> bool {
        self.rate <= 0.0 || self.tokens >= self.burst - 1.0
    }
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
    fn zero_rate_is_off() {
        let t0 = Instant::now();
        let mut b = Bucket::new(0.0, 1, t0);
        assert!((0..1000).all(|_| b.take(t0).is_ok()));
    }
}
