//! What the client gets when pingora fails to proxy a request: each pingora error is
//! mapped once, here, to an error answer, a quiet close, or a 500.

use crate::error::ProxyErrorKind;
use crate::host::{explain_refused, Disclosure};
use crate::observe::{ConnectFailure, EndReason};
use crate::routing::Target;
use pingora::prelude::*;
use pingora::{ErrorSource, ErrorType};
use std::time::Duration;

/// What to do about a request pingora failed to proxy.
pub enum Failure {
    /// Answer with the contract's error response.
    Answer(ProxyErrorKind),
    /// Nobody to answer, or nothing may be written: close, logging why.
    Close(Option<EndReason>),
    /// A failure of the proxy itself (500).
    Internal,
}

/// The contract's kind for a failure to connect, if `e` is one (a refusal comes without
/// its explanation, which takes a look at the machine).
pub fn connect_error_kind(e: &Error) -> Option<ProxyErrorKind> {
    match e.etype() {
        ErrorType::ConnectRefused => Some(ProxyErrorKind::PortClosed(None)),
        ErrorType::ConnectTimedout => Some(ProxyErrorKind::ConnectTimeout),
        ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::BindError
        | ErrorType::SocketError => Some(ProxyErrorKind::ConnectFailed(e.root_cause().to_string())),
        _ => None,
    }
}

/// The metric label of a failed connection attempt.
pub fn connect_failure(e: &Error) -> ConnectFailure {
    connect_error_kind(e)
        .as_ref()
        .map_or(ConnectFailure::Other, ConnectFailure::from)
}

/// Failures on the client's side.
fn downstream(e: &Error, upgraded: bool, body_timeout: Duration) -> Failure {
    match e.etype() {
        // A WebSocket closed by `tunnel_idle_timeout_ms`: an expected end, and the
        // connection is no longer HTTP.
        ErrorType::ReadTimedout if upgraded => Failure::Close(Some(EndReason::IdleTimeout)),
        ErrorType::ReadTimedout => Failure::Answer(ProxyErrorKind::BodyTimeout(body_timeout)),
        // The client went away.
        ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => {
            Failure::Close(None)
        }
        // pingora's signal for a client that sent its next request before this one's
        // response ended (pipelining, which pingora does not serve): close without an
        // answer, so the client retries what was not answered (RFC 9112 section 9.3.2)
        // instead of an error for a valid request, and never blame the target.
        ErrorType::ConnectError => Failure::Close(Some(EndReason::Pipelined)),
        // A body that breaks its framing (a bad chunk size, say).
        _ => Failure::Answer(ProxyErrorKind::BadBody(body_error_reason(e))),
    }
}

/// How a failed request was being served, for [`classify`].
pub struct Attempt<'a> {
    pub target: Option<&'a Target>,
    pub upgraded: bool,
    /// The upstream read timeout in force, named in a 504.
    pub read_timeout: Option<Duration>,
    /// The client body's.
    pub body_timeout: Duration,
    /// What a refusal's explanation may name.
    pub disclosure: Disclosure<'a>,
}

/// Maps every pingora error to what the client gets.
pub async fn classify(e: &Error, attempt: &Attempt<'_>) -> Failure {
    let (target, upgraded) = (attempt.target, attempt.upgraded);
    let (read_timeout, body_timeout) = (attempt.read_timeout, attempt.body_timeout);
    if e.esource() == &ErrorSource::Downstream {
        return downstream(e, upgraded, body_timeout);
    }
    if let Some(kind) = connect_error_kind(e) {
        return Failure::Answer(match (kind, target) {
            (ProxyErrorKind::PortClosed(None), Some(t)) => {
                ProxyErrorKind::PortClosed(Some(explain_refused(t, &attempt.disclosure).await))
            }
            (kind, _) => kind,
        });
    }
    match e.etype() {
        // An idle WebSocket, as above.
        ErrorType::ReadTimedout if upgraded => Failure::Close(Some(EndReason::IdleTimeout)),
        // `upstream_read_timeout_ms` ran out: 504 before a response head; after one,
        // pingora writes nothing more and the connection closes with the body cut short.
        ErrorType::ReadTimedout => Failure::Answer(ProxyErrorKind::ReadTimeout(
            read_timeout.unwrap_or_default(),
        )),
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
