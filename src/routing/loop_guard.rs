//! The one loop guard: a request that would come back to this proxy is refused (508) on
//! every path, HTTP, WebSocket, h2c and CONNECT, node and edge alike.

use super::listen_addr::listen_covers;
use http::HeaderMap;
use std::net::SocketAddr;

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

    /// Whether a request with these headers, sent to `target`, would reach this proxy
    /// again: its `Via` names this instance, or `target` is one of our listeners.
    pub fn refuses(&self, headers: &HeaderMap, target: SocketAddr) -> bool {
        let via = headers.get_all(http::header::VIA).iter();
        self.seen_in(via.map(|v| v.as_bytes())) || self.is_own_listener(target)
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
        let seen = |v: &str| g.seen_in([v.as_bytes()]);
        assert!(seen(&format!("1.0 fred, {}", g.via)));
        assert!(seen(&format!("1.0 fred,{}  (comment)", g.via)));
        assert!(!seen(&format!("{}, 1.1 nginx", other.via)));
        assert!(!seen(&format!("1.1 x{}", g.token())));
    }

    #[test]
    fn a_via_that_is_not_utf8_is_read_as_bytes() {
        let g = LoopGuard::new(vec![]);
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
