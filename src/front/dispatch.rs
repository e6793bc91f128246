//! The listener's application: reads each request head itself, then hands a `CONNECT`
//! to the tunnel and an HTTP/2 preface to `h2c`, answers what cannot be served at once,
//! and puts everything else back in front of the stream for pingora's HTTP proxy.
//!
//! This is a pingora `ServerApp`, so its listening sockets belong to a pingora `Service`
//! and are handed over on a graceful upgrade like any other.

use super::early::{close_forbidden, refuse};
use super::h2c;
use super::head::{self, content_length_flaw, request_target_flaw, Head, MAX_HEAD_BYTES};
use crate::error::ProxyErrorKind;
use crate::observe::{peer_addr, RequestKind};
use crate::state::ProxyState;
use crate::tunnel;
use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as TcpStream;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

/// How long an idle keep-alive connection waits for its next request (pingora's own
/// default for HTTP/1.1 keep-alive).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// The start of the connection preface of HTTP/2 (RFC 9113 section 3.4); as a request
/// line it reads `PRI * HTTP/2.0`.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// The application served on each listening socket.
pub struct FrontDoor<H> {
    http: Arc<H>,
    state: Arc<ProxyState>,
}

impl<H> FrontDoor<H> {
    pub fn new(http: H, state: Arc<ProxyState>) -> Self {
        FrontDoor {
            http: Arc::new(http),
            state,
        }
    }
}

/// What to do with a connection once a head was read (or not).
enum Next {
    /// Serve it as HTTP/1.1 with pingora: these bytes, then the rest of the stream.
    Http(Vec<u8>),
    /// A CONNECT tunnel.
    Connect(Vec<u8>),
    /// HTTP/2 with prior knowledge: these bytes (the preface), then the rest.
    H2c(Vec<u8>),
    /// Answer with this error, log it as this kind, and close.
    Refuse(ProxyErrorKind, RequestKind),
    /// Close without a word (the client left, or never spoke).
    Close,
}

/// Decides from the head alone.
fn next_for(head: Head) -> Next {
    if let Head::Complete(bytes) = &head {
        if let Some(flaw) = request_target_flaw(bytes) {
            return Next::Refuse(ProxyErrorKind::BadTarget(flaw), RequestKind::Http);
        }
        if let Some(flaw) = content_length_flaw(bytes) {
            return Next::Refuse(ProxyErrorKind::BadContentLength(flaw), RequestKind::Http);
        }
    }
    match head {
        Head::Complete(bytes) if bytes.starts_with(b"CONNECT ") => Next::Connect(bytes),
        // h2c with prior knowledge (gRPC's plaintext mode): served by `h2c`.
        Head::Complete(bytes) if bytes.starts_with(HTTP2_PREFACE) => Next::H2c(bytes),
        // Past the cap, HTTP and CONNECT alike: pingora would read on with no deadline
        // for the whole head and none of the checks above.
        Head::TooLarge(bytes) => {
            let kind = match bytes.starts_with(b"CONNECT ") {
                true => RequestKind::Connect,
                false => RequestKind::Http,
            };
            Next::Refuse(ProxyErrorKind::HeadTooLarge(MAX_HEAD_BYTES), kind)
        }
        Head::Complete(bytes) => Next::Http(bytes),
        Head::TimedOut => Next::Refuse(ProxyErrorKind::HeadTimeout, RequestKind::Http),
        Head::NotHttp(byte) => Next::Refuse(ProxyErrorKind::NotHttp(byte), RequestKind::Http),
        Head::Idle | Head::Closed => Next::Close,
    }
}

/// Puts bytes already read back in front of a TCP stream, for pingora to read again.
/// Every listener here is plain TCP, so the stream is always pingora's TCP stream.
fn unread(stream: Stream, bytes: &[u8]) -> Option<Stream> {
    match stream.into_any().downcast::<TcpStream>() {
        Ok(mut tcp) => {
            tcp.rewind(bytes);
            Some(tcp)
        }
        Err(_) => {
            log::error!("cannot put request bytes back on a non-TCP stream; closing it");
            None
        }
    }
}

