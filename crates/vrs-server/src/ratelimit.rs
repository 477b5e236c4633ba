//! The name look-up's limits, per tablet: nobody may harvest names by trying
//! voucher numbers. Two token buckets per device:
//! - look-ups: a burst of 60, then one a second. A nurse confirms a person every
//!   half minute or so; staff batch-scanning a stack, one every two or three seconds.
//! - misses (no one has that voucher): a burst of 20, then one every 3 minutes. A
//!   tablet scanning real vouchers seldom misses; one guessing numbers mostly does
//!   (a municipality of a million people fills 1 in 10,000 of the 10-digit space).
//!
//! A look-up needs a token from both (it may miss); a miss then spends its token.
//! The state is in memory, per server process: behind a load balancer each
//! instance limits on its own, which multiplies the allowance by the instances,
//! not the harvest rate by any useful factor.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much a device may look up.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub burst: f64,
    pub per_second: f64,
    pub miss_burst: f64,
    pub misses_per_second: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            burst: 60.0,
            per_second: 1.0,
            miss_burst: 20.0,
            misses_per_second: 1.0 / 180.0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Allowance {
    lookups: f64,
    misses: f64,
    at: Instant,
}

/// The look-up allowance of every device seen since the server started.
#[derive(Debug, Default)]
pub struct NameLimits {
    policy: Policy,
    devices: Mutex<HashMap<String, Allowance>>,
}

impl NameLimits {
    pub fn new(policy: Policy) -> Self {
        NameLimits {
            policy,
            devices: Mutex::new(HashMap::new()),
        }
    }

    fn devices(&self) -> std::sync::MutexGuard<'_, HashMap<String, Allowance>> {
        self.devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a look-up for `device`, or says how long it must wait. Refilling,
    /// checking and taking happen under one lock, so that two requests at once
    /// cannot both spend the last token.
    pub fn take(&self, device: &str, now: Instant) -> Result<(), Duration> {
        let p = self.policy;
        let mut devices = self.devices();
        let a = devices.entry(device.to_owned()).or_insert(Allowance {
            lookups: p.burst,
            misses: p.miss_burst,
            at: now,
        });
        let dt = now.saturating_duration_since(a.at).as_secs_f64();
        a.lookups = (a.lookups + dt * p.per_second).min(p.burst);
        a.misses = (a.misses + dt * p.misses_per_second).min(p.miss_burst);
        a.at = now;
        let wait = |have: f64, rate: f64| Duration::from_secs_f64(((1.0 - have) / rate).max(0.0));
        if a.misses < 1.0 {
            return Err(wait(a.misses, p.misses_per_second));
        }
        if a.lookups < 1.0 {
            return Err(wait(a.lookups, p.per_second));
        }
        a.lookups -= 1.0;
        Ok(())
    }

    /// The look-up found no one: spends a miss.
    pub fn missed(&self, device: &str) {
        if let Some(a) = self.devices().get_mut(device) {
            a.misses = (a.misses - 1.0).max(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let l = NameLimits::new(Policy::default());
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(l.take("tab", t0).is_ok());
        }
        let wait = l.take("tab", t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(l.take("tab", t0 + Duration::from_secs(1)).is_ok());
        assert!(l.take("tab", t0 + Duration::from_secs(1)).is_err());
        // Another tablet has its own allowance.
        assert!(l.take("other", t0).is_ok());
    }

    #[test]
    fn guessing_runs_out_of_misses_long_before_look_ups() {
        let l = NameLimits::new(Policy::default());
        let t0 = Instant::now();
        for i in 0..20 {
            let now = t0 + Duration::from_secs(i * 2);
            assert!(l.take("tab", now).is_ok());
            l.missed("tab");
        }
        let now = t0 + Duration::from_secs(40);
        let wait = l.take("tab", now).unwrap_err();
        assert!(wait > Duration::from_secs(60), "{wait:?}");
        // One miss comes back after 3 minutes.
        let later = now + wait;
        assert!(l.take("tab", later).is_ok());
        l.missed("tab");
        assert!(l.take("tab", later).is_err());
    }

    #[test]
    fn hits_do_not_spend_misses() {
        let l = NameLimits::new(Policy::default());
        let t0 = Instant::now();
        for i in 0..500 {
            assert!(l.take("tab", t0 + Duration::from_secs(i)).is_ok());
        }
    }
}
