//! Abuse limits, each a token bucket (governor): requests per API key at
//! its scope's rate (`--rate-limit enroll=5/s`), requests without a key per
//! client address (`anonymous=`, while the service runs open), and failed
//! authentications per client address (`--auth-failures`): past its burst an
//! address may not present any key until a token comes back, so a guessed
//! key costs time whatever it is. Over a limit: 429 `rate_limited` with
//! `Retry-After`. The client address is the connection's peer, or, when the
//! peer is a trusted proxy (`--trusted-proxy`), the nearest address in
//! `X-Forwarded-For` that is not one.
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use crate::domain::Scope;

/// A rate: `COUNT/UNIT` (`s`, `m`, `h`), with an optional burst after a
/// colon (`20/s:40`); the burst is COUNT when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
    pub burst: NonZeroU32,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected COUNT/UNIT[:BURST], e.g. 20/s, 600/m or 20/s:40");
        let (rate, burst) = s.split_once(':').map_or((s, None), |(r, b)| (r, Some(b)));
        let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
        let count: NonZeroU32 = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let burst = match burst {
            Some(b) => b.trim().parse().map_err(|_| bad())?,
            None => count,
        };
        Ok(Self { count, per, burst })
    }
}

impl Rate {
    fn quota(self) -> Quota {
        let period = self.per / self.count.get();
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(self.count))
            .allow_burst(self.burst)
    }
}

/// A network: `ADDRESS/PREFIX`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected an address or ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fd00::/8");
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => (u128::from(u32::from(v4)), 32),
                    None => (u128::from(v6), 128),
                },
            }
        };
        let ((net, width), (ip, ip_width)) = (bits(self.net), bits(ip));
        if width != ip_width {
            return false;
        }
        let shift = u32::from(width - self.prefix.min(width));
        net.checked_shr(shift).unwrap_or(0) == ip.checked_shr(shift).unwrap_or(0)
    }
}

/// What `visage serve` is told about limits.
#[derive(Debug, Clone, Default)]
pub struct LimitsConfig {
    /// Requests per API key, by the key's scope.
    pub per_scope: Vec<(Scope, Rate)>,
    /// Requests without a key, per client address (only while the service runs open).
    pub anonymous: Option<Rate>,
    /// Failed authentications per client address.
    pub auth_failures: Option<Rate>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
}

/// The limits' state: one bucket per key, per address.
pub struct Limits {
    trusted: Vec<Cidr>,
    per_scope: Vec<(Scope, DefaultKeyedRateLimiter<String>)>,
    anonymous: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses that ran out of failures, until a token is back.
    barred: Mutex<HashMap<IpAddr, Instant>>,
}

/// Over a limit: what for, and when to come back.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    pub what: &'static str,
    pub retry_after: Duration,
}

fn keyed<K: std::hash::Hash + Eq + Clone>(rate: Rate) -> DefaultKeyedRateLimiter<K> {
    RateLimiter::keyed(rate.quota())
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    what: &'static str,
) -> Result<(), Limited> {
    limiter.check_key(key).map_err(|not_until| {
        let retry_after = not_until.wait_time_from(DefaultClock::default().now());
        metrics::counter!("visage_rate_limited_total", "limit" => what).increment(1);
        Limited { what, retry_after }
    })
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            trusted: config.trusted_proxies.clone(),
            per_scope: config.per_scope.iter().map(|&(scope, rate)| (scope, keyed(rate))).collect(),
            anonymous: config.anonymous.map(keyed),
            failures: config.auth_failures.map(keyed),
            barred: Mutex::new(HashMap::new()),
        }
    }

    /// The client's address: the peer, or behind trusted proxies the
    /// nearest forwarded address that is not one of them.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if !self.trusted.iter().any(|c| c.contains(peer)) {
            return peer;
        }
        let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let hops: Vec<IpAddr> = forwarded.flat_map(|v| v.split(',')).filter_map(|h| h.trim().parse().ok()).collect();
        hops.into_iter().rev().find(|ip| !self.trusted.iter().any(|c| c.contains(*ip))).unwrap_or(peer)
    }

    /// Before a presented key is checked: refused while the address is barred.
    pub fn may_present_key(&self, client: IpAddr) -> Result<(), Limited> {
        let mut barred = self.barred.lock();
        match barred.get(&client) {
            Some(until) if *until > Instant::now() => {
                metrics::counter!("visage_rate_limited_total", "limit" => "auth_failures").increment(1);
                Err(Limited { what: "auth_failures", retry_after: *until - Instant::now() })
            }
            Some(_) => {
                barred.remove(&client);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A presented key was wrong: one failure spent; none left bars the address.
    pub fn failed(&self, client: IpAddr) -> Result<(), Limited> {
        metrics::counter!("visage_auth_failures_total").increment(1);
        let Some(failures) = &self.failures else { return Ok(()) };
        check(failures, &client, "auth_failures").inspect_err(|limited| {
            tracing::warn!(%client, retry_after_s = limited.retry_after.as_secs_f64(), "too many failed authentications");
            self.barred.lock().insert(client, Instant::now() + limited.retry_after);
        })
    }

    /// A request with a valid key of this scope.
    pub fn admit_key(&self, key_id: &str, scope: Scope) -> Result<(), Limited> {
        match self.per_scope.iter().find(|(s, _)| *s == scope) {
            Some((_, limiter)) => check(limiter, &key_id.to_string(), "key"),
            None => Ok(()),
        }
    }

    /// A request without a key (the service runs open).
    pub fn admit_anonymous(&self, client: IpAddr) -> Result<(), Limited> {
        self.anonymous.as_ref().map_or(Ok(()), |l| check(l, &client, "anonymous"))
    }

    /// Drops the state of keys and addresses idle long enough to be full again.
    pub fn forget_idle(&self) {
        for (_, l) in &self.per_scope {
            l.retain_recent();
        }
        for l in self.anonymous.iter().chain(&self.failures) {
            l.retain_recent();
        }
        let now = Instant::now();
        self.barred.lock().retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests;
