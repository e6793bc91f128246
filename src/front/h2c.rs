//! HTTP/2 in plaintext with prior knowledge (h2c), as gRPC clients and
//! `curl --http2-prior-knowledge` speak it, on the same listener as HTTP/1.1 and CONNECT.
//!
//! pingora serves HTTP/2 itself; what is ours is the accept loop around it. pingora's own
//! loop (`accept_downstream_sessions`) is crate-private in 0.9.1, and its handshake has no
//! deadline, so a client that sends half a preface would hold its connection forever.
//! Here the handshake is bounded by the head timeout, a connection with no stream in
//! flight closes after the keep-alive idle time (as an idle HTTP/1.1 connection does),
//! and a client that keeps sending malformed streams is cut off. Each stream is one
//! request for pingora's HTTP proxy, with the same hooks as an HTTP/1.1 request.
//!
//! Each stream to an HTTP/1.1 target takes an upstream socket of its own, so a stream
//! beyond the connection's first counts against the connection limits like a connection
//! (`access::ConnectionLimits::admit_stream`); one over them is answered 503 with
//! `Retry-After`, and the others on the connection go on.

use super::stream_refusal::refuse_stream;
use crate::state::ProxyState;
use pingora::apps::HttpServerApp;
use pingora::protocols::http::v2::server::{self, H2Accept, HttpSession};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Digest, Stream};
use pingora::server::ShutdownWatch;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Streams a client may open at once (pingora's own default).
const MAX_CONCURRENT_STREAMS: u32 = 100;
/// How much of a request body a client may send ahead of the proxy, per stream and per
/// connection. HTTP/2's default (64 KiB) makes a large gRPC message crawl through one
/// round trip per 64 KiB; these match a loopback link, and bound what one connection
/// can make the proxy hold.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 4 << 20;
/// Streams refused as malformed before the connection is closed (pingora's own budget,
/// which its public accept function does not keep across calls).
const MAX_MALFORMED_STREAMS: usize = 32;
/// How long an idle connection that was sent GOAWAY gets to close on its own.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The HTTP/2 settings this proxy offers its clients.
fn options() -> server::H2Options {
    let mut options = server::default_h2_options();
    options
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    options
}

/// The streams of one connection still being served.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    done: Notify,
}

/// Held by the task serving one stream.
struct StreamGuard(Arc<InFlight>);

impl InFlight {
    fn busy(&self) -> bool {
        self.count.load(Ordering::Acquire) != 0
    }

    fn start(self: &Arc<Self>) -> StreamGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        StreamGuard(self.clone())
    }

    /// Returns once no stream has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            while self.count.load(Ordering::Acquire) != 0 {
                self.done.notified().await;
            }
            tokio::time::sleep(idle).await;
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.done.notify_one();
        }
    }
}

/// Serves one h2c connection until it ends. `stream` starts with the client's preface
/// (the bytes the dispatcher read are put back in front of it).
pub async fn serve<H>(
    http: &Arc<H>,
    stream: Stream,
    shutdown: &ShutdownWatch,
    state: &Arc<ProxyState>,
    idle: Duration,
) where
    H: HttpServerApp + Send + Sync + 'static,
{
    let handshake_timeout = state.timeouts.request_head;
    let client = crate::observe::peer_addr(&stream).map(|a| a.ip());
    // Shared by every stream: pingora reads the client's address from it.
    let digest = Arc::new(Digest {
        ssl_digest: None,
        timing_digest: stream.get_timing_digest(),
        proxy_digest: stream.get_proxy_digest(),
        socket_digest: stream.get_socket_digest(),
    });
    let mut conn = match tokio::time::timeout(
        handshake_timeout,
        server::handshake(stream, Some(options())),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            log::debug!("h2c handshake failed: {e}");
            return;
        }
        Err(_) => {
            log::debug!("h2c handshake timed out");
            return;
        }
    };
    let in_flight = Arc::new(InFlight::default());
    let mut stopping = shutdown.clone();
    // Once GOAWAY is sent, streams already opened are still served; an idle connection
    // that does not close by itself is dropped at this deadline.
    let mut draining = false;
    let mut close_by: Option<Instant> = None;
    let mut malformed = 0;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopping.wait_for(|stop| *stop), if !draining => {
                conn.graceful_shutdown();
                draining = true;
                continue;
            }
            _ = in_flight.idle_for(idle), if !draining => {
                conn.graceful_shutdown();
                draining = true;
                close_by = Some(Instant::now() + CLOSE_GRACE);
                continue;
            }
            _ = tokio::time::sleep_until(close_by.unwrap_or_else(Instant::now)), if close_by.is_some() => {
                return;
            }
            accepted = HttpSession::from_h2_conn(&mut conn, digest.clone()) => accepted,
        };
        match accepted {
            Ok(Some(H2Accept::Session(session))) => {
                // The first stream in flight rides on the connection's own slot.
                let extra = match in_flight.busy() {
                    false => None,
                    true => {
                        let metrics = &state.recorder.metrics;
                        let open = usize::try_from(metrics.connections_active.get()).unwrap_or(0);
                        match state.access.limits.admit_stream(client, open) {
                            Ok(slot) => Some(slot),
                            Err(why) => {
                                let state = state.clone();
                                tokio::spawn(async move {
                                    refuse_stream(session, why, &state).await;
                                });
                                continue;
                            }
                        }
                    }
                };
                let guard = in_flight.start();
                let http = http.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    let _extra = extra;
                    http.process_new_http(ServerSession::new_http2(session), &shutdown)
                        .await;
                });
            }
            // pingora answered or reset the stream (a bad :path or :authority, say).
            Ok(Some(H2Accept::Rejected)) => {
                malformed += 1;
                if malformed > MAX_MALFORMED_STREAMS {
                    log::debug!("h2c: too many malformed streams; closing");
                    return;
                }
            }
            // The connection closed cleanly, or broke (clients often just disconnect).
            Ok(None) => return,
            Err(e) => {
                log::debug!("h2c connection ended: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_only_counts_time_with_no_stream_in_flight() {
        let in_flight = Arc::new(InFlight::default());
        let idle = Duration::from_millis(50);
        let started = Instant::now();
        in_flight.idle_for(idle).await;
        assert!(started.elapsed() >= idle);

        // A stream held for 150 ms: idle only 50 ms after it ends.
        let guard = in_flight.start();
        let holder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            drop(guard);
        });
        let started = Instant::now();
        in_flight.idle_for(idle).await;
        assert!(started.elapsed() >= Duration::from_millis(200));
        holder.await.unwrap();
        assert_eq!(in_flight.count.load(Ordering::Acquire), 0);
    }
}
