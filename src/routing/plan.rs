//! The routing plan: everything about where one request goes, decided once from its
//! head. The HTTP hooks, the CONNECT tunnel and h2c streams only carry it out.

use super::error::RouteError;
use super::protocol::UpstreamProtocol;
use super::target::Target;
use crate::names::{SteeringHeader, MACHINE, NODE_HEADERS};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// The part of a request head that routing reads.
pub struct Head<'a> {
    pub headers: &'a HeaderMap,
    /// The host of an absolute request target, used when there is no `Host` header
    /// (never for CONNECT, whose authority is ignored).
    pub uri_host: Option<&'a str>,
    pub exchange: Exchange,
    /// The request carries a valid token in the token header (an edge's hop to its
    /// node does): it keeps the client's `Host`, which the edge already checked.
    pub vouched: bool,
}

impl Head<'_> {
    /// The `Host` header, or the host of an absolute request target.
    pub fn host(&self) -> Option<&str> {
        self.headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(self.uri_host)
    }
}

/// What kind of exchange the request opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// A plain HTTP request (HTTP/1.1 or an HTTP/2 stream).
    Http,
    /// A WebSocket handshake: always HTTP/1.1 to the target.
    Upgrade,
    /// A CONNECT tunnel: the host override and the upstream protocol do not apply.
    Connect,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Node mode: to a target on this machine.
    Direct(Direct),
    /// Edge mode: to the proxy of the machine that holds the workspace, found through
    /// DNS (boxed: a node's plan stays small).
    Edge(Box<Hop>),
}

/// A request for a target on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direct {
    pub target: Target,
    /// How long refused connections to the target may be retried.
    pub wait: Duration,
    /// The `Host` sent instead of the client's (HTTP only).
    pub host_override: Option<HeaderValue>,
    /// How the target is spoken to (HTTP only).
    pub protocol: UpstreamProtocol,
}

/// A request an edge sends to a machine's proxy: the machine, and what the node is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// A valid DNS label, in lower case.
    pub machine: String,
    pub port: u16,
    pub workspace: Option<String>,
    /// `X-Cmux-Wait-Ms` as sent, for the node to honour.
    pub wait: Option<HeaderValue>,
    /// How the edge speaks to the node.
    pub protocol: UpstreamProtocol,
}

impl Hop {
    /// The headers the node gets for this hop, as (header, value) pairs in the order of
    /// [`NODE_HEADERS`]: port, workspace, wait, and the edge's `node_token`. Every path
    /// (HTTP, WebSocket, h2c, CONNECT) writes exactly these, after removing the client's
    /// own copies ([`for_this_hop_only`]).
    pub fn node_headers<'a>(
        &'a self,
        node_token: Option<&'a HeaderValue>,
    ) -> impl Iterator<Item = (&'static SteeringHeader, HeaderValue)> + 'a {
        let workspace = self
            .workspace
            .as_deref()
            .and_then(|ws| HeaderValue::from_str(ws).ok());
        let values = [
            Some(HeaderValue::from(self.port)),
            workspace,
            self.wait.clone(),
            node_token.cloned(),
        ];
        NODE_HEADERS
            .iter()
            .copied()
            .zip(values)
            .filter_map(|(header, value)| Some((header, value?)))
    }
}

/// Whether a client's header is for this hop only, so never passed to the node as sent:
/// the machine header, and those the edge writes itself ([`Hop::node_headers`]).
pub fn for_this_hop_only(name: &HeaderName) -> bool {
    *name == MACHINE.wire || NODE_HEADERS.iter().any(|h| h.wire == name)
}

/// Why a request is refused before any connection, with its target when it was known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub target: Option<Target>,
}

/// The reason of a [`Refusal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The steering headers (or Host) are missing or invalid (400).
    Invalid(RouteError),
    /// The request would reach this proxy again (508).
    Loop,
    /// The target policy refuses the target (403), for this reason.
    Forbidden(String),
    /// The `Host` is not one of the names this proxy answers to (421); the Host as sent.
    HostNotAllowed(String),
}

impl Refusal {
    pub fn at(reason: Reason, target: &Target) -> Self {
        Refusal {
            reason,
            target: Some(target.clone()),
        }
    }
}

impl From<RouteError> for Refusal {
    fn from(e: RouteError) -> Self {
        Refusal {
            reason: Reason::Invalid(e),
            target: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_headers_in_order_and_only_those_set() {
        let hop = Hop {
            machine: "m1".into(),
            port: 5173,
            workspace: Some("workspace-7".into()),
            wait: None,
            protocol: UpstreamProtocol::Http1,
        };
        let token = HeaderValue::from_static("t0k");
        let written: Vec<_> = hop
            .node_headers(Some(&token))
            .map(|(h, v)| (h.display, v))
            .collect();
        assert_eq!(
            written,
            [
                ("X-Cmux-Port-Internal", HeaderValue::from_static("5173")),
                (
                    "X-Cmux-Workspace-Internal",
                    HeaderValue::from_static("workspace-7")
                ),
                ("X-Cmux-Token", token.clone()),
            ]
        );
        for name in [
            "x-cmux-machine-internal",
            "x-cmux-port-internal",
            "x-cmux-workspace-internal",
            "x-cmux-wait-ms",
            "x-cmux-token",
        ] {
            assert!(for_this_hop_only(&HeaderName::from_static(name)), "{name}");
        }
        for name in ["x-cmux-host-override", "x-cmux-upstream-protocol", "via"] {
            assert!(!for_this_hop_only(&HeaderName::from_static(name)), "{name}");
        }
    }
}
