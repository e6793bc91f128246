//! Choosing the upstream peer: carry out the plan's first attempt, pace the retries of a
//! refused target within the wait budget, and set the peer's timeouts.

use super::ctx::RequestCtx;
use super::failure::connect_failure;
use super::upstream_protocol;
use crate::error::ProxyError;
use crate::routing::{Direct, UpstreamProtocol, WaitPolicy};
use crate::state::ProxyState;
use pingora::prelude::*;
use pingora::ErrorType;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a request body may pause before the request ends with 408. pingora's own
/// default, set explicitly so that the error message can name it.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Carries out a node's plan for the first attempt: the target, its host override and
/// its protocol go into the context, and the wait budget starts.
pub fn first_attempt(plan: Direct, ctx: &mut RequestCtx) -> SocketAddr {
    let addr = plan.target.addr;
    ctx.host_override = plan.host_override;
    ctx.upstream_protocol = plan.protocol;
    ctx.target = Some(plan.target);
    ctx.wait_budget = plan.wait;
    ctx.wait_started = Some(Instant::now());
    addr
}

/// A request refused before connecting keeps its error in the context, for
/// `fail_to_proxy` to answer.
pub(super) fn refuse(ctx: &mut RequestCtx, err: ProxyError) -> Result<SocketAddr> {
    let row = err.describe();
    ctx.early_error = Some(err);
    Error::e_explain(ErrorType::HTTPStatus(row.status), row.message)
}

/// Pauses before retrying a refused target; gives up early if the client leaves.
pub async fn pause_before_retry(session: &mut Session, ctx: &RequestCtx) -> Result<()> {
    let pause = WaitPolicy::backoff(ctx.refusals).min(ctx.wait_left());
    // Only a request without a body can be watched for a hang-up without consuming
    // its body; one with a body waits out the (bounded) pause.
    let watch_client = session.as_downstream_mut().is_body_empty();
    tokio::select! {
        _ = tokio::time::sleep(pause) => Ok(()),
        gone = session.as_downstream_mut().read_body_or_idle(true), if watch_client => {
            let mut e = match gone {
                Err(e) => e,
                Ok(_) => Error::new(ErrorType::ConnectionClosed),
            };
            e.as_down();
            Err(e)
        }
    }
}

/// The peer for `addr`, spoken to in `protocol`, with this request's timeouts.
pub fn peer(
    addr: SocketAddr,
    protocol: UpstreamProtocol,
    session: &mut Session,
    state: &ProxyState,
) -> Box<HttpPeer> {
    // A SocketAddr resolves without any name lookup.
    let mut peer = HttpPeer::new(addr, false, String::new());
    upstream_protocol::apply(&mut peer, protocol);
    peer.options.connection_timeout = Some(state.timeouts.connect);
    // No read, write or idle timeout by default: a quiet WebSocket or a long poll must
    // survive. The optional tunnel idle timeout applies to upgrades only, the optional
    // upstream read timeout to everything else.
    if session.is_upgrade_req() {
        peer.options.read_timeout = state.tunnel.idle_timeout;
        // pingora reads a downstream body, upgraded bytes included, with a 60 s timeout
        // of its own: without this, a WebSocket quiet both ways for a minute (an HMR
        // socket between edits) was closed under the user.
        session.set_read_timeout(state.tunnel.idle_timeout);
    } else {
        peer.options.read_timeout = state.timeouts.upstream_read;
        session.set_read_timeout(Some(BODY_READ_TIMEOUT));
    }
    Box::new(peer)
}

/// Counts a failed connection attempt, and asks pingora to retry a refused target (a
/// dev server restarting) while the wait budget lasts.
pub fn on_connect_failure(
    state: &ProxyState,
    ctx: &mut RequestCtx,
    mut e: Box<Error>,
) -> Box<Error> {
    let metrics = &state.recorder.metrics;
    metrics.connect_failed(connect_failure(&e));
    let retry = e.etype() == &ErrorType::ConnectRefused && ctx.within_wait_budget();
    if retry {
        ctx.refusals += 1;
        metrics.wait_retries.inc();
    }
    e.set_retry(retry);
    e
}
