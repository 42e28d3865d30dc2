//! Login throttling: each failed login from a client address makes the next
//! failure from that address wait longer (doubling from [`FIRST_DELAY`] up
//! to [`MAX_DELAY`]); an address quiet for [`FORGET_AFTER`] starts afresh.
//! Only failures wait, so the real user logs in at once, from anywhere. The
//! table lock is held only to count; the wait happens outside it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The wait after the first failure.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);

/// The longest wait.
pub const MAX_DELAY: Duration = Duration::from_secs(4);

/// How long an address must stay free of failures to be forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(60);

/// Most addresses remembered; beyond, the ones quiet longest are dropped.
pub const MAX_ADDRESSES: usize = 4096;

/// Failures of one address.
#[derive(Clone, Copy, Debug)]
struct Failures {
    /// Failures since the address was last forgotten.
    count: u32,
    /// When the last one happened.
    last: Instant,
}

/// Failed logins per client address.
#[derive(Debug, Default)]
pub struct Throttle {
    /// By client address.
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl Throttle {
    /// Counts a failed login from `client`; returns how long to wait before
    /// answering it.
    pub fn failed(&self, client: IpAddr) -> Duration {
        self.failed_at(client, Instant::now())
    }

    /// [`Throttle::failed`] at `now`.
    fn failed_at(&self, client: IpAddr, now: Instant) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&client) {
            forget_quiet(&mut failures, now);
        }
        let entry = failures.entry(client).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(entry.last) >= FORGET_AFTER {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        delay(entry.count)
    }
}

/// The wait after the `count`th failure in a row.
fn delay(count: u32) -> Duration {
    let doublings = count.saturating_sub(1).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// Drops the addresses quiet for [`FORGET_AFTER`], and if that is not
/// enough, the older half of the table.
fn forget_quiet(failures: &mut HashMap<IpAddr, Failures>, now: Instant) {
    failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
    if failures.len() >= MAX_ADDRESSES {
        let mut times: Vec<Instant> = failures.values().map(|f| f.last).collect();
        times.sort_unstable();
        let cut = times[times.len() / 2];
        failures.retain(|_, f| f.last > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_up_to_the_cap_and_is_forgotten() {
        let throttle = Throttle::default();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let start = Instant::now();
        let waits: Vec<u128> = (0..8)
            .map(|_| throttle.failed_at(one, start).as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 4000, 4000]);
        assert_eq!(throttle.failed_at(other, start), FIRST_DELAY);
        let later = start + FORGET_AFTER;
        assert_eq!(throttle.failed_at(one, later), FIRST_DELAY);
        assert_eq!(delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn table_stays_bounded() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for n in 0..(MAX_ADDRESSES as u32 * 2) {
            let at = now + Duration::from_millis(u64::from(n));
            throttle.failed_at(IpAddr::from(n.to_be_bytes()), at);
        }
        assert!(throttle.failures.lock().unwrap().len() <= MAX_ADDRESSES);
    }
}
