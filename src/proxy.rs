//! The pingora `ProxyHttp` implementation: plain HTTP/1.1 and WebSocket upgrades.
//!
//! pingora does the streaming, keep-alive, upstream pooling and upgrade handling; this
//! module only decides where a request goes (`upstream_peer`), adjusts the forwarded
//! headers, and turns failures into the contract's error responses (`fail_to_proxy`).

use crate::config::Settings;
use crate::error::{BodyFormat, ProxyError, ProxyErrorKind};
use crate::route::{self, RouteRequest, Target};
use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::FailToProxy;
use pingora::{ErrorSource, ErrorType};
use std::time::Duration;

/// Hop-by-hop response headers never passed to the client (RFC 9110 section 7.6.1).
/// pingora writes its own `Connection` and framing headers.
const HOP_BY_HOP_RESPONSE: [&str; 5] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "trailer",
    "upgrade",
];

/// Shared state of the proxy: just its settings.
pub struct CmuxProxy {
    upstream_host: std::net::IpAddr,
    connect_timeout: Duration,
}

impl CmuxProxy {
    pub fn new(settings: &Settings) -> Self {
        CmuxProxy {
            upstream_host: settings.upstream_host,
            connect_timeout: settings.connect_timeout,
        }
    }
}

/// Per-request state.
#[derive(Default)]
pub struct RequestCtx {
    /// Where the request was routed, once `upstream_peer` ran.
    pub target: Option<Target>,
    /// A routing failure, answered by `fail_to_proxy`.
    pub route_error: Option<ProxyError>,
}

/// Collects every value of one header as text, for the routing functions.
fn header_values<'a>(req: &'a RequestHeader, name: &str, out: &mut Vec<&'a str>) {
    out.extend(
        req.headers
            .get_all(name)
            .iter()
            .map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or("\u{FFFD}")),
    );
}

/// Routes one request header to its target, by the contract's rules.
pub fn route_request(
    req: &RequestHeader,
    default_host: std::net::IpAddr,
) -> Result<Target, route::RouteError> {
    let mut ports = Vec::new();
    let mut workspaces = Vec::new();
    header_values(req, route::PORT_HEADER, &mut ports);
    header_values(req, route::WORKSPACE_HEADER, &mut workspaces);
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

/// Chooses the error body format from the request's `Accept` header.
pub fn body_format(req: &RequestHeader) -> BodyFormat {
    BodyFormat::from_accept(
        req.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    )
}

/// Maps a pingora error to the contract's error kinds. `None` means the client itself
/// is gone or broke the exchange, so there is nobody to answer.
fn classify(e: &Error) -> Option<ProxyErrorKind> {
    match e.etype() {
        ErrorType::ConnectRefused => Some(ProxyErrorKind::PortClosed),
        ErrorType::ConnectTimedout => Some(ProxyErrorKind::ConnectTimeout),
        ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::BindError
        | ErrorType::SocketError => Some(ProxyErrorKind::ConnectFailed(e.root_cause().to_string())),
        _ => match e.esource() {
            ErrorSource::Upstream => Some(ProxyErrorKind::UpstreamClosed),
            _ => None,
        },
    }
}

#[async_trait]
impl ProxyHttp for CmuxProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx::default()
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let target = match route_request(session.req_header(), self.upstream_host) {
            Ok(t) => t,
            Err(e) => {
                let err = ProxyError::from(e);
                let msg = err.message();
                ctx.route_error = Some(err);
                return Error::e_explain(ErrorType::HTTPStatus(400), msg);
            }
        };
        // A SocketAddr resolves without any name lookup.
        let mut peer = HttpPeer::new(target.addr, false, String::new());
        peer.options.connection_timeout = Some(self.connect_timeout);
        // No read, write or idle timeout: a quiet WebSocket or a long poll must survive.
        ctx.target = Some(target);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        _ctx: &mut Self::CTX,
    ) -> Result<()> {
        upstream.remove_header(route::PORT_HEADER);
        upstream.remove_header(route::WORKSPACE_HEADER);

        if let Some(client) = session.client_addr().and_then(|a| a.as_inet()) {
            let ip = client.ip().to_string();
            let forwarded = match upstream.headers.get_all("x-forwarded-for").iter().count() {
                0 => ip,
                _ => {
                    let mut joined = upstream
                        .headers
                        .get_all("x-forwarded-for")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect::<Vec<_>>()
                        .join(", ");
                    joined.push_str(", ");
                    joined.push_str(&ip);
                    joined
                }
            };
            upstream.insert_header("x-forwarded-for", forwarded)?;
        }
        if !upstream.headers.contains_key("x-forwarded-proto") {
            upstream.insert_header("x-forwarded-proto", "http")?;
        }
        if !upstream.headers.contains_key("x-forwarded-host") {
            if let Some(host) = upstream.headers.get(http::header::HOST).cloned() {
                upstream.insert_header("x-forwarded-host", host)?;
            }
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        _ctx: &mut Self::CTX,
    ) -> Result<()> {
        if response.status == 101 {
            // A WebSocket handshake answer keeps `Connection: Upgrade` and `Upgrade`.
            return Ok(());
        }
        let nominated: Vec<String> = response
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty() && t != "close" && t != "keep-alive")
            .collect();
        for name in nominated
            .iter()
            .map(String::as_str)
            .chain(HOP_BY_HOP_RESPONSE)
        {
            response.remove_header(name);
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        _ctx: &mut Self::CTX,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Retrying the same target at once cannot help: answer now.
        e.set_retry(false);
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let err = match ctx.route_error.take() {
            Some(err) => Some(err),
            None => classify(e).map(|kind| ProxyError {
                kind,
                target: ctx.target.clone(),
            }),
        };
        let Some(err) = err else {
            // The client went away or sent something unusable mid-request.
            let code = match e.etype() {
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => 0,
                _ if e.esource() == &ErrorSource::Downstream => 400,
                _ => 500,
            };
            if code > 0 {
                let _ = session.respond_error(code).await;
            }
            return FailToProxy {
                error_code: code,
                can_reuse_downstream: false,
            };
        };
        let status = err.status();
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
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX) {
        if let Some(e) = e {
            let target = ctx
                .target
                .as_ref()
                .map(Target::describe)
                .unwrap_or_else(|| "-".into());
            log::debug!(
                "{} {} -> {target}: {e}",
                session.req_header().method,
                session.req_header().uri
            );
        }
    }
}
