//! One finished request or tunnel, as the access log and metrics record it.

use super::kinds::{EndReason, RequestKind};
use crate::routing::Target;
use pingora::protocols::Stream;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One finished request or tunnel.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub client: Option<SocketAddr>,
    pub method: &'a str,
    pub path: &'a str,
    pub workspace: Option<&'a str>,
    /// Edge mode: the machine the request was sent to.
    pub machine: Option<&'a str>,
    pub target: Option<SocketAddr>,
    pub kind: RequestKind,
    /// 0 when no response was sent.
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: Duration,
    /// Why it ended, if not with a complete exchange.
    pub end: Option<EndReason>,
}

impl<'a> Entry<'a> {
    /// An entry of `kind` from `client` that started at `started`, aimed at `target`
    /// when known; nothing else is known yet.
    pub fn new(
        kind: RequestKind,
        client: Option<SocketAddr>,
        started: Instant,
        target: Option<&'a Target>,
    ) -> Self {
        Entry {
            client,
            method: "-",
            path: "-",
            workspace: target.and_then(|t| t.workspace.as_deref()),
            machine: None,
            target: target.map(|t| t.addr),
            kind,
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
            duration: started.elapsed(),
            end: None,
        }
    }
}

/// A client's address, as pingora saw it at accept.
pub fn peer_addr(stream: &Stream) -> Option<SocketAddr> {
    stream
        .get_socket_digest()
        .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied())
}
