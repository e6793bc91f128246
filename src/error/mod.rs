//! What does a client get when something fails? The proxy's own errors: their kinds,
//! one table of status, code, hint and message ([`table`]), the text, JSON and HTML
//! bodies ([`body`]), and the raw replies written where pingora does not answer
//! ([`wire`], [`reply`]). HTTP, WebSocket and CONNECT clients see the same status and
//! body for the same failure; a gRPC client sees the same message as a gRPC status
//! ([`grpc`]).

mod body;
pub mod grpc;
pub mod reply;
mod table;
pub mod wire;

pub use body::BodyFormat;
pub use table::Row;

use crate::host::RefusalExplanation;
use crate::routing::{Reason, Refusal, RouteError, Target};
use bytes::Bytes;
use std::time::Duration;

/// What went wrong, in the terms of the contract's error table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyErrorKind {
    /// The request's steering headers or Host name no usable target (400).
    Route(RouteError),
    /// Nothing listens at the target (502), with what does listen on that port.
    PortClosed(Option<RefusalExplanation>),
    /// Connecting to the target timed out (504).
    ConnectTimeout,
    /// The target closed or sent garbage before a response head (502).
    UpstreamClosed,
    /// The target sent nothing for `upstream_read_timeout_ms` (504).
    ReadTimeout(Duration),
    /// Any other failure to connect (502).
    ConnectFailed(String),
    /// The target is this proxy itself, or the request already passed through it (508).
    LoopDetected,
    /// The request head did not arrive within the head timeout (408).
    HeadTimeout,
    /// The request body paused longer than this (408).
    BodyTimeout(Duration),
    /// A request head (HTTP/1.1 or CONNECT) over this many bytes (431).
    HeadTooLarge(usize),
    /// A CONNECT request that does not parse (400).
    Malformed(String),
    /// Bytes that cannot start an HTTP/1 request, with the first one (400).
    NotHttp(u8),
    /// A request body that breaks its own framing, with pingora's reason (400).
    BadBody(String),
    /// An HTTP/2 connection preface after an HTTP/1.1 request on the same connection
    /// (h2c is served only as a connection's first bytes): answered in HTTP/2 terms,
    /// logged as 505.
    Http2,
    /// A request target with a control character or a bare space (400).
    BadTarget(&'static str),
    /// A `Content-Length` that is not exactly one number (400): repeated, a list, or
    /// not digits, which the proxy and the target could read differently.
    BadContentLength(&'static str),
    /// No valid token: 401, or 407 for a CONNECT (`proxy`).
    Unauthorized { proxy: bool },
    /// The target policy refuses this target (403), saying why.
    TargetForbidden(String),
    /// The request's `Host` is not a name this proxy is known by (421); the Host as
    /// sent.
    HostNotAllowed(String),
    /// A connection limit is reached (503), saying which.
    Overloaded(String),
    /// Edge mode: DNS has no record for the machine (502); the name asked.
    MachineUnknown { machine: String, name: String },
    /// Edge mode: DNS gave no answer (502), saying why.
    DnsFailed { machine: String, why: String },
    /// Edge mode: the machine's proxy refused the connection (502) or did not accept it
    /// within the connect timeout (504).
    MachineUnreachable {
        machine: String,
        node: std::net::SocketAddr,
        timed_out: bool,
    },
}

impl ProxyErrorKind {
    /// The machine an edge error is about.
    pub fn machine(&self) -> Option<&str> {
        match self {
            ProxyErrorKind::MachineUnknown { machine, .. }
            | ProxyErrorKind::DnsFailed { machine, .. }
            | ProxyErrorKind::MachineUnreachable { machine, .. } => Some(machine),
            _ => None,
        }
    }
}

/// An error response: its kind and the target it was aimed at, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    pub kind: ProxyErrorKind,
    pub target: Option<Target>,
}

impl From<RouteError> for ProxyError {
    fn from(e: RouteError) -> Self {
        ProxyError::without_target(ProxyErrorKind::Route(e))
    }
}

impl From<Refusal> for ProxyError {
    fn from(refusal: Refusal) -> Self {
        let kind = match refusal.reason {
            Reason::Invalid(e) => ProxyErrorKind::Route(e),
            Reason::Loop => ProxyErrorKind::LoopDetected,
            Reason::Forbidden(why) => ProxyErrorKind::TargetForbidden(why),
            Reason::HostNotAllowed(host) => ProxyErrorKind::HostNotAllowed(host),
        };
        ProxyError {
            kind,
            target: refusal.target,
        }
    }
}

impl ProxyError {
    pub fn new(kind: ProxyErrorKind, target: &Target) -> Self {
        ProxyError {
            kind,
            target: Some(target.clone()),
        }
    }

    /// An error with no target (the request could not be read or routed).
    pub fn without_target(kind: ProxyErrorKind) -> Self {
        ProxyError { kind, target: None }
    }

    /// Status, code, hint, message and gRPC status, from the one table.
    pub fn describe(&self) -> Row {
        table::row_for(&self.kind, self.target.as_ref())
    }

    pub fn status(&self) -> u16 {
        self.describe().status
    }

    /// Stable machine-readable code (the `code` field of the JSON form).
    pub fn code(&self) -> &'static str {
        self.describe().code
    }

    /// The one-line message: what was wrong and what was tried.
    pub fn message(&self) -> String {
        self.describe().message
    }

    /// The response body in the chosen form.
    pub fn body(&self, format: BodyFormat) -> Bytes {
        body::render(self, &self.describe(), format)
    }
}
