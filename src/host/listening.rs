//! Which TCP sockets listen on this machine, from the kernel's `sock_diag` interface or,
//! where that is not available, from `/proc/net/tcp*` (no external tools either way).

use super::{proc_net, sock_diag, Listener};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// All listening TCP sockets, IPv4 and IPv6.
pub fn listening() -> Vec<Listener> {
    match sock_diag::listening() {
        Ok(listeners) => listeners,
        Err(e) => {
            log::debug!("sock_diag unavailable ({e}); reading /proc/net/tcp*");
            proc_net::listening_from_proc()
        }
    }
}

/// How long a snapshot of the listening sockets serves error explanations. Reading
/// `/proc/net/tcp*` costs time in proportion to every socket on the machine, so a burst
/// of refused requests (a port scan) must not read it once per request.
const SNAPSHOT_TTL: Duration = Duration::from_millis(500);

/// Listening addresses, re-read at most every [`SNAPSHOT_TTL`].
fn listening_snapshot() -> Arc<Vec<SocketAddr>> {
    static SNAPSHOT: Mutex<Option<(Instant, Arc<Vec<SocketAddr>>)>> = Mutex::new(None);
    let mut cached = SNAPSHOT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((taken, addrs)) = cached.as_ref() {
        if taken.elapsed() < SNAPSHOT_TTL {
            return addrs.clone();
        }
    }
    let addrs = Arc::new(listening().into_iter().map(|l| l.addr).collect::<Vec<_>>());
    *cached = Some((Instant::now(), addrs.clone()));
    addrs
}

/// Listening sockets on one port (from a snapshot at most half a second old).
pub fn listening_on_port(port: u16) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = listening_snapshot()
        .iter()
        .copied()
        .filter(|a| a.port() == port)
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let found: Vec<SocketAddr> = listening()
            .into_iter()
            .map(|l| l.addr)
            .filter(|a| a.port() == addr.port())
            .collect();
        assert_eq!(found, vec![addr]);
    }
}
