//! Paces by address: what one address may do per minute (connect, report, be announced),
//! however many connections it opens one after another.
//!
//! IPv4 addresses count one by one; IPv6 addresses by their /64, since one host is commonly
//! given a whole /64 and could otherwise pick a new address for every connection. The table
//! is bounded: past [`MAX_TRACKED`] addresses, those whose bucket has refilled are forgotten
//! (they are no different from a new address); if none has, new addresses go unpaced until
//! some have, rather than letting the table, or the time spent on it, grow.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::flood::Bucket;

/// Addresses tracked at once by one [`Pace`].
pub const MAX_TRACKED: usize = 65_536;
/// How long a full table waits before it looks for addresses to forget again.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);

/// Token buckets, one per address.
#[derive(Debug)]
pub struct Pace {
    table: Mutex<Table>,
    max_tracked: usize,
}

#[derive(Debug)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    next_prune: Instant,
}

impl Default for Pace {
    fn default() -> Self {
        Pace::with_capacity(MAX_TRACKED)
    }
}

impl Pace {
    /// A pace that tracks at most `max_tracked` addresses.
    pub fn with_capacity(max_tracked: usize) -> Pace {
        Pace {
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                next_prune: Instant::now(),
            }),
            max_tracked,
        }
    }

    /// Takes one of `ip`'s tokens, allowing `burst` at once and `per_minute` a minute in
    /// the long run; or says how long until one is there. `per_minute` 0 allows everything.
    pub fn take(
        &self,
        ip: IpAddr,
        burst: u32,
        per_minute: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        if per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(per_minute) / 60.0;
        let key = key(ip);
        let mut table = self.lock();
        if !table.buckets.contains_key(&key) && table.buckets.len() >= self.max_tracked {
            if now < table.next_prune {
                return Ok(());
            }
            table.buckets.retain(|_, bucket| !bucket.is_refilled(now));
            table.next_prune = now + PRUNE_INTERVAL;
            if table.buckets.len() >= self.max_tracked {
                return Ok(());
            }
        }
        let bucket = table
            .buckets
            .entry(key)
            .or_insert_with(|| Bucket::new(rate, burst, now));
        if !bucket.has_rate(rate) {
            // The setting changed: start this address afresh under the new one.
            *bucket = Bucket::new(rate, burst, now);
        }
        bucket.take(now)
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().buckets.len()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What an address counts as: IPv4 (and IPv4-mapped IPv6) by address, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_minute() {
        let pace = Pace::default();
        let t0 = Instant::now();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        assert!((0..3).all(|_| pace.take(a, 3, 3, t0).is_ok()));
        let wait = pace.take(a, 3, 3, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20));
        assert!(
            pace.take(b, 3, 3, t0).is_ok(),
            "another address is not held back"
        );
        assert!(pace.take(a, 3, 3, t0 + wait).is_ok());
        assert!(
            (0..1000).all(|_| pace.take(a, 0, 0, t0).is_ok()),
            "0 is off"
        );
    }

    #[test]
    fn mapped_v4_is_v4_and_v6_counts_by_64() {
        let pace = Pace::default();
        let t0 = Instant::now();
        let v4: IpAddr = "127.0.0.5".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.5".parse().unwrap();
        assert!(pace.take(v4, 1, 1, t0).is_ok());
        assert!(pace.take(mapped, 1, 1, t0).is_err());
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(pace.take(one, 1, 1, t0).is_ok());
        assert!(pace.take(same_64, 1, 1, t0).is_err());
        assert!(pace.take(other_64, 1, 1, t0).is_ok());
    }

    #[test]
    fn the_table_stays_bounded() {
        let pace = Pace::with_capacity(100);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            let _ = pace.take(ip, 5, 5, t0);
        }
        assert_eq!(pace.tracked(), 100);
        // Once buckets have refilled, their addresses are forgotten for new ones.
        let later = t0 + Duration::from_secs(120);
        let _ = pace.take([10, 9, 9, 9].into(), 5, 5, later);
        assert_eq!(pace.tracked(), 1);
    }
}
