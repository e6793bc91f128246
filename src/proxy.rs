//! The pingora `ProxyHttp` implementation: plain HTTP/1.1 and WebSocket upgrades.
//!
//! pingora does the streaming, keep-alive, upstream pooling and upgrade handling; this
//! module decides where a request goes (`upstream_peer`), waits for a restarting target
//! (`fail_to_connect` asks pingora to retry, `upstream_peer` paces the retries), adjusts
//! the forwarded headers, and turns failures into the contract's error responses
//! (`fail_to_proxy`).

use crate::access_log::Entry;
use crate::error::{BodyFormat, ProxyError, ProxyErrorKind};
use crate::metrics::ConnectFailure;
use crate::route::{self, RouteError, RouteRequest, Target};
use crate::sockets;
use crate::state::{ProxyState, WaitPolicy};
use crate::tunnels::{TunnelGuard, TunnelKind};
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyWarnLogContext};
use pingora::{ErrorSource, ErrorType};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hop-by-hop response headers never passed to the client (RFC 9110 section 7.6.1).
/// pingora writes its own `Connection` and framing headers.
const HOP_BY_HOP_RESPONSE: [&str; 5] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "trailer",
    "upgrade",
];

/// How long a request body may pause before the request ends with 408. pingora's own
/// default, set explicitly so the error message can name it.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

// Header names parsed once: lookups with a `&str` parse and hash the name every time.
static PORT: HeaderName = HeaderName::from_static(route::PORT_HEADER);
static WORKSPACE: HeaderName = HeaderName::from_static(route::WORKSPACE_HEADER);
static WAIT: HeaderName = HeaderName::from_static(route::WAIT_HEADER);
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The headers this proxy adds, as the names pingora writes upstream. Given a
/// `HeaderName`, pingora's insert copies its lower-case text into a new buffer for the
/// name it writes; a static name is used as it is, and goes out in the usual case.
static X_FORWARDED_FOR_CASE: Bytes = Bytes::from_static(b"X-Forwarded-For");
static X_FORWARDED_PROTO_CASE: Bytes = Bytes::from_static(b"X-Forwarded-Proto");
static X_FORWARDED_HOST_CASE: Bytes = Bytes::from_static(b"X-Forwarded-Host");
static VIA_CASE: Bytes = Bytes::from_static(b"Via");

/// The proxy: everything it needs is in the shared state.
pub struct CmuxProxy {
    state: Arc<ProxyState>,
    /// This instance's `Via` entry as a ready header value (most requests carry no `Via`).
    via: HeaderValue,
}

impl CmuxProxy {
    pub fn new(state: Arc<ProxyState>) -> Self {
        let via = HeaderValue::from_str(&state.loops.via).expect("the Via entry is ASCII");
        CmuxProxy { state, via }
    }
}

/// The values of a list header (`X-Forwarded-For`, `Via`) joined with ", ", then `entry`
/// appended, as a new header value.
fn append_list_entry(
    req: &RequestHeader,
    name: &HeaderName,
    entry: impl FnOnce(&mut String),
) -> String {
    let mut joined = String::with_capacity(48);
    for value in req.headers.get_all(name) {
        joined.push_str(std::str::from_utf8(value.as_bytes()).unwrap_or("\u{FFFD}"));
        joined.push_str(", ");
    }
    entry(&mut joined);
    joined
}

/// An IP address as text. IPv4, the common case, without the formatting machinery
/// (about 1,500 instructions per request through `Display`).
fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Per-request state.
pub struct RequestCtx {
    /// When the request head had been read.
    pub started: Instant,
    /// The code of the error answered, for the access log.
    pub error_code: Option<&'static str>,
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
}

/// Every value of one header, as text (invalid UTF-8 shows as U+FFFD).
fn header_values<'a>(req: &'a RequestHeader, name: &HeaderName) -> Vec<&'a str> {
    req.headers
        .get_all(name)
        .iter()
        .map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or("\u{FFFD}"))
        .collect()
}

/// Routes one request header to its target, by the contract's rules.
pub fn route_request(
    req: &RequestHeader,
    default_host: std::net::IpAddr,
) -> Result<Target, RouteError> {
    let ports = header_values(req, &PORT);
    let workspaces = header_values(req, &WORKSPACE);
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.host());
    route::resolve(
        RouteRequest {
            port_values: &ports,
            workspace_values: &workspaces,
            host,
        },
        default_host,
    )
}

