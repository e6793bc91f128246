//! Listening TCP sockets from the kernel's `sock_diag` netlink interface.
//!
//! `/proc/net/tcp` lists every socket on the machine, TIME_WAIT included, and costs
//! time in proportion (about 0.3 s with 120,000 of them); a `sock_diag` dump asks the
//! kernel for listening sockets only, which stays fast however busy the machine is.

use super::sys::NetlinkSocket;
use super::Listener;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u32 = 10;
const NLMSG_HEADER_LEN: usize = 16;
/// `struct inet_diag_req_v2`.
const REQUEST_LEN: usize = 56;
/// `struct inet_diag_msg` up to and including `idiag_inode`.
const MESSAGE_LEN: usize = 72;

/// All listening TCP sockets, IPv4 and IPv6.
pub fn listening() -> io::Result<Vec<Listener>> {
    listening_on(0)
}

/// Listening TCP sockets on `port` (0: every port). The kernel filters by port, so the
/// cost does not grow with the sockets on other ports (about a millisecond).
pub fn listening_on(port: u16) -> io::Result<Vec<Listener>> {
    let socket = NetlinkSocket::open_sock_diag()?;
    let mut out = Vec::new();
    for (seq, family) in [(1u32, libc::AF_INET), (2, libc::AF_INET6)] {
        socket.send(&dump_request(seq, family as u8, port))?;
        receive_dump(&socket, &mut out)?;
    }
    // The kernel's filter is an optimisation: the answer is checked here as well.
    out.retain(|l| port == 0 || l.addr.port() == port);
    Ok(out)
}

/// A `SOCK_DIAG_BY_FAMILY` dump request for listening TCP sockets of one family, on
/// `port` (its `id.idiag_sport`, big-endian) or on every port (0).
fn dump_request(seq: u32, family: u8, port: u16) -> Vec<u8> {
    let mut msg = Vec::with_capacity(NLMSG_HEADER_LEN + REQUEST_LEN);
    msg.extend_from_slice(&((NLMSG_HEADER_LEN + REQUEST_LEN) as u32).to_ne_bytes());
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    msg.push(family);
    msg.push(libc::IPPROTO_TCP as u8);
    msg.push(0); // no extensions
    msg.push(0); // pad
    msg.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    msg.extend_from_slice(&port.to_be_bytes()); // id.idiag_sport
    msg.resize(NLMSG_HEADER_LEN + REQUEST_LEN, 0); // the rest of the socket id: any
    msg
}

/// Parses one `inet_diag_msg` payload.
fn parse_message(payload: &[u8]) -> Option<Listener> {
    if payload.len() < MESSAGE_LEN {
        return None;
    }
    let port = u16::from_be_bytes([payload[4], payload[5]]);
    let src = &payload[8..24];
    let ip = match i32::from(payload[0]) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3])),
        libc::AF_INET6 => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(src).ok()?);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    let inode = u32::from_ne_bytes(payload[68..72].try_into().ok()?);
    Some(Listener {
        addr: SocketAddr::new(ip, port),
        inode: u64::from(inode),
    })
}

/// Reads one dump to its `NLMSG_DONE`, appending the sockets found.
fn receive_dump(socket: &NetlinkSocket, out: &mut Vec<Listener>) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = socket.recv(&mut buf)?;
        let mut rest = &buf[..n];
        while rest.len() >= NLMSG_HEADER_LEN {
            let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
            if len < NLMSG_HEADER_LEN || len > rest.len() {
                return Err(io::Error::other("malformed netlink message"));
            }
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => return Err(io::Error::other("sock_diag refused the dump")),
                _ => out.extend(parse_message(&rest[NLMSG_HEADER_LEN..len])),
            }
            let aligned = (len + 3) & !3;
            rest = &rest[aligned.min(rest.len())..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_listeners_of_both_families() {
        let v4 = std::net::TcpListener::bind("127.18.0.77:0").unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let found = listening().expect("sock_diag works here");
        for l in [&v4, &v6] {
            let addr = l.local_addr().unwrap();
            let hit = found.iter().find(|f| f.addr == addr);
            assert!(hit.is_some_and(|h| h.inode > 0), "{addr} not in {found:?}");
        }
        // A port-filtered query finds the one socket on that port.
        let port = v4.local_addr().unwrap().port();
        let on_port = listening_on(port).unwrap();
        assert!(on_port.iter().all(|l| l.addr.port() == port), "{on_port:?}");
        assert!(on_port.iter().any(|l| l.addr == v4.local_addr().unwrap()));
        // Agrees with /proc for our sockets.
        let proc_listeners = super::super::proc_net::listening_from_proc();
        for l in [&v4, &v6] {
            let addr = l.local_addr().unwrap();
            let a = found.iter().find(|f| f.addr == addr).unwrap();
            let b = proc_listeners.iter().find(|f| f.addr == addr).unwrap();
            assert_eq!(a.inode, b.inode);
        }
    }
}
