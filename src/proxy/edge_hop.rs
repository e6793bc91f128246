//! The HTTP side of edge mode: route a request to its machine's proxy, tell that proxy
//! where the request goes, and name the machine when it cannot be reached.

use super::ctx::RequestCtx;
use super::failure::connect_error_kind;
use super::peer::refuse;
use crate::edge::{node_for, Edge};
use crate::error::ProxyErrorKind;
use crate::names::MACHINE;
use crate::routing::{Hop, Target};
use crate::state::ProxyState;
use http::{HeaderMap, HeaderValue};
use pingora::http::RequestHeader;
use pingora::prelude::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Carries out an edge's plan: finds the node of the hop's machine. No retries: a node
/// that refuses is down, and the node itself waits for a restarting dev server.
pub async fn first_attempt(
    state: &ProxyState,
    edge: &Edge,
    hop: Box<Hop>,
    headers: &HeaderMap,
    ctx: &mut RequestCtx,
) -> Result<SocketAddr> {
    ctx.upstream_protocol = hop.protocol;
    let located = node_for(edge, &state.router.loops, &hop, headers).await;
    // Kept before anything can fail, so that the access log names the machine.
    ctx.hop = Some(hop);
    let node = match located {
        Ok(node) => node,
        Err(e) => return refuse(ctx, e),
    };
    let addr = node.addr;
    ctx.target = Some(node);
    ctx.wait_budget = Duration::ZERO;
    ctx.wait_started = Some(Instant::now());
    Ok(addr)
}

/// What the node is told: the machine header goes, and the hop's headers
/// ([`Hop::node_headers`]) replace the client's.
pub fn tell_node(
    upstream: &mut RequestHeader,
    hop: &Hop,
    node_token: Option<&HeaderValue>,
) -> Result<()> {
    upstream.remove_header(&MACHINE.wire);
    for (header, value) in hop.node_headers(node_token) {
        upstream.insert_header(header.display, value)?;
    }
    Ok(())
}

/// A failure to connect to a node, as the contract names it: the machine is
/// unreachable.
pub fn unreachable(e: &Error, hop: &Hop, node: Option<&Target>) -> Option<ProxyErrorKind> {
    let kind = connect_error_kind(e)?;
    Some(ProxyErrorKind::MachineUnreachable {
        machine: hop.machine.clone(),
        node: node?.addr,
        timed_out: kind == ProxyErrorKind::ConnectTimeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProxyError;
    use pingora::ErrorType;

    #[test]
    fn connect_failures_name_the_machine() {
        let hop = Hop {
            machine: "m7".into(),
            port: 3000,
            workspace: None,
            wait: None,
            protocol: crate::routing::UpstreamProtocol::Http1,
        };
        let node = Target {
            addr: "10.0.3.7:8080".parse().unwrap(),
            workspace: None,
        };
        let kind = |etype| unreachable(&Error::new(etype), &hop, Some(&node));
        let refused = kind(ErrorType::ConnectRefused).unwrap();
        let err = ProxyError::without_target(refused);
        assert_eq!((err.status(), err.code()), (502, "machine_unreachable"));
        assert!(err.message().contains("\"m7\""), "{}", err.message());
        let timed_out = ProxyError::without_target(kind(ErrorType::ConnectTimedout).unwrap());
        assert_eq!(
            (timed_out.status(), timed_out.code()),
            (504, "machine_unreachable")
        );
        assert!(timed_out.message().contains("10.0.3.7:8080 timed out"));
        // A node that answered and then failed is not an unreachable machine.
        assert_eq!(kind(ErrorType::ReadError), None);
    }
}
