//! One listener for both kinds of traffic: before each request on a connection (not only
//! the first of a keep-alive connection), look at its first bytes; `CONNECT ` goes to the
//! tunnel, anything else to pingora's HTTP proxy.
//!
//! This is a pingora `ServerApp`, so its listening sockets belong to a pingora `Service`
//! and are handed over on a graceful upgrade like any other.

use crate::connect::{self, TunnelSettings};
use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

const CONNECT_PREFIX: &[u8; 8] = b"CONNECT ";
/// How long an idle keep-alive connection waits for its next request (pingora's own
/// default for HTTP/1.1 keep-alive).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// The application served on each listening socket.
pub struct FrontDoor<H> {
    http: Arc<H>,
    tunnel: TunnelSettings,
}

impl<H> FrontDoor<H> {
    pub fn new(http: H, tunnel: TunnelSettings) -> Self {
        FrontDoor {
            http: Arc::new(http),
            tunnel,
        }
    }
}

/// What the next request on a connection is.
enum NextRequest {
    Connect,
    Http,
    /// Closed, broken, idle too long, or the server is shutting down.
    None,
}

/// Waits for the first bytes of the next request, without consuming them.
async fn peek_next(stream: &mut Stream, wait: Duration, shutdown: &ShutdownWatch) -> NextRequest {
    if *shutdown.borrow() {
        return NextRequest::None;
    }
    let mut first = [0u8; CONNECT_PREFIX.len()];
    let mut shutdown = shutdown.clone();
    tokio::select! {
        peeked = tokio::time::timeout(wait, stream.try_peek(&mut first)) => match peeked {
            Ok(Ok(true)) if &first == CONNECT_PREFIX => NextRequest::Connect,
            Ok(Ok(_)) => NextRequest::Http,
            // Fewer than eight bytes before close or timeout is no HTTP request.
            Ok(Err(_)) | Err(_) => NextRequest::None,
        },
        _ = shutdown.wait_for(|stopping| *stopping) => NextRequest::None,
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
        let mut reused: Option<Option<HttpPersistentSettings>> = None;
        loop {
            let wait = match reused {
                None => self.tunnel.head_timeout,
                Some(_) => KEEPALIVE_IDLE,
            };
            match peek_next(&mut stream, wait, shutdown).await {
                NextRequest::None => return None,
                NextRequest::Connect => {
                    if let Some(stats) = connect::serve(stream, &self.tunnel).await {
                        log::debug!("CONNECT tunnel closed: {stats:?}");
                    }
                    return None;
                }
                NextRequest::Http => {}
            }

            let mut session = ServerSession::new_http1(stream);
            match reused.take().flatten() {
                Some(settings) => settings.apply_to_session(&mut session),
                // As pingora does for a new connection: keep-alive unless shutting down.
                None => session.set_keepalive(if *shutdown.borrow() {
                    None
                } else {
                    Some(KEEPALIVE_IDLE.as_secs())
                }),
            }
            let next = self.http.process_new_http(session, shutdown).await?;
            let (next_stream, settings) = next.consume();
            stream = next_stream;
            reused = Some(settings);
        }
    }

    async fn cleanup(&self) {
        self.http.http_cleanup().await;
    }
}
