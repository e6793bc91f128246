//! The error table: for every kind, its status, stable code, hint and message, in one
//! place, so that a new kind is one new row.

use super::ProxyErrorKind as Kind;
use crate::edge::address::MACHINE_DISPLAY;
use crate::host::START_OR_WAIT;
use crate::routing::headers::HOST_OVERRIDE_DISPLAY;
use crate::routing::Target;
use crate::routing::UPSTREAM_PROTOCOL_DISPLAY;
use std::borrow::Cow;

/// One row of the table, filled in for one error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub status: u16,
    /// Stable machine-readable code (the `code` field of the JSON form).
    pub code: &'static str,
    /// What the developer can do about it.
    pub hint: Cow<'static, str>,
    /// What was wrong and what was tried, in one line.
    pub message: String,
    /// Headers the answer carries besides the body's.
    pub headers: &'static [(&'static str, &'static str)],
}

fn row(
    status: u16,
    code: &'static str,
    hint: impl Into<Cow<'static, str>>,
    message: String,
) -> Row {
    Row {
        status,
        code,
        hint: hint.into(),
        message,
        headers: &[],
    }
}

/// A row whose answer carries `headers` too.
fn with_headers(mut row: Row, headers: &'static [(&'static str, &'static str)]) -> Row {
    row.headers = headers;
    row
}

/// The row for `kind`, aimed at `target` when known.
pub fn row_for(kind: &Kind, target: Option<&Target>) -> Row {
    let to = target.map(Target::describe).unwrap_or_default();
    match kind {
        Kind::Route(e) => row(400, e.code(), e.hint(), e.to_string()),
        Kind::BadHostOverride(values) => row(
            400,
            "bad_host_override",
            "send one HOST or HOST:PORT, such as localhost:5173, or leave the header out",
            format!("invalid {HOST_OVERRIDE_DISPLAY} header {values:?}: expected HOST[:PORT]"),
        ),
        Kind::BadUpstreamProtocol(values) => row(
            400,
            "bad_upstream_protocol",
            "send h2c (HTTP/2 in plaintext) or http/1.1, or leave the header out",
            format!(
                "invalid {UPSTREAM_PROTOCOL_DISPLAY} header {values:?}: expected h2c or http/1.1"
            ),
        ),
        Kind::LoopDetected => row(
            508,
            "loop_detected",
            "the target is this proxy itself: name the dev server's port, not the proxy's",
            format!("loop detected: the request would reach this proxy again at {to}"),
        ),
        Kind::PortClosed(_)
        | Kind::ConnectTimeout
        | Kind::UpstreamClosed
        | Kind::ReadTimeout(_)
        | Kind::ConnectFailed(_) => target_row(kind, &to),
        Kind::HeadTimeout
        | Kind::BodyTimeout(_)
        | Kind::HeadTooLarge(_)
        | Kind::Malformed(_)
        | Kind::NotHttp(_)
        | Kind::BadBody(_)
        | Kind::Http2
        | Kind::BadTarget(_) => request_row(kind),
        Kind::Unauthorized { .. } | Kind::TargetForbidden(_) | Kind::Overloaded(_) => {
            policy_row(kind)
        }
        Kind::MissingMachine
        | Kind::BadMachine(_)
        | Kind::MachineUnknown { .. }
        | Kind::DnsFailed { .. }
        | Kind::MachineUnreachable { .. } => edge_row(kind),
    }
}

/// Failures of the target: 502 and 504.
fn target_row(kind: &Kind, to: &str) -> Row {
    match kind {
        Kind::PortClosed(explanation) => {
            let mut message = format!("nothing listens on {to} (connection refused)");
            let hint = match explanation {
                Some(e) => {
                    message.push_str("; ");
                    message.push_str(&e.hint);
                    Cow::Owned(e.hint.clone())
                }
                None => Cow::Borrowed(START_OR_WAIT),
            };
            row(502, "port_closed", hint, message)
        }
        Kind::ConnectTimeout => row(
            504,
            "connect_timeout",
            "the target accepted no connection in time: is it overloaded or stopped in a debugger?",
            format!("timed out connecting to {to}"),
        ),
        Kind::UpstreamClosed => row(
            502,
            "upstream_closed",
            "the server accepted the connection but gave no HTTP response: is it an HTTP server? Use CONNECT for raw TCP",
            format!("{to} closed the connection or sent an invalid response before a response head"),
        ),
        Kind::ReadTimeout(limit) => row(
            504,
            "read_timeout",
            "the server took the request but did not answer: is it stuck, or stopped in a debugger? Raise upstream_read_timeout_ms for slow endpoints",
            format!("{to} sent no response within {} ms (upstream_read_timeout_ms)", limit.as_millis()),
        ),
        Kind::ConnectFailed(why) => row(
            502,
            "connect_failed",
            "check the target address",
            format!("cannot connect to {to}: {why}"),
        ),
        _ => misfiled(kind),
    }
}

