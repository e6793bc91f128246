//! What the proxy keeps about one request between pingora's phases.

use crate::error::ProxyError;
use crate::observe::{EndReason, TunnelGuard};
use crate::routing::{Hop, Target, UpstreamProtocol};
use http::HeaderValue;
use std::time::{Duration, Instant};

/// Per-request state.
pub struct RequestCtx {
    /// When the request head had been read.
    pub started: Instant,
    /// Why the request ended, when not with a complete exchange.
    pub end: Option<EndReason>,
    /// Where the request was routed, once `upstream_peer` ran.
    pub target: Option<Target>,
    /// An error decided before connecting (routing, loop), answered by `fail_to_proxy`.
    pub early_error: Option<ProxyError>,
    /// When the first connection attempt started, and how long refusals may be retried.
    pub wait_started: Option<Instant>,
    pub wait_budget: Duration,
    /// Connection attempts refused so far.
    pub refusals: u32,
    /// Held while the request is an open WebSocket tunnel.
    pub tunnel: Option<TunnelGuard>,
    /// The `Host` to send instead of the client's (`X-Cmux-Host-Override` or the
    /// proxy's default), checked when the request was routed.
    pub host_override: Option<HeaderValue>,
    /// How the target is spoken to, chosen when the request was routed.
    pub upstream_protocol: UpstreamProtocol,
    /// Edge mode: the machine and what its node is told (boxed: node mode pays one
    /// pointer for it).
    pub hop: Option<Box<Hop>>,
    /// The client is in `trusted_clients`: its `X-Forwarded-Proto` and `-Host` name
    /// the origin the browser used.
    pub trusted_front: bool,
}

impl RequestCtx {
    pub fn new() -> Self {
        RequestCtx {
            started: Instant::now(),
            end: None,
            target: None,
            early_error: None,
            wait_started: None,
            wait_budget: Duration::ZERO,
            refusals: 0,
            tunnel: None,
            host_override: None,
            upstream_protocol: UpstreamProtocol::Http1,
            hop: None,
            trusted_front: false,
        }
    }

    /// Whether a refused target may still be retried.
    pub fn within_wait_budget(&self) -> bool {
        self.wait_started
            .is_some_and(|t| t.elapsed() < self.wait_budget)
    }

    /// Time left of the wait budget.
    pub fn wait_left(&self) -> Duration {
        let elapsed = self.wait_started.map_or(Duration::ZERO, |t| t.elapsed());
        self.wait_budget.saturating_sub(elapsed)
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
