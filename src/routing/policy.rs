//! Routing policy: how long to wait for a closed port, and which requests would loop.

use super::listen_addr::listen_covers;
use std::net::SocketAddr;
use std::time::Duration;

/// How long to keep retrying a target that refuses connections (a dev server that is
/// restarting), and how quickly.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    pub default: Duration,
    pub max: Duration,
}

impl WaitPolicy {
    const FIRST_BACKOFF: Duration = Duration::from_millis(25);
    const MAX_BACKOFF: Duration = Duration::from_millis(250);

    /// The wait budget for one request: the header's value (capped) or the default.
    pub fn budget(&self, requested_ms: Option<u64>) -> Duration {
        match requested_ms {
            Some(ms) => Duration::from_millis(ms).min(self.max),
            None => self.default,
        }
    }

    /// Pause before retry number `attempt` (1-based): 25 ms doubling, at most 250 ms.
    pub fn backoff(attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(8);
        (Self::FIRST_BACKOFF * factor).min(Self::MAX_BACKOFF)
    }
}

/// Recognises requests that would come back to this proxy.
pub struct LoopGuard {
    listen: Vec<SocketAddr>,
    /// This instance's `Via` entry, e.g. `1.1 cmux-proxy-3f9a1c2e`. Unique per process, so
    /// two different cmux-proxies may be chained, but a request never passes one twice.
    pub via: String,
}

impl LoopGuard {
    pub fn new(listen: Vec<SocketAddr>) -> Self {
        LoopGuard {
            listen,
            via: format!("1.1 cmux-proxy-{}", instance_id()),
        }
    }

    /// Whether connecting to `target` would reach one of our own listening sockets. A
    /// wildcard listener is reached through loopback addresses only: those are the
    /// targets this proxy makes.
    pub fn is_own_listener(&self, target: SocketAddr) -> bool {
        let local = target.ip().is_loopback() || target.ip().is_unspecified();
        self.listen
            .iter()
            .any(|l| *l == target || (local && listen_covers(*l, target)))
    }

    /// The token this instance writes into `Via`.
    pub fn token(&self) -> &str {
        &self.via[4..]
    }

    /// Whether any `Via` value names this instance.
    pub fn seen_in<'a>(&self, via_values: impl IntoIterator<Item = &'a str>) -> bool {
        let token = self.token();
        via_values
            .into_iter()
            .flat_map(|v| v.split(','))
            .any(|entry| entry.split_whitespace().nth(1) == Some(token))
    }
}

/// A short id for this process: its pid and start time, hashed.
fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    format!("{:08x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        let steps: Vec<u64> = (1..=6)
            .map(|a| WaitPolicy::backoff(a).as_millis() as u64)
            .collect();
        assert_eq!(steps, vec![25, 50, 100, 200, 250, 250]);
        assert_eq!(WaitPolicy::backoff(1000), Duration::from_millis(250));
    }

    #[test]
    fn budget_is_capped() {
        let p = WaitPolicy {
            default: Duration::from_secs(2),
            max: Duration::from_secs(30),
        };
        assert_eq!(p.budget(None), Duration::from_secs(2));
        assert_eq!(p.budget(Some(0)), Duration::ZERO);
        assert_eq!(p.budget(Some(u64::MAX)), Duration::from_secs(30));
    }

    #[test]
    fn own_listeners() {
        let g = LoopGuard::new(vec![
            "0.0.0.0:8080".parse().unwrap(),
            "127.0.0.1:9000".parse().unwrap(),
        ]);
        assert!(g.is_own_listener("127.0.0.1:8080".parse().unwrap()));
        assert!(g.is_own_listener("127.18.0.7:8080".parse().unwrap()));
        assert!(g.is_own_listener("127.0.0.1:9000".parse().unwrap()));
        assert!(!g.is_own_listener("127.0.0.2:9000".parse().unwrap()));
        assert!(!g.is_own_listener("127.0.0.1:3000".parse().unwrap()));
        assert!(!g.is_own_listener("[::1]:8080".parse().unwrap()));
    }

    #[test]
    fn via_marks() {
        let g = LoopGuard::new(vec![]);
        let other = LoopGuard::new(vec![]);
        assert_ne!(g.via, other.via);
        assert!(g.seen_in([format!("1.0 fred, {}", g.via).as_str()]));
        assert!(!g.seen_in([other.via.as_str(), "1.1 nginx"]));
    }
}