/// The wait the request asks for with `X-Cmux-Wait-Ms`, if it does.
fn requested_wait_ms(req: &RequestHeader) -> Result<Option<u64>, RouteError> {
    req.headers
        .get(&WAIT)
        .map(|v| route::parse_wait_ms(v.to_str().unwrap_or("\u{FFFD}")))
        .transpose()
}

/// Chooses the error body format from the request's `Accept` header.
pub fn body_format(req: &RequestHeader) -> BodyFormat {
    BodyFormat::from_accept(
        req.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    )
}

/// What to do about a request pingora failed to proxy.
enum Failure {
    /// Answer with the contract's error response.
    Answer(ProxyErrorKind),
    /// Nobody to answer, or nothing may be written: close, logging this error code.
    Close(Option<&'static str>),
    /// A failure of the proxy itself (500).
    Internal,
}

/// Maps every pingora error to what the client gets.
async fn classify(
    e: &Error,
    target: Option<&Target>,
    upgraded: bool,
    read_timeout: Option<Duration>,
) -> Failure {
    let downstream = e.esource() == &ErrorSource::Downstream;
    match e.etype() {
        // A WebSocket closed by `tunnel_idle_timeout_ms`: an expected end, and the
        // connection is no longer HTTP.
        ErrorType::ReadTimedout if upgraded => Failure::Close(Some("idle_timeout")),
        ErrorType::ReadTimedout if downstream => Failure::Answer(ProxyErrorKind::BodyTimeout),
        // The client went away.
        ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed
            if downstream =>
        {
            Failure::Close(None)
        }
        // pingora's signal for a client that sent its next request before this one's
        // response ended (pipelining, which pingora does not serve): close without an
        // answer, so the client retries what was not answered (RFC 9112 section 9.3.2)
        // instead of an error for a valid request, and never blame the target.
        ErrorType::ConnectError if downstream => Failure::Close(Some("pipelined")),
        // A body that breaks its framing (a bad chunk size, say).
        _ if downstream => Failure::Answer(ProxyErrorKind::BadBody(body_error_reason(e))),
        ErrorType::ConnectRefused => Failure::Answer(ProxyErrorKind::PortClosed(match target {
            Some(t) => Some(explain(t).await),
            None => None,
        })),
        ErrorType::ConnectTimedout => Failure::Answer(ProxyErrorKind::ConnectTimeout),
        // `upstream_read_timeout_ms` ran out: 504 before a response head; after one,
        // pingora writes nothing more and the connection closes with the body cut short.
        ErrorType::ReadTimedout => Failure::Answer(ProxyErrorKind::ReadTimeout(
            read_timeout.unwrap_or_default(),
        )),
        ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::BindError
        | ErrorType::SocketError => {
            Failure::Answer(ProxyErrorKind::ConnectFailed(e.root_cause().to_string()))
        }
        _ if e.esource() == &ErrorSource::Upstream => {
            Failure::Answer(ProxyErrorKind::UpstreamClosed)
        }
        // Read, write or close errors from neither side in particular: the connection is gone.
        ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => {
            Failure::Close(None)
        }
        _ => Failure::Internal,
    }
}

/// A failed request's connection is never reused.
fn closed(error_code: u16) -> FailToProxy {
    FailToProxy {
        error_code,
        can_reuse_downstream: false,
    }
}

/// Why pingora refused a request body, from the innermost pingora error (the outer ones
/// carry the peer's description as their context).
fn body_error_reason(e: &Error) -> String {
    match e.root_cause().downcast_ref::<Error>() {
        Some(inner) => inner
            .context
            .as_ref()
            .map_or_else(|| inner.etype().as_str().to_string(), |c| c.to_string()),
        None => e.root_cause().to_string(),
    }
}

/// What listens on the refused target's port, for the 502 body. Reading
/// `/proc/net/tcp*` is blocking file I/O that grows with every socket on the machine
/// (a busy machine with 100k TIME_WAIT sockets takes a few hundred ms), so it runs on
/// the blocking pool, never on a proxy worker thread.
pub async fn explain(target: &Target) -> sockets::RefusalExplanation {
    let port = target.addr.port();
    let listeners = tokio::task::spawn_blocking(move || sockets::listening_on_port(port))
        .await
        .unwrap_or_default();
    let others = listeners
        .into_iter()
        .filter(|a| *a != target.addr)
        .collect();
    sockets::explain_refusal(target, others)
}

impl CmuxProxy {
    /// Routing and loop checks for the first attempt of a request.
    fn first_attempt(
        &self,
        req: &RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<Target, ProxyError> {
        let target = route_request(req, self.state.upstream_host)?;
        let via = header_values(req, &http::header::VIA);
        if self.state.loops.seen_in(via) || self.state.loops.is_own_listener(target.addr) {
            return Err(ProxyError::new(ProxyErrorKind::LoopDetected, &target));
        }
        ctx.wait_budget = self.state.wait.budget(requested_wait_ms(req)?);
        ctx.wait_started = Some(Instant::now());
        Ok(target)
    }

    /// Pauses before retrying a refused target; gives up early if the client leaves.
    async fn pause_before_retry(&self, session: &mut Session, ctx: &RequestCtx) -> Result<()> {
        let elapsed = ctx.wait_started.map_or(Duration::ZERO, |t| t.elapsed());
        let pause = WaitPolicy::backoff(ctx.refusals).min(ctx.wait_budget.saturating_sub(elapsed));
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
}

#[async_trait]
impl ProxyHttp for CmuxProxy {
    type CTX = RequestCtx;

    /// No downstream modules: pingora's default adds a (disabled) compression module,
    /// whose per-request context a pure pass-through proxy does not need.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx {
            started: Instant::now(),
            error_code: None,
            target: None,
            early_error: None,
            wait_started: None,
            wait_budget: Duration::ZERO,
            refusals: 0,
            tunnel: None,
        }
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let addr = match &ctx.target {
            None => match self.first_attempt(session.req_header(), ctx) {
                Ok(target) => {
                    let addr = target.addr;
                    ctx.target = Some(target);
                    addr
                }
                Err(err) => {
                    let status = err.status();
                    let msg = err.message();
                    ctx.early_error = Some(err);
                    return Error::e_explain(ErrorType::HTTPStatus(status), msg);
                }
            },
            Some(target) => {
                let addr = target.addr;
                self.pause_before_retry(session, ctx).await?;
                addr
            }
        };
        // A SocketAddr resolves without any name lookup.
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(self.state.connect_timeout);
        // No read, write or idle timeout by default: a quiet WebSocket or a long poll
        // must survive. The optional tunnel idle timeout applies to upgrades only, the
        // optional upstream read timeout to everything else.
        if session.is_upgrade_req() {
            peer.options.read_timeout = self.state.tunnel_idle_timeout;
            // pingora reads a downstream body, upgraded bytes included, with a 60 s
            // timeout of its own: without this, a WebSocket quiet both ways for a minute
            // (an HMR socket between edits) was closed under the user.
            session.set_read_timeout(self.state.tunnel_idle_timeout);
        } else {
            peer.options.read_timeout = self.state.upstream_read_timeout;
            session.set_read_timeout(Some(BODY_READ_TIMEOUT));
        }
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        _ctx: &mut Self::CTX,
    ) -> Result<()> {
        upstream.remove_header(&PORT);
        upstream.remove_header(&WORKSPACE);
        upstream.remove_header(&WAIT);

        if let Some(client) = session.client_addr().and_then(|a| a.as_inet()) {
            let forwarded =
                append_list_entry(upstream, &X_FORWARDED_FOR, |out| push_ip(out, client.ip()));
            upstream.insert_header(X_FORWARDED_FOR_CASE.clone(), forwarded)?;
        }
        if !upstream.headers.contains_key(&X_FORWARDED_PROTO) {
            upstream.insert_header(
                X_FORWARDED_PROTO_CASE.clone(),
                HeaderValue::from_static("http"),
            )?;
        }
        if !upstream.headers.contains_key(&X_FORWARDED_HOST) {
            if let Some(host) = upstream.headers.get(http::header::HOST).cloned() {
                upstream.insert_header(X_FORWARDED_HOST_CASE.clone(), host)?;
            }
        }
        // Mark the request as ours, so that it is refused if it ever comes back.
        if upstream.headers.contains_key(http::header::VIA) {
            let via = append_list_entry(upstream, &http::header::VIA, |out| {
                out.push_str(&self.state.loops.via)
            });
            upstream.insert_header(VIA_CASE.clone(), via)?;
        } else {
            upstream.insert_header(VIA_CASE.clone(), self.via.clone())?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        if response.status == 101 {
            // A WebSocket handshake answer keeps `Connection: Upgrade` and `Upgrade`;
            // from here on the request is a tunnel.
            if session.is_upgrade_req() {
                ctx.tunnel = Some(self.state.tunnels.open(TunnelKind::WebSocket));
            }
            return Ok(());
        }
        // Remove only what is present: each removal from pingora's case-preserving
        // header map costs hundreds of instructions, and usually there is nothing to
        // remove but what `Connection` (which pingora rewrites itself) nominates.
        let nominated = response
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.eq_ignore_ascii_case("close") && !t.eq_ignore_ascii_case("keep-alive"));
        let mut doomed: Vec<HeaderName> = nominated
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        doomed.extend(
            response
                .headers
                .keys()
                .filter(|name| HOP_BY_HOP_RESPONSE.contains(&name.as_str()))
                .cloned(),
        );
        for name in &doomed {
            response.remove_header(name);
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Self::CTX,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // A refused port may be a dev server restarting: retry within the wait budget.
        let within_budget = ctx
            .wait_started
            .is_some_and(|t| t.elapsed() < ctx.wait_budget);
        let refused = e.etype() == &ErrorType::ConnectRefused;
        self.state.metrics.connect_failed(match e.etype() {
            ErrorType::ConnectRefused => ConnectFailure::Refused,
            ErrorType::ConnectTimedout => ConnectFailure::Timeout,
            _ => ConnectFailure::Other,
        });
        let retry = refused && within_budget;
        if retry {
            ctx.refusals += 1;
            self.state.metrics.wait_retries.inc();
        }
        e.set_retry(retry);
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let err = match ctx.early_error.take() {
            Some(err) => err,
            None => match classify(
                e,
                ctx.target.as_ref(),
                session.was_upgraded(),
                self.state.upstream_read_timeout,
            )
            .await
            {
                Failure::Answer(kind) => ProxyError {
                    kind,
                    target: ctx.target.clone(),
                },
                Failure::Close(code) => {
                    ctx.error_code = code;
                    return closed(0);
                }
                Failure::Internal => {
                    let _ = session.respond_error(500).await;
                    return closed(500);
                }
            },
        };
        let status = err.status();
        ctx.error_code = Some(err.code());
        let format = body_format(session.req_header());
        let body: Bytes = err.body(format);
        if let Ok(mut header) = ResponseHeader::build(status, Some(3)) {
            let _ = header.insert_header(http::header::CONTENT_TYPE, format.content_type());
            let _ = header.insert_header(http::header::CONTENT_LENGTH, body.len());
            let _ = header.insert_header(http::header::CACHE_CONTROL, "no-store");
            if let Err(write_err) = session
                .as_downstream_mut()
                .write_error_response(header, body)
                .await
            {
                log::debug!("could not send error response: {write_err}");
            }
        }
        closed(status)
    }

    /// Errors that are answered with a proper response (or a client that left) are the
    /// client's business, not the operator's: keep them out of the error log.
    fn suppress_error_log(&self, _session: &Session, ctx: &Self::CTX, error: &Error) -> bool {
        ctx.target.is_some()
            || matches!(error.etype(), ErrorType::HTTPStatus(_))
            || error.esource() == &ErrorSource::Downstream
    }

    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        _ctx: &Self::CTX,
        error: &Error,
        _context: ProxyWarnLogContext,
    ) -> bool {
        // Each retry of a refused port is expected while waiting for it.
        error.etype() == &ErrorType::ConnectRefused
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX) {
        let kind = if ctx.tunnel.is_some() {
            TunnelKind::WebSocket.as_str()
        } else {
            "http"
        };
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let duration = ctx.started.elapsed();
        let bytes_in = session.body_bytes_read() as u64;
        let bytes_out = session.body_bytes_sent() as u64;
        let target = ctx.target.as_ref();
        let req = session.req_header();
        self.state.record(&Entry {
            client: session.client_addr().and_then(|a| a.as_inet()).copied(),
            method: req.method.as_str(),
            path: req.uri.path_and_query().map_or("/", |p| p.as_str()),
            workspace: target.and_then(|t| t.workspace.as_deref()),
            target: target.map(|t| t.addr),
            kind,
            status,
            bytes_in,
            bytes_out,
            duration,
            error: ctx.error_code.or_else(|| e.map(|_| "client_closed")),
        });
        ctx.tunnel.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.18.1.255",
            "10.20.100.9",
            "255.255.255.255",
            "::1",
            "fe80::1:2",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }

    #[test]
    fn list_entry_is_appended_to_every_value() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        let add = |out: &mut String| out.push_str("10.0.0.3");
        assert_eq!(append_list_entry(&req, &X_FORWARDED_FOR, add), "10.0.0.3");
        req.append_header("X-Forwarded-For", "10.0.0.1").unwrap();
        req.append_header("X-Forwarded-For", "10.0.0.2").unwrap();
        assert_eq!(
            append_list_entry(&req, &X_FORWARDED_FOR, add),
            "10.0.0.1, 10.0.0.2, 10.0.0.3"
        );
    }
}
