//! Which TCP sockets listen on this machine (from the kernel's `sock_diag` interface,
//! or `/proc/net/tcp` and `/proc/net/tcp6`; no external tools), and what that means for
//! a refused target.
//!
//! Used to explain a 502: "nothing listens on 127.18.0.7:5173, but a server listens on
//! [::1]:5173, outside the workspace" is the most common dev-server mistake.

use crate::route::Target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `st` value of a listening socket in `/proc/net/tcp*`.
const TCP_LISTEN: &str = "0A";

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    /// Socket inode, to find the owning process in `/proc/*/fd`.
    pub inode: u64,
}

/// All listening TCP sockets (IPv4 and IPv6): from the kernel's `sock_diag` netlink
/// interface, or from `/proc/net/tcp*` where netlink is not available.
pub fn listening() -> Vec<Listener> {
    match crate::sock_diag::listening() {
        Ok(listeners) => listeners,
        Err(e) => {
            log::debug!("sock_diag unavailable ({e}); reading /proc/net/tcp*");
            listening_from_proc()
        }
    }
}

/// All listening TCP sockets from `/proc/net/tcp*`. Unreadable files count as empty.
pub fn listening_from_proc() -> Vec<Listener> {
    let mut out = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            out.extend(parse_proc_net_tcp(&text));
        }
    }
    out
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

/// Parses the text of `/proc/net/tcp` or `/proc/net/tcp6`, keeping listening sockets.
pub fn parse_proc_net_tcp(text: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != TCP_LISTEN {
                return None;
            }
            let addr = parse_hex_addr(fields[1])?;
            let inode = fields[9].parse().ok()?;
            Some(Listener { addr, inode })
        })
        .collect()
}

/// `0100007F:0BB8` (IPv4) or 32 hex digits `:PORT` (IPv6), as the kernel prints them:
/// each 32-bit word in host byte order (little-endian here).
fn parse_hex_addr(field: &str) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = field.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let ip = match ip_hex.len() {
        8 => {
            let word = u32::from_str_radix(ip_hex, 16).ok()?;
            IpAddr::V4(Ipv4Addr::from(word.to_le_bytes()))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&ip_hex[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether an address is a workspace address (127.18.0.0/16).
pub fn is_workspace_ip(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 127 && v4.octets()[1] == 18)
}

/// The numeric workspace name of a workspace address: 127.18.0.7 is `workspace-7`.
/// (A hashed name cannot be recovered from its address.)
pub fn workspace_number(ip: IpAddr) -> Option<u32> {
    match ip {
        IpAddr::V4(v4) if is_workspace_ip(ip) => {
            let [_, _, hi, lo] = v4.octets();
            Some(u32::from(hi) << 8 | u32::from(lo))
        }
        _ => None,
    }
}

/// Why a connection to `target` was refused, as facts and a hint for the developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalExplanation {
    /// Other sockets listening on the target's port.
    pub listeners: Vec<SocketAddr>,
    /// One sentence: what to do.
    pub hint: String,
}

/// Explains a refused connection from the sockets that listen on the same port.
pub fn explain_refusal(target: &Target, listeners: Vec<SocketAddr>) -> RefusalExplanation {
    let port = target.addr.port();
    let listed = |addrs: &[&SocketAddr]| {
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let in_workspace = target.workspace.is_some();
    let outside: Vec<&SocketAddr> = listeners
        .iter()
        .filter(|a| !is_workspace_ip(a.ip()))
        .collect();
    let other_workspaces: Vec<&SocketAddr> = listeners
        .iter()
        .filter(|a| is_workspace_ip(a.ip()) && a.ip() != target.addr.ip())
        .collect();
    let hint = if listeners.is_empty() {
        format!(
            "nothing listens on port {port} on this machine: start the server, or if it is restarting, retry or send X-Cmux-Wait-Ms to wait for it"
        )
    } else if in_workspace && !outside.is_empty() {
        format!(
            "a server listens on {}, outside the workspace: start it with the workspace shim or bind it to the workspace address {}",
            listed(&outside),
            target.addr.ip()
        )
    } else if in_workspace {
        format!(
            "a server listens on {}, another workspace's address: check the workspace name",
            listed(&other_workspaces)
        )
    } else if !other_workspaces.is_empty() {
        let names: Vec<String> = other_workspaces
            .iter()
            .map(|a| match workspace_number(a.ip()) {
                Some(n) => format!("{a} (workspace-{n})"),
                None => a.to_string(),
            })
            .collect();
        format!(
            "a server listens on {}: name its workspace with X-Cmux-Workspace-Internal",
            names.join(", ")
        )
    } else {
        format!(
            "a server listens on {}, not on {}: point --upstream-host at it or bind the server to {}",
            listed(&outside),
            target.addr.ip(),
            target.addr.ip()
        )
    };
    RefusalExplanation { listeners, hint }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE_TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 070012 7F:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   2: 0700127F:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   3: 0100007F:0BB8 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 20 4 30 10 -1
";
    const SAMPLE_TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1435 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000700127F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 998 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_listening_sockets_only() {
        let got = parse_proc_net_tcp(SAMPLE_TCP);
        assert_eq!(
            got,
            vec![
                Listener {
                    addr: "127.0.0.1:3000".parse().unwrap(),
                    inode: 12345
                },
                Listener {
                    addr: "127.18.0.7:5173".parse().unwrap(),
                    inode: 777
                },
            ]
        );
        let got6 = parse_proc_net_tcp(SAMPLE_TCP6);
        assert_eq!(got6[0].addr, "[::1]:5173".parse().unwrap());
        // An IPv4-mapped listener is reported as the IPv4 address.
        assert_eq!(got6[1].addr, "127.18.0.7:80".parse().unwrap());
    }

    #[test]
    fn explains_a_server_outside_the_workspace() {
        let target = Target {
            addr: "127.18.0.7:5173".parse().unwrap(),
            workspace: Some("workspace-7".into()),
        };
        let e = explain_refusal(&target, vec!["[::1]:5173".parse().unwrap()]);
        assert!(
            e.hint.contains("[::1]:5173, outside the workspace"),
            "{}",
            e.hint
        );
        assert!(e.hint.contains("127.18.0.7"), "{}", e.hint);
        let e = explain_refusal(&target, vec![]);
        assert!(
            e.hint.starts_with("nothing listens on port 5173"),
            "{}",
            e.hint
        );
        let e = explain_refusal(&target, vec!["127.18.0.8:5173".parse().unwrap()]);
        assert!(e.hint.contains("another workspace"), "{}", e.hint);
    }

    #[test]
    fn explains_a_server_in_a_workspace_for_a_plain_request() {
        let target = Target {
            addr: "127.0.0.1:3000".parse().unwrap(),
            workspace: None,
        };
        let e = explain_refusal(&target, vec!["127.18.0.7:3000".parse().unwrap()]);
        assert!(e.hint.contains("(workspace-7)"), "{}", e.hint);
        assert!(e.hint.contains("X-Cmux-Workspace-Internal"), "{}", e.hint);
    }

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
