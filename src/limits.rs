//! Admission control: how many connections may be open in all and from one address.
//!
//! A [`Permit`] is taken before a connection is served and given back when it is dropped,
//! so the counts stay right however a session ends, a panic included.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::cause::Refused;

/// Open connections, in all and per address.
#[derive(Debug, Default)]
pub struct Limiter {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
    ip: IpAddr,
}

impl Limiter {
    /// Admits a connection from `ip` if fewer than `max_total` are open in all and fewer
    /// than `max_per_ip` from `ip` (0: no limit).
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<Permit, Refused> {
        let mut counts = self.lock();
        if max_total > 0 && counts.total >= max_total {
            return Err(Refused::ServerFull);
        }
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if max_per_ip > 0 && from_ip >= max_per_ip {
            return Err(Refused::TooManyFromAddress);
        }
        counts.total += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        Ok(Permit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.limiter.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_frees_places() {
        let limiter = Arc::new(Limiter::default());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let p1 = limiter.admit(a, 3, 2).unwrap();
        let _p2 = limiter.admit(a, 3, 2).unwrap();
        assert_eq!(
            limiter.admit(a, 3, 2).unwrap_err(),
            Refused::TooManyFromAddress
        );
        let _p3 = limiter.admit(b, 3, 2).unwrap();
        assert_eq!(limiter.admit(b, 3, 2).unwrap_err(), Refused::ServerFull);
        drop(p1);
        let _p4 = limiter.admit(a, 4, 2).unwrap();
        assert_eq!(limiter.open(), 3);
        // 0 means no limit.
        let many: Vec<Permit> = (0..50).map(|_| limiter.admit(a, 0, 0).unwrap()).collect();
        assert_eq!(limiter.open(), 53);
        drop(many);
        assert_eq!(limiter.lock().per_ip.len(), 2);
    }
}