/// Requests that cannot be served as sent: 400, 408, 431 and 505.
fn request_row(kind: &Kind) -> Row {
    match kind {
        Kind::HeadTimeout => row(
            408,
            "head_timeout",
            "send the whole request head at once",
            "request head not received in time".into(),
        ),
        Kind::BodyTimeout(limit) => row(
            408,
            "body_timeout",
            "send the request body without long pauses",
            format!("request body stalled: no byte for {} s", limit.as_secs()),
        ),
        Kind::HeadTooLarge(limit) => row(
            431,
            "head_too_large",
            "send fewer or smaller headers",
            format!("CONNECT request head larger than {limit} bytes"),
        ),
        Kind::Malformed(why) => row(
            400,
            "bad_request",
            "send CONNECT <anything> HTTP/1.1 with the routing headers",
            format!("malformed CONNECT request: {why}"),
        ),
        Kind::NotHttp(0x16) => row(
            400,
            "bad_request",
            "use http://, not https://",
            "not an HTTP request: a TLS handshake; this listener speaks plain HTTP".into(),
        ),
        Kind::NotHttp(byte) => row(
            400,
            "bad_request",
            "use http://, not https://",
            format!("not an HTTP request: it starts with byte 0x{byte:02x}"),
        ),
        Kind::BadBody(why) => row(
            400,
            "bad_request",
            "check the body against its Content-Length or chunked encoding",
            format!("malformed request body: {why}"),
        ),
        Kind::Http2 => row(
            505,
            "http2_unsupported",
            "open a new connection for HTTP/2",
            "HTTP/2 is served only from a connection's first bytes (prior knowledge)".into(),
        ),
        Kind::BadTarget(why) => row(
            400,
            "bad_request",
            "percent-encode the request target: %20 for a space, %00 for NUL",
            format!("invalid request target: it contains {why}"),
        ),
        _ => misfiled(kind),
    }
}

/// Refusals of the access and target policies: 401, 407, 403 and 503.
fn policy_row(kind: &Kind) -> Row {
    match kind {
        Kind::Unauthorized { proxy: false } => with_headers(
            row(
                401,
                "unauthorized",
                "send X-Cmux-Token: <token>, or open any URL once with ?cmux_token=<token> to get a cookie",
                "this proxy requires a token, and the request has no valid one".into(),
            ),
            &[("WWW-Authenticate", "Bearer realm=\"cmux-proxy\"")],
        ),
        Kind::Unauthorized { proxy: true } => with_headers(
            row(
                407,
                "unauthorized",
                "send Proxy-Authorization: Bearer <token> (or Basic with the token as the password)",
                "this proxy requires a token, and the CONNECT request has no valid one".into(),
            ),
            &[(
                "Proxy-Authenticate",
                "Bearer realm=\"cmux-proxy\", Basic realm=\"cmux-proxy\"",
            )],
        ),
        Kind::TargetForbidden(why) => row(
            403,
            "target_forbidden",
            "ask the operator: the proxy's target policy (allow_default_upstream, allowed_ports, denied_ports) refuses it",
            format!("this target is not allowed: {why}"),
        ),
        Kind::Overloaded(why) => with_headers(
            row(
                503,
                "overloaded",
                "retry in a moment, or close idle connections",
                format!("too many connections: {why}"),
            ),
            &[("Retry-After", "1")],
        ),
        _ => misfiled(kind),
    }
}

/// Edge mode's rows: a request that names no usable machine, a machine DNS does not
/// know, and a machine whose proxy cannot be reached.
fn edge_row(kind: &Kind) -> Row {
    match kind {
        Kind::MissingMachine => row(
            400,
            "missing_machine",
            format!("send {MACHINE_DISPLAY}: <machine>, or use a <workspace>-<port>--<machine>.<edge domain> host"),
            "no machine named: this proxy is an edge and forwards to the machine that holds the workspace".into(),
        ),
        Kind::BadMachine(name) => row(
            400,
            "bad_machine",
            "a machine name is one DNS label: letters, digits and '-', at most 63, not starting or ending with '-'",
            format!("invalid machine name {name:?}"),
        ),
        Kind::MachineUnknown { machine, name } => row(
            502,
            "machine_unknown",
            "check the machine name; a machine that was just added is found once DNS has its record",
            format!("unknown machine {machine:?}: DNS has no record for {name}"),
        ),
        Kind::DnsFailed { machine, why } => row(
            502,
            "dns_failed",
            "the edge's DNS servers did not answer: retry, or ask the operator to check dns_servers",
            format!("cannot look up machine {machine:?}: {why}"),
        ),
        Kind::MachineUnreachable {
            machine,
            node,
            timed_out: false,
        } => row(
            502,
            "machine_unreachable",
            "the machine's cmux-proxy is not running or the machine is down: retry later",
            format!("machine {machine:?} is unreachable: {node} refused the connection"),
        ),
        Kind::MachineUnreachable {
            machine,
            node,
            timed_out: true,
        } => row(
            504,
            "machine_unreachable",
            "the machine did not answer in time: it may be down or overloaded; retry later",
            format!("machine {machine:?} is unreachable: connecting to {node} timed out"),
        ),
        _ => misfiled(kind),
    }
}

/// A kind sent to the wrong part of the table: `row_for` is exhaustive, so only a
/// mistake in this file gets here. Answered as what it is, never a panic.
fn misfiled(kind: &Kind) -> Row {
    row(
        500,
        "internal_error",
        "this is a bug in cmux-proxy: please report it",
        format!("no error row for {kind:?}"),
    )
}
