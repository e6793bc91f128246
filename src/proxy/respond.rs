//! Answering a failed request with the contract's error response.

use super::ctx::RequestCtx;
use super::edge_hop;
use super::failure::{classify, Attempt, Failure};
use super::grpc_answer;
use super::peer::BODY_READ_TIMEOUT;
use crate::error::{BodyFormat, ProxyError};
use crate::observe::EndReason;
use crate::routing::is_grpc;
use crate::state::ProxyState;
use pingora::prelude::*;
use pingora::proxy::FailToProxy;

/// A failed request's connection is never reused.
fn closed(error_code: u16) -> FailToProxy {
    FailToProxy {
        error_code,
        can_reuse_downstream: false,
    }
}

/// The error to answer for `e`, or how the request ends without one.
async fn error_for(
    state: &ProxyState,
    session: &Session,
    e: &Error,
    ctx: &mut RequestCtx,
) -> Result<ProxyError, FailToProxy> {
    if let Some(err) = ctx.early_error.take() {
        return Ok(err);
    }
    let target = ctx.target.as_ref();
    if let Some(kind) = ctx
        .hop
        .as_ref()
        .and_then(|h| edge_hop::unreachable(e, h, target))
    {
        return Ok(ProxyError::without_target(kind));
    }
    let attempt = Attempt {
        target,
        upgraded: session.was_upgraded(),
        read_timeout: state.timeouts.upstream_read,
        body_timeout: BODY_READ_TIMEOUT,
        disclosure: state.disclosure(),
    };
    match classify(e, &attempt).await {
        Failure::Answer(kind) => Ok(ProxyError {
            kind,
            target: ctx.target.clone(),
        }),
        Failure::Close(end) => {
            ctx.end = end;
            Err(closed(0))
        }
        Failure::Internal => Err(closed(500)),
    }
}

/// Answers a request pingora failed to proxy: a gRPC request with a gRPC status, any
/// other in the body form its `Accept` asks for.
pub async fn fail(
    state: &ProxyState,
    session: &mut Session,
    e: &Error,
    ctx: &mut RequestCtx,
) -> FailToProxy {
    let grpc = is_grpc(&session.req_header().headers);
    let err = match error_for(state, session, e, ctx).await {
        Ok(err) => err,
        Err(close) => {
            if close.error_code == 500 {
                if grpc {
                    grpc_answer::internal(session).await;
                } else {
                    let _ = session.respond_error(500).await;
                }
            }
            return close;
        }
    };
    let row = err.describe();
    ctx.end = Some(EndReason::Answered(row.code));
    if grpc {
        // pingora logs the HTTP status the table gives the same failure.
        grpc_answer::answer(session, &err).await;
        return closed(row.status);
    }
    let accept = session.req_header().headers.get(http::header::ACCEPT);
    let format = BodyFormat::from_accept(accept.and_then(|v| v.to_str().ok()));
    let body = err.body(format);
    if let Ok(mut header) = ResponseHeader::build(row.status, Some(3)) {
        let _ = header.insert_header(http::header::CONTENT_TYPE, format.content_type());
        let _ = header.insert_header(http::header::CONTENT_LENGTH, body.len());
        let _ = header.insert_header(http::header::CACHE_CONTROL, "no-store");
        for (name, value) in row.headers {
            let _ = header.insert_header(*name, *value);
        }
        let downstream = session.as_downstream_mut();
        if let Err(write_err) = downstream.write_error_response(header, body).await {
            log::debug!("could not send error response: {write_err}");
        }
    }
    closed(row.status)
}
