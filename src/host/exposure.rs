//! What a workspace address reaches on this machine besides the workspace's own servers,
//! and what a client may be told about the machine's listeners.
//!
//! Every workspace address is in 127.0.0.0/8, and a host service that listens on a
//! wildcard address (`0.0.0.0`, `::`: sshd, a database, docker-proxy) answers on every
//! one of them. With `allow_default_upstream: false` a client may reach workspaces only,
//! so such a target is refused before connecting, and a 502's explanation names only the
//! listeners the client could reach anyway.

use super::listening::listening_on_port;
use crate::routing::{is_workspace_ip, listen_covers, LoopGuard};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How old a socket table read may be to decide a request: reads are shared by the
/// requests of one second, so a burst costs one read, not one per request.
const FRESH: Duration = Duration::from_secs(1);

/// The wildcard listener a connection to `target` would reach because nothing listens
/// on `target` itself, if any. Reads the socket table (on the blocking pool).
pub async fn host_service_behind(target: SocketAddr) -> Option<SocketAddr> {
    let port = target.port();
    let asked = Instant::now()
        .checked_sub(FRESH)
        .unwrap_or_else(Instant::now);
    let listeners = tokio::task::spawn_blocking(move || listening_on_port(port, asked))
        .await
        .unwrap_or_default();
    wildcard_only(target, &listeners)
}

/// The wildcard among `listeners` that takes connections to `target`, unless a socket
/// listens on `target` itself (the workspace's own server).
pub fn wildcard_only(target: SocketAddr, listeners: &[SocketAddr]) -> Option<SocketAddr> {
    if listeners.contains(&target) {
        return None;
    }
    listeners
        .iter()
        .copied()
        .find(|l| l.ip().is_unspecified() && listen_covers(*l, target))
}

/// Which listeners a client may be told about: never this proxy's own (its admin
/// address included), and with `allow_default_upstream: false` only workspace
/// addresses, the only ones the client may reach.
pub struct Disclosure<'a> {
    pub own: &'a LoopGuard,
    pub outside_workspaces: bool,
}

impl Disclosure<'_> {
    pub fn shows(&self, listener: &SocketAddr) -> bool {
        !self.own.is_own_listener(*listener)
            && (self.outside_workspaces || is_workspace_ip(listener.ip()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_wildcard_without_the_workspace_own_listener_is_a_host_service() {
        let target: SocketAddr = "127.18.0.1:22".parse().unwrap();
        let wild = wildcard_only(target, &addrs(&["0.0.0.0:22"]));
        assert_eq!(wild, Some("0.0.0.0:22".parse().unwrap()));
        let wild6 = wildcard_only(target, &addrs(&["[::]:22"]));
        assert_eq!(wild6, Some("[::]:22".parse().unwrap()));
        assert_eq!(
            wildcard_only(target, &addrs(&["0.0.0.0:22", "127.18.0.1:22"])),
            None
        );
        assert_eq!(
            wildcard_only(target, &addrs(&["127.0.0.1:22", "[::1]:22"])),
            None
        );
        assert_eq!(wildcard_only(target, &[]), None);
    }

    #[test]
    fn disclosure_hides_the_proxy_and_what_the_policy_hides() {
        let own = LoopGuard::new(addrs(&["127.0.0.1:8080", "127.0.0.1:9091"]), vec![]);
        let strict = Disclosure {
            own: &own,
            outside_workspaces: false,
        };
        let open = Disclosure {
            own: &own,
            outside_workspaces: true,
        };
        for hidden in ["127.0.0.1:9091", "127.0.0.1:8080"] {
            let a = hidden.parse().unwrap();
            assert!(!strict.shows(&a) && !open.shows(&a), "{hidden}");
        }
        let host_service = "127.0.0.1:5432".parse().unwrap();
        assert!(!strict.shows(&host_service) && open.shows(&host_service));
        let workspace = "127.18.0.2:5173".parse().unwrap();
        assert!(strict.shows(&workspace) && open.shows(&workspace));
    }
}
