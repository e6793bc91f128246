//! Which TCP sockets listen on this machine, from the kernel's `sock_diag` interface or,
//! where that is not available, from `/proc/net/tcp*` (no external tools either way).

use super::{proc_net, sock_diag, Listener};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

/// Answers already read, for refusals that happened before they were read.
#[derive(Default)]
struct Answers {
    /// sock_diag, filtered by port: when each port was read, and what listened on it.
    by_port: HashMap<u16, (Instant, Vec<SocketAddr>)>,
    /// `/proc/net/tcp*` (no sock_diag): when the whole table was read, and its addresses.
    whole_table: Option<(Instant, Arc<Vec<SocketAddr>>)>,
}

/// Ports remembered at most; past that the memory starts afresh.
const MOST_PORTS: usize = 4096;

/// Listening sockets on one port, as they are no earlier than `asked`: a refusal is
/// explained by what listened after it, never by an older answer. Lookups take turns,
/// and an answer read after a refusal serves it, so a burst of refusals (a port scan)
/// reads the sockets once per turn, not once per request. Blocking: call it from the
/// blocking pool.
pub fn listening_on_port(port: u16, asked: Instant) -> Vec<SocketAddr> {
    static ANSWERS: Mutex<Option<Answers>> = Mutex::new(None);
    let mut answers = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
    let answers = answers.get_or_insert_with(Answers::default);
    if let Some((read, addrs)) = answers.by_port.get(&port) {
        if *read >= asked {
            return addrs.clone();
        }
    }
    let read = Instant::now();
    let mut addrs: Vec<SocketAddr> = match sock_diag::listening_on(port) {
        Ok(listeners) => listeners.into_iter().map(|l| l.addr).collect(),
        Err(e) => {
            log::debug!("sock_diag unavailable ({e}); reading /proc/net/tcp*");
            whole_table(answers, asked)
                .iter()
                .copied()
                .filter(|a| a.port() == port)
                .collect()
        }
    };
    addrs.sort();
    addrs.dedup();
    if answers.by_port.len() >= MOST_PORTS {
        answers.by_port.clear();
    }
    answers.by_port.insert(port, (read, addrs.clone()));
    addrs
}

/// Every listening address from `/proc/net/tcp*`, as it is no earlier than `asked`.
fn whole_table(answers: &mut Answers, asked: Instant) -> Arc<Vec<SocketAddr>> {
    if let Some((read, addrs)) = &answers.whole_table {
        if *read >= asked {
            return addrs.clone();
        }
    }
    let read = Instant::now();
    let addrs: Vec<SocketAddr> = proc_net::listening_from_proc()
        .into_iter()
        .map(|l| l.addr)
        .collect();
    let addrs = Arc::new(addrs);
    answers.whole_table = Some((read, addrs.clone()));
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

    #[test]
    fn answers_are_never_older_than_the_question() {
        let before = Instant::now();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        assert!(listening_on_port(port, before).is_empty());
        // A server that starts after the first answer is seen by a later question.
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let seen = listening_on_port(port, Instant::now());
        assert_eq!(seen, vec![l.local_addr().unwrap()]);
        // An earlier question is served by that answer, without another read.
        assert_eq!(listening_on_port(port, before), seen);
    }
}
