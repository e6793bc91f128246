//! The one loop guard: a request that would come back to this proxy is refused (508) on
//! every path, HTTP, WebSocket, h2c and CONNECT, node and edge alike.

use super::listen_addr::listen_covers;
use http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// Recognises requests that would come back to this proxy.
pub struct LoopGuard {
    /// Every address this process listens on, canonical (see [`canonical`]).
    listen: Vec<SocketAddr>,
    /// This machine's interface addresses: a wildcard listener is reached through each.
    local_ips: Vec<IpAddr>,
    /// This instance's `Via` entry, e.g. `1.1 cmux-proxy-3f9a1c2e`. Unique per process, so
    /// two different cmux-proxies may be chained, but a request never passes one twice.
    pub via: String,
}

impl LoopGuard {
    /// `listen`: this process's listening addresses; `local_ips`: the machine's
    /// interface addresses (read once at start-up; loopback is always local).
    pub fn new(listen: Vec<SocketAddr>, local_ips: Vec<IpAddr>) -> Self {
        LoopGuard {
            listen: listen.into_iter().map(canonical).collect(),
            local_ips: local_ips.into_iter().map(|ip| ip.to_canonical()).collect(),
            via: format!("1.1 cmux-proxy-{}", instance_id()),
        }
    }

    /// Whether a request with these headers, sent to `target`, would reach this proxy
    /// again: its `Via` names this instance, or `target` is one of our listeners.
    pub fn refuses(&self, headers: &HeaderMap, target: SocketAddr) -> bool {
        let via = headers.get_all(http::header::VIA).iter();
        self.seen_in(via.map(|v| v.as_bytes())) || self.is_own_listener(target)
    }

    /// Whether connecting to `target` would reach one of our own listening sockets. An
    /// IPv4-mapped IPv6 target is its IPv4 address; a wildcard listener is reached
    /// through every loopback address and every address of this machine's interfaces.
    pub fn is_own_listener(&self, target: SocketAddr) -> bool {
        let target = canonical(target);
        let ip = target.ip();
        let local = ip.is_loopback() || ip.is_unspecified() || self.local_ips.contains(&ip);
        self.listen
            .iter()
            .any(|l| *l == target || (local && listen_covers(*l, target)))
    }

    /// The token this instance writes into `Via`.
    pub fn token(&self) -> &str {
        &self.via[4..]
    }

    /// Whether any `Via` value names this instance. Values are read as bytes: an entry
    /// whose received-by part is our token marks a loop even when other bytes of the
    /// value are not UTF-8 (one rule for every path).
    fn seen_in<'a>(&self, via_values: impl IntoIterator<Item = &'a [u8]>) -> bool {
        let token = self.token().as_bytes();
        via_values
            .into_iter()
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|entry| {
                let mut words = entry
                    .split(|b| b.is_ascii_whitespace())
                    .filter(|w| !w.is_empty());
                words.nth(1) == Some(token)
            })
    }
}

/// The address a connection to `addr` really goes to: `[::ffff:127.0.0.1]:80` is
/// `127.0.0.1:80`.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
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
    use http::HeaderValue;

    #[test]
    fn own_listeners() {
        let g = LoopGuard::new(
            vec![
                "0.0.0.0:8080".parse().unwrap(),
                "127.0.0.1:9000".parse().unwrap(),
            ],
            vec!["10.1.2.3".parse().unwrap()],
        );
        assert!(g.is_own_listener("127.0.0.1:8080".parse().unwrap()));
        assert!(g.is_own_listener("127.18.0.7:8080".parse().unwrap()));
        assert!(g.is_own_listener("127.0.0.1:9000".parse().unwrap()));
        assert!(!g.is_own_listener("127.0.0.2:9000".parse().unwrap()));
        assert!(!g.is_own_listener("127.0.0.1:3000".parse().unwrap()));
        assert!(!g.is_own_listener("[::1]:8080".parse().unwrap()));
        // IPv4-mapped targets are their IPv4 address.
        assert!(g.is_own_listener("[::ffff:127.0.0.1]:9000".parse().unwrap()));
        assert!(g.is_own_listener("[::ffff:127.18.0.7]:8080".parse().unwrap()));
        // The machine's own addresses reach a wildcard listener; others do not.
        assert!(g.is_own_listener("10.1.2.3:8080".parse().unwrap()));
        assert!(g.is_own_listener("[::ffff:10.1.2.3]:8080".parse().unwrap()));
        assert!(!g.is_own_listener("10.1.2.4:8080".parse().unwrap()));
        assert!(!g.is_own_listener("10.1.2.3:9000".parse().unwrap()));
    }

    #[test]
    fn via_marks() {
        let g = LoopGuard::new(vec![], vec![]);
        let other = LoopGuard::new(vec![], vec![]);
        assert_ne!(g.via, other.via);
        let seen = |v: &str| g.seen_in([v.as_bytes()]);
        assert!(seen(&format!("1.0 fred, {}", g.via)));
        assert!(seen(&format!("1.0 fred,{}  (comment)", g.via)));
        assert!(!seen(&format!("{}, 1.1 nginx", other.via)));
        assert!(!seen(&format!("1.1 x{}", g.token())));
    }

    #[test]
    fn a_via_that_is_not_utf8_is_read_as_bytes() {
        let g = LoopGuard::new(vec![], vec![]);
        let mut raw = format!("{}, 1.1 ", g.via).into_bytes();
        raw.push(0xff);
        let mut headers = HeaderMap::new();
        headers.append("via", HeaderValue::from_bytes(&raw).unwrap());
        let elsewhere = "127.0.0.1:3000".parse().unwrap();
        assert!(g.refuses(&headers, elsewhere));
        let mut other = HeaderMap::new();
        other.append("via", HeaderValue::from_bytes(b"1.1 \xff").unwrap());
        assert!(!g.refuses(&other, elsewhere));
    }
}
