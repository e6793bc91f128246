//! Relaying an established tunnel: bytes both ways with `splice(2)`, half-close
//! included, until both sides close, the tunnel goes idle, or shutdown's deadline comes.

use super::splice;
use crate::host::sys;
use crate::observe::EndReason;
use crate::routing::Target;
use crate::state::ProxyState;
use pingora::protocols::l4::stream::Stream as TcpStream4;
use pingora::protocols::Stream;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Bytes a tunnel moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TunnelStats {
    pub client_to_target: u64,
    pub target_to_client: u64,
}

/// Relays between the client and the target until the tunnel ends; returns the bytes
/// moved, and why it ended if not by both sides closing.
pub async fn relay(
    client: &Stream,
    upstream: &TcpStream,
    state: &ProxyState,
    target: &Target,
) -> (TunnelStats, Option<EndReason>) {
    // The client's socket, as a tokio stream of our own for splice(2).
    let client_socket = client
        .as_any()
        .downcast_ref::<TcpStream4>()
        .ok_or_else(|| io::Error::other("not a TCP stream"))
        .and_then(|s| splice::take_socket(s.as_raw_fd()));
    let client_socket = match client_socket {
        Ok(s) => s,
        Err(e) => {
            let target = target.describe();
            log::warn!("CONNECT to {target}: cannot take the client socket: {e}");
            return (TunnelStats::default(), Some(EndReason::TunnelClosed));
        }
    };
    let started = Instant::now();
    let last_activity = AtomicU64::new(0);
    let copy = splice::splice_bidirectional(&client_socket, upstream, started, &last_activity);
    let ended = tokio::select! {
        r = copy => r.map_err(|e| (e, EndReason::TunnelClosed)),
        _ = state.tunnels.deadline_reached() => Err((io::Error::other("closed at the shutdown deadline"), EndReason::Shutdown)),
        _ = idle_watch(state.tunnel.idle_timeout, started, &last_activity) => {
            Err((io::Error::other("idle timeout"), EndReason::IdleTimeout))
        }
    };
    match ended {
        Ok((up, down)) => {
            let stats = TunnelStats {
                client_to_target: up,
                target_to_client: down,
            };
            (stats, None)
        }
        Err((e, reason)) => {
            log::debug!("CONNECT tunnel to {} ended: {e}", target.describe());
            if reason == EndReason::Shutdown {
                // A clean end for both peers rather than a reset at process exit.
                sys::shutdown_write(client_socket.as_fd());
                sys::shutdown_write(upstream.as_fd());
            }
            (TunnelStats::default(), Some(reason))
        }
    }
}

/// Resolves once no byte has crossed the tunnel for `timeout`; never without a timeout.
async fn idle_watch(timeout: Option<Duration>, started: Instant, last_ms: &AtomicU64) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        let last = started + Duration::from_millis(last_ms.load(Ordering::Relaxed));
        let idle = last.elapsed();
        if idle >= timeout {
            return;
        }
        tokio::time::sleep(timeout - idle).await;
    }
}
