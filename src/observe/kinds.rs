//! The kinds of request and the ways one ends, as the access log and metrics name them.

/// What a finished request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Http,
    WebSocket,
    Connect,
}

impl RequestKind {
    pub const ALL: [RequestKind; 3] = [
        RequestKind::Http,
        RequestKind::WebSocket,
        RequestKind::Connect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Http => "http",
            RequestKind::WebSocket => "websocket",
            RequestKind::Connect => "connect",
        }
    }

    /// Position in [`RequestKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a request ended other than with a complete exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The proxy answered with this error (its stable code, as in error bodies).
    Answered(&'static str),
    /// The client went away before the exchange ended.
    ClientClosed,
    /// The client sent its next request before this one's response ended (pipelining,
    /// which pingora does not serve): closed without an answer, so the client retries.
    Pipelined,
    /// A tunnel was quiet for `tunnel_idle_timeout_ms`.
    IdleTimeout,
    /// A tunnel was still open at the shutdown deadline.
    Shutdown,
    /// A tunnel's relay failed.
    TunnelClosed,
    /// The target closed before taking the client's first bytes.
    UpstreamClosed,
    /// The client's address is not in `allow_clients`: closed without an answer.
    ClientForbidden,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Answered(code) => code,
            EndReason::ClientClosed => "client_closed",
            EndReason::Pipelined => "pipelined",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::Shutdown => "shutdown",
            EndReason::TunnelClosed => "tunnel_closed",
            EndReason::UpstreamClosed => "upstream_closed",
            EndReason::ClientForbidden => "client_forbidden",
        }
    }
}
