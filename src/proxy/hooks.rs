//! The pingora `ProxyHttp` implementation: each hook is a short sequence of named steps
//! whose work lives in the sibling modules.

use super::ctx::RequestCtx;
use super::forwarded::{self, Sender, ViaEntry};
use super::{admission, authority, edge_hop, hop_by_hop, host_override, peer, redirects, respond};
use crate::access::without_query_token;
use crate::error::{ProxyError, ProxyErrorKind};
use crate::observe::{EndReason, Entry, RequestKind};
use crate::routing::{Exchange, Head, Plan};
use crate::state::ProxyState;
use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyWarnLogContext};
use pingora::{ErrorSource, ErrorType};
use std::net::SocketAddr;
use std::sync::Arc;

/// The HTTP and WebSocket proxy: everything it needs is in the shared state.
pub struct CmuxProxy {
    state: Arc<ProxyState>,
    via: ViaEntry,
}

impl CmuxProxy {
    pub fn new(state: Arc<ProxyState>) -> Self {
        let via = ViaEntry::new(&state.router.loops.via);
        CmuxProxy { state, via }
    }
}

impl CmuxProxy {
    /// Plans the request (once: later attempts are retries of the same target) and
    /// carries out the plan's first attempt.
    async fn carry_out_plan(&self, session: &Session, ctx: &mut RequestCtx) -> Result<SocketAddr> {
        let req = session.req_header();
        let head = Head {
            headers: &req.headers,
            uri_host: req.uri.host(),
            exchange: match session.is_upgrade_req() {
                true => Exchange::Upgrade,
                false => Exchange::Http,
            },
            vouched: self.state.access.header_token_ok(&req.headers),
        };
        match (self.state.router.plan(&head), &self.state.edge) {
            (Ok(Plan::Direct(direct)), _) => {
                if let Some(why) = self.state.host_service_refusal(&direct.target).await {
                    let kind = ProxyErrorKind::TargetForbidden(why);
                    return peer::refuse(ctx, ProxyError::new(kind, &direct.target));
                }
                Ok(peer::first_attempt(direct, ctx))
            }
            (Ok(Plan::Edge(hop)), Some(edge)) => {
                edge_hop::first_attempt(&self.state, edge, hop, &req.headers, ctx).await
            }
            (Ok(Plan::Edge(_)), None) => Error::e_explain(
                ErrorType::InternalError,
                "an edge plan on a proxy without edge state",
            ),
            (Err(refusal), _) => peer::refuse(ctx, refusal.into()),
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
        RequestCtx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        authority::host_from_authority(session.req_header_mut())?;
        admission::admit(&self.state, session, ctx).await
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let addr = match &ctx.target {
            Some(target) => {
                let addr = target.addr;
                peer::pause_before_retry(session, ctx).await?;
                addr
            }
            None => self.carry_out_plan(session, ctx).await?,
        };
        Ok(peer::peer(
            addr,
            ctx.upstream_protocol,
            session,
            &self.state,
        ))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let access = &self.state.access;
        ctx.trusted_front = access.is_trusted(client);
        let sender = Sender {
            client,
            trusted: ctx.trusted_front,
            to_node: ctx.hop.is_some(),
            strip_token_cookie: access.tokens.required(),
        };
        forwarded::rewrite(upstream, &sender, &self.via)?;
        if let Some(hop) = &ctx.hop {
            let token = self.state.edge.as_ref().and_then(|e| e.node_token.as_ref());
            return edge_hop::tell_node(upstream, hop, token);
        }
        match &ctx.host_override {
            Some(host) => host_override::apply(upstream, host),
            None => Ok(()),
        }
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
                ctx.tunnel = Some(self.state.tunnels.open(RequestKind::WebSocket));
            }
        } else {
            hop_by_hop::remove(response);
            if let (Some(target), None) = (ctx.target.as_ref(), &ctx.hop) {
                if self.state.redirects.rewrite_loopback {
                    let req = session.req_header();
                    redirects::rewrite(response, req, target, ctx.trusted_front)?;
                }
            }
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Self::CTX,
        e: Box<Error>,
    ) -> Box<Error> {
        peer::on_connect_failure(&self.state, ctx, e)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        respond::fail(&self.state, session, e, ctx).await
    }

    /// Errors that are answered with a proper response (or a client that left) are the
    /// client's business, not the operator's: keep them out of the error log.
    fn suppress_error_log(&self, _session: &Session, ctx: &Self::CTX, error: &Error) -> bool {
        ctx.target.is_some()
            || matches!(error.etype(), ErrorType::HTTPStatus(_))
            || error.esource() == &ErrorSource::Downstream
    }

    /// What pingora's own warning and error lines say about a request: its own summary
    /// prints the query, `?cmux_token=` included.
    fn request_summary(&self, session: &Session, _ctx: &Self::CTX) -> String {
        let req = session.req_header();
        let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let host = req.headers.get(http::header::HOST);
        format!(
            "{} {}, Host: {}",
            req.method,
            without_query_token(target),
            host.map_or("-".into(), |h| String::from_utf8_lossy(h.as_bytes()))
        )
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
        let kind = match ctx.tunnel {
            Some(_) => RequestKind::WebSocket,
            None => RequestKind::Http,
        };
        let client = session.client_addr().and_then(|a| a.as_inet()).copied();
        let mut entry = Entry::new(kind, client, ctx.started, ctx.target.as_ref());
        let req = session.req_header();
        entry.method = req.method.as_str();
        entry.path = req.uri.path_and_query().map_or("/", |p| p.as_str());
        entry.status = session.response_written().map_or(0, |r| r.status.as_u16());
        entry.bytes_in = session.body_bytes_read() as u64;
        entry.bytes_out = session.body_bytes_sent() as u64;
        entry.end = ctx.end.or_else(|| e.map(|_| EndReason::ClientClosed));
        entry.machine = ctx.hop.as_ref().map(|h| h.machine.as_str());
        self.state.recorder.record(&entry);
        ctx.tunnel.take();
    }
}