/// The HTTP session pingora serves next: the head bytes put back in front of the stream,
/// and keep-alive carried over from the previous request on the connection.
fn new_session(
    stream: Stream,
    head: Vec<u8>,
    reused: Option<HttpPersistentSettings>,
    shutdown: &ShutdownWatch,
) -> Option<ServerSession> {
    let mut session = ServerSession::new_http1(unread(stream, &head)?);
    match reused {
        Some(settings) => settings.apply_to_session(&mut session),
        // As pingora does for a new connection: keep-alive unless shutting down.
        None => session.set_keepalive(if *shutdown.borrow() {
            None
        } else {
            Some(KEEPALIVE_IDLE.as_secs())
        }),
    }
    Some(session)
}

impl<H> FrontDoor<H> {
    /// Reads the next head. A new connection is served even if shutdown began since it
    /// was accepted; an idle keep-alive connection closes when the server stops.
    async fn read_next(&self, stream: &mut Stream, first: bool, shutdown: &ShutdownWatch) -> Next {
        let head_timeout = self.state.timeouts.request_head;
        let idle = if first { head_timeout } else { KEEPALIVE_IDLE };
        let read = head::read_head(stream, idle, head_timeout);
        if first {
            return next_for(read.await);
        }
        let mut stopping = shutdown.clone();
        tokio::select! {
            head = read => next_for(head),
            _ = stopping.wait_for(|stop| *stop) => Next::Close,
        }
    }
}

#[async_trait]
impl<H> ServerApp for FrontDoor<H>
where
    H: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let metrics = &self.state.recorder.metrics;
        metrics.connections_accepted.inc();
        metrics.connections_active.inc();
        let _active = scopeguard::guard((), |()| metrics.connections_active.dec());
        let access = &self.state.access;
        let client = peer_addr(&stream).map(|a| a.ip());
        if !access.client_allowed(client) {
            close_forbidden(&stream, &self.state);
            return None;
        }
        let open = usize::try_from(metrics.connections_active.get()).unwrap_or(0);
        let _slot = match access.limits.admit(client, open) {
            Ok(slot) => slot,
            Err(why) => {
                let kind = ProxyErrorKind::Overloaded(why);
                refuse(&mut stream, kind, RequestKind::Http, &self.state).await;
                return None;
            }
        };
        // `None` before the first request; then what pingora hands back for the next.
        let mut reused: Option<Option<HttpPersistentSettings>> = None;
        loop {
            let bytes = match self
                .read_next(&mut stream, reused.is_none(), shutdown)
                .await
            {
                Next::Http(bytes) => bytes,
                Next::Connect(bytes) => {
                    // Boxed: the tunnel's state is about 9 KiB, and held inline it would
                    // make every connection's task that large, plain HTTP and idle
                    // WebSockets included.
                    Box::pin(tunnel::serve(stream, bytes, &self.state)).await;
                    return None;
                }
                // HTTP/2 only as a connection's first bytes (RFC 9113 section 3.3); after an
                // HTTP/1.1 request it is refused in HTTP/2 terms.
                Next::H2c(_) if reused.is_some() => {
                    let kind = ProxyErrorKind::Http2;
                    refuse(&mut stream, kind, RequestKind::Http, &self.state).await;
                    return None;
                }
                Next::H2c(bytes) => {
                    let stream = unread(stream, &bytes)?;
                    h2c::serve(&self.http, stream, shutdown, &self.state, KEEPALIVE_IDLE).await;
                    return None;
                }
                Next::Refuse(kind, logged_as) => {
                    refuse(&mut stream, kind, logged_as, &self.state).await;
                    return None;
                }
                Next::Close => return None,
            };
            // Built inside one statement, so the session's storage is not kept in this
            // task's state while pingora serves the request.
            let serving = self.http.process_new_http(
                new_session(stream, bytes, reused.take().flatten(), shutdown)?,
                shutdown,
            );
            let (next_stream, settings) = serving.await?.consume();
            stream = next_stream;
            reused = Some(settings);
        }
    }

    async fn cleanup(&self) {
        self.http.http_cleanup().await;
    }
}
