//! The HTTP side of edge mode: route a request to its machine's proxy, tell that proxy
//! where the request goes, and name the machine when it cannot be reached.

use super::ctx::RequestCtx;
use super::failure::connect_error_kind;
use super::peer::refuse;
use crate::access::TOKEN_HEADER;
use crate::edge::{node_for, Edge, Hop, MACHINE};
use crate::error::{grpc, ProxyErrorKind};
use crate::routing::{requested_protocol, Target, UpstreamProtocol};
use crate::state::ProxyState;
use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Finds the node for a request at an edge. No retries: a node that refuses is down,
/// and the node itself waits for a restarting dev server.
pub async fn first_attempt(
    state: &ProxyState,
    edge: &Edge,
    req: &RequestHeader,
    upgrade: bool,
    ctx: &mut RequestCtx,
) -> Result<SocketAddr> {
    ctx.upstream_protocol = protocol_to_node(req, upgrade);
    let hop = match edge.hop(&req.headers) {
        Ok(hop) => hop,
        Err(e) => return refuse(ctx, e.into()),
    };
    let located = node_for(edge, &state.router.loops, &hop, &req.headers).await;
    // Kept before anything can fail, so that the access log names the machine.
    ctx.hop = Some(Box::new(hop));
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

/// How the edge speaks to the node: h2c for gRPC and for a request that asks its target
/// to be spoken to in h2c (nodes serve h2c on their listener, and a gRPC call needs
/// HTTP/2 end to end for its trailers); HTTP/1.1 otherwise, upgrades included. What the
/// node then speaks to the target is the node's choice, from the same headers.
fn protocol_to_node(req: &RequestHeader, upgrade: bool) -> UpstreamProtocol {
    let asked_h2c = matches!(
        requested_protocol(&req.headers),
        Ok(Some(UpstreamProtocol::H2c))
    );
    if !upgrade && (grpc::is_grpc(&req.headers) || asked_h2c) {
        UpstreamProtocol::H2c
    } else {
        UpstreamProtocol::Http1
    }
}

/// What the node is told: the machine header goes, the port and workspace headers (and
/// the wait, if any) are set from the hop, and the node token is the token header.
pub fn tell_node(
    upstream: &mut RequestHeader,
    hop: &Hop,
    node_token: Option<&HeaderValue>,
) -> Result<()> {
    upstream.remove_header(&MACHINE);
    upstream.insert_header("X-Cmux-Port-Internal", hop.port.to_string())?;
    if let Some(ws) = &hop.workspace {
        upstream.insert_header("X-Cmux-Workspace-Internal", ws.as_str())?;
    }
    if let Some(wait) = &hop.wait {
        upstream.insert_header("X-Cmux-Wait-Ms", wait.clone())?;
    }
    if let Some(token) = node_token {
        upstream.insert_header(TOKEN_HEADER.clone(), token.clone())?;
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
