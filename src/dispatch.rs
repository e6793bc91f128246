//! One listener for both kinds of traffic. Before each request on a connection (not only
//! the first of a keep-alive connection) the request head is read here, against one
//! deadline: `CONNECT` goes to the tunnel, anything else is put back in front of the
//! stream and handed to pingora's HTTP proxy.
//!
//! This is a pingora `ServerApp`, so its listening sockets belong to a pingora `Service`
//! and are handed over on a graceful upgrade like any other.

use crate::connect;
use crate::error::{ProxyError, ProxyErrorKind};
use crate::head::{self, Head};
use crate::state::ProxyState;
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

/// Runs `f` when dropped: the connection gauge goes down however the connection ends.
fn scopeguard<F: FnMut()>(f: F) -> impl Drop {
    struct Guard<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Guard<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    Guard(f)
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
        let metrics = &self.state.metrics;
        metrics.connections_accepted.inc();
        metrics.connections_active.inc();
        let _active = scopeguard(|| metrics.connections_active.dec());
        // `None` before the first request; then what pingora hands back for the next.
        let mut reused: Option<Option<HttpPersistentSettings>> = None;
        loop {
            let idle = match reused {
                None => self.state.head_timeout,
                Some(_) => KEEPALIVE_IDLE,
            };
            let read = head::read_head(&mut stream, idle, self.state.head_timeout);
            let head = if reused.is_none() {
                // A new connection is served even if shutdown began since it was accepted.
                read.await
            } else {
                // An idle keep-alive connection closes when the server stops.
                let mut stopping = shutdown.clone();
                tokio::select! {
                    head = read => head,
                    _ = stopping.wait_for(|stop| *stop) => return None,
                }
            };
            let bytes = match head {
                Head::Complete(bytes) if bytes.starts_with(b"CONNECT ") => {
                    // Boxed: the tunnel's state is about 9 KiB, and held inline it would
                    // make every connection's task that large, plain HTTP and idle
                    // WebSockets included.
                    Box::pin(connect::serve(stream, bytes, &self.state)).await;
                    return None;
                }
                // h2c with prior knowledge (gRPC's plaintext mode): refused in HTTP/2
                // terms, where pingora would close without a word.
                Head::Complete(bytes) if bytes.starts_with(HTTP2_PREFACE) => {
                    let err = ProxyError::without_target(ProxyErrorKind::Http2);
                    connect::reject_head(&mut stream, &err, "http", &self.state).await;
                    return None;
                }
                Head::TooLarge(bytes) if bytes.starts_with(b"CONNECT ") => {
                    let err = ProxyError::without_target(ProxyErrorKind::HeadTooLarge);
                    connect::reject_head(&mut stream, &err, "connect", &self.state).await;
                    return None;
                }
                // pingora parses (and answers) everything else, oversized heads included.
                Head::Complete(bytes) | Head::TooLarge(bytes) => bytes,
                Head::TimedOut => {
                    let err = ProxyError::without_target(ProxyErrorKind::HeadTimeout);
                    connect::reject_head(&mut stream, &err, "http", &self.state).await;
                    return None;
                }
                Head::NotHttp(byte) => {
                    let err = ProxyError::without_target(ProxyErrorKind::NotHttp(byte));
                    connect::reject_head(&mut stream, &err, "http", &self.state).await;
                    return None;
                }
                Head::Idle | Head::Closed { .. } => return None,
            };
            // Built inside one statement, so the session's storage is not kept in this
            // task's state while pingora serves the request.
            let serving = self.http.process_new_http(
                new_session(stream, bytes, reused.take().flatten(), shutdown)?,
                shutdown,
            );
            let next = serving.await?;
            let (next_stream, settings) = next.consume();
            stream = next_stream;
            reused = Some(settings);
        }
    }

    async fn cleanup(&self) {
        self.http.http_cleanup().await;
    }
}
