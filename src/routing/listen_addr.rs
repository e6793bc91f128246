//! Which listening address receives connections made to another one.

use std::net::SocketAddr;

/// Whether a socket listening on `listen` receives connections made to `addr`: the same
/// port, and the same address, or `listen` is a wildcard whose family takes `addr`'s
/// (on Linux an IPv6 wildcard takes IPv4 too, unless the socket is IPv6-only).
pub fn listen_covers(listen: SocketAddr, addr: SocketAddr) -> bool {
    listen.port() == addr.port()
        && (listen.ip() == addr.ip()
            || (listen.ip().is_unspecified() && (listen.is_ipv6() || addr.is_ipv4())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(listen: &str, addr: &str) -> bool {
        listen_covers(listen.parse().unwrap(), addr.parse().unwrap())
    }

    #[test]
    fn wildcards_cover_their_family() {
        assert!(covers("0.0.0.0:80", "127.0.0.1:80"));
        assert!(covers("[::]:80", "127.0.0.1:80"));
        assert!(covers("[::]:80", "[::1]:80"));
        assert!(!covers("0.0.0.0:80", "[::1]:80"));
        assert!(!covers("0.0.0.0:80", "127.0.0.1:81"));
        assert!(!covers("127.0.0.1:80", "0.0.0.0:80"));
        assert!(covers("127.0.0.1:80", "127.0.0.1:80"));
    }
}
