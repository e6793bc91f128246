//! The error table: for every kind, its status, stable code, hint, message and gRPC
//! status, in one exhaustive `match`, so that a kind without a row does not compile.
//! Every answer closes its connection: a failed request's connection is never reused.

use super::grpc::Code as Grpc;
use super::ProxyErrorKind as Kind;
use crate::host::START_OR_WAIT;
use crate::names::{HOST_OVERRIDE, MACHINE, PORT, UPSTREAM_PROTOCOL, WAIT, WORKSPACE};
use crate::routing::RouteError as Route;
use crate::routing::Target;
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
    /// The status a gRPC client gets instead, chosen for what it should do about it
    /// (retry UNAVAILABLE, fix an INVALID_ARGUMENT).
    pub grpc: Grpc,
    /// Headers the answer carries besides the body's.
    pub headers: &'static [(&'static str, &'static str)],
}

fn row(
    status: u16,
    code: &'static str,
    grpc: Grpc,
    hint: impl Into<Cow<'static, str>>,
    message: String,
) -> Row {
    Row {
        status,
        code,
        hint: hint.into(),
        message,
        grpc,
        headers: &[],
    }
}

/// A row whose answer carries `headers` too.
fn with_headers(mut row: Row, headers: &'static [(&'static str, &'static str)]) -> Row {
    row.headers = headers;
    row
}

const PORT_HINT: &str = "send one decimal port from 1 to 65535";
const WORKSPACE_HINT: &str = "use a name of ASCII letters, digits, '.', '_', '-' and '/' ending in 1-65535 or in a letter, such as workspace-7";

/// A request that can never succeed as sent: 400, INVALID_ARGUMENT.
fn invalid(code: &'static str, hint: impl Into<Cow<'static, str>>, message: String) -> Row {
    row(400, code, Grpc::InvalidArgument, hint, message)
}

/// The row for `kind`, aimed at `target` when known.
pub fn row_for(kind: &Kind, target: Option<&Target>) -> Row {
    let to = || target.map(Target::describe).unwrap_or_default();
    match kind {
        // The request's steering headers or Host.
        Kind::Route(Route::MissingPort) => invalid(
            "missing_port",
            "send X-Cmux-Port-Internal: <port>, or use a <workspace>-<port>.localhost host name",
            format!("missing required header: {}", PORT.display),
        ),
        Kind::Route(Route::BadPort(v)) => invalid(
            "bad_port",
            PORT_HINT,
            format!(
                "invalid {} header {v:?}: expected a port number from 1 to 65535",
                PORT.display
            ),
        ),
        Kind::Route(Route::ConflictingPorts(a, b)) => invalid(
            "bad_port",
            PORT_HINT,
            format!("conflicting {} headers: {a:?} and {b:?}; send it once", PORT.display),
        ),
        Kind::Route(Route::BadWorkspace { name, reason }) => invalid(
            "bad_workspace",
            WORKSPACE_HINT,
            format!("invalid workspace name {name:?}: {reason}"),
        ),
        Kind::Route(Route::ConflictingWorkspaces(a, b)) => invalid(
            "bad_workspace",
            WORKSPACE_HINT,
            format!(
                "conflicting {} headers: {a:?} and {b:?}; send it once",
                WORKSPACE.display
            ),
        ),
        Kind::Route(Route::BadWait(v)) => invalid(
            "bad_wait",
            "send a whole number of milliseconds, such as 2000",
            format!("invalid {} header {v:?}: expected milliseconds", WAIT.display),
        ),
        Kind::Route(Route::BadHostOverride(values)) => invalid(
            "bad_host_override",
            "send one HOST or HOST:PORT, such as localhost:5173, or leave the header out",
            format!(
                "invalid {} header {values:?}: expected HOST[:PORT]",
                HOST_OVERRIDE.display
            ),
        ),
        Kind::Route(Route::BadUpstreamProtocol(values)) => invalid(
            "bad_upstream_protocol",
            "send h2c (HTTP/2 in plaintext) or http/1.1, or leave the header out",
            format!(
                "invalid {} header {values:?}: expected h2c or http/1.1",
                UPSTREAM_PROTOCOL.display
            ),
        ),
        Kind::Route(Route::MissingMachine) => invalid(
            "missing_machine",
            format!(
                "send {}: <machine>, or use a <workspace>-<port>--<machine>.<edge domain> host",
                MACHINE.display
            ),
            "no machine named: this proxy is an edge and forwards to the machine that holds the workspace".into(),
        ),
        Kind::Route(Route::BadMachine(name)) => invalid(
            "bad_machine",
            "a machine name is one DNS label: letters, digits and '-', at most 63, not starting or ending with '-'",
            format!("invalid machine name {name:?}"),
        ),
        // Pointing at the proxy itself is a setup mistake, not a bad argument.
        Kind::LoopDetected => row(
            508,
            "loop_detected",
            Grpc::FailedPrecondition,
            "the target is this proxy itself: name the dev server's port, not the proxy's",
            format!("loop detected: the request would reach this proxy again at {}", to()),
        ),

        // The target: down or restarting (worth a retry), or slow.
        Kind::PortClosed(explanation) => {
            let mut message = format!("nothing listens on {} (connection refused)", to());
            let hint = match explanation {
                Some(e) => {
                    message.push_str("; ");
                    message.push_str(&e.hint);
                    Cow::Owned(e.hint.clone())
                }
                None => Cow::Borrowed(START_OR_WAIT),
            };
            row(502, "port_closed", Grpc::Unavailable, hint, message)
        }
        Kind::ConnectTimeout => row(
            504,
            "connect_timeout",
            Grpc::DeadlineExceeded,
            "the target accepted no connection in time: is it overloaded or stopped in a debugger?",
            format!("timed out connecting to {}", to()),
        ),
        Kind::UpstreamClosed => row(
            502,
            "upstream_closed",
            Grpc::Unavailable,
            "the server accepted the connection but gave no HTTP response: is it an HTTP server? Use CONNECT for raw TCP",
            format!("{} closed the connection or sent an invalid response before a response head", to()),
        ),
        Kind::ReadTimeout(limit) => row(
            504,
            "read_timeout",
            Grpc::DeadlineExceeded,
            "the server took the request but did not answer: is it stuck, or stopped in a debugger? Raise upstream_read_timeout_ms for slow endpoints",
            format!("{} sent no response within {} ms (upstream_read_timeout_ms)", to(), limit.as_millis()),
        ),
        Kind::ConnectFailed(why) => row(
            502,
            "connect_failed",
            Grpc::Unavailable,
            "check the target address",
            format!("cannot connect to {}: {why}", to()),
        ),

        // Requests that cannot be served as sent.
        Kind::HeadTimeout => row(
            408,
            "head_timeout",
            Grpc::DeadlineExceeded,
            "send the whole request head at once",
            "request head not received in time".into(),
        ),
        Kind::BodyTimeout(limit) => row(
            408,
            "body_timeout",
            Grpc::DeadlineExceeded,
            "send the request body without long pauses",
            format!("request body stalled: no byte for {} s", limit.as_secs()),
        ),
        Kind::HeadTooLarge(limit) => row(
            431,
            "head_too_large",
            Grpc::InvalidArgument,
            "send fewer or smaller headers",
            format!("request head larger than {limit} bytes"),
        ),
        Kind::Malformed(why) => invalid(
            "bad_request",
            "send CONNECT <anything> HTTP/1.1 with the routing headers",
            format!("malformed CONNECT request: {why}"),
        ),
        Kind::NotHttp(0x16) => invalid(
            "bad_request",
            "use http://, not https://",
            "not an HTTP request: a TLS handshake; this listener speaks plain HTTP".into(),
        ),
        Kind::NotHttp(byte) => invalid(
            "bad_request",
            "use http://, not https://",
            format!("not an HTTP request: it starts with byte 0x{byte:02x}"),
        ),
        Kind::BadBody(why) => invalid(
            "bad_request",
            "check the body against its Content-Length or chunked encoding",
            format!("malformed request body: {why}"),
        ),
        Kind::Http2 => row(
            505,
            "http2_unsupported",
            Grpc::Unimplemented,
            "open a new connection for HTTP/2",
            "HTTP/2 is served only from a connection's first bytes (prior knowledge)".into(),
        ),
        Kind::BadContentLength(why) => invalid(
            "bad_request",
            "send one Content-Length header with one number",
            format!("invalid Content-Length: {why}"),
        ),
        Kind::BadTarget(why) => invalid(
            "bad_request",
            "percent-encode the request target: %20 for a space, %00 for NUL",
            format!("invalid request target: it contains {why}"),
        ),

        // The access and target policies.
        Kind::Unauthorized { proxy: false } => with_headers(
            row(
                401,
                "unauthorized",
                Grpc::Unauthenticated,
                "send X-Cmux-Token: <token>, or open any URL once with ?cmux_token=<token> to get a cookie",
                "this proxy requires a token, and the request has no valid one".into(),
            ),
            &[("WWW-Authenticate", "Bearer realm=\"cmux-proxy\"")],
        ),
        Kind::Unauthorized { proxy: true } => with_headers(
            row(
                407,
                "unauthorized",
                Grpc::Unauthenticated,
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
            Grpc::PermissionDenied,
            "ask the operator: the proxy's target policy (allow_default_upstream, allowed_ports, denied_ports) refuses it",
            format!("this target is not allowed: {why}"),
        ),
        // DNS rebinding: a page on a name that resolves to the proxy.
        Kind::HostNotAllowed(host) => row(
            421,
            "host_not_allowed",
            Grpc::PermissionDenied,
            "use localhost, a <workspace>-<port>.localhost name or the proxy's address, or ask the operator to add the name to cmux_proxy.public_hosts (--public-hosts)",
            format!("this proxy does not answer to the host {host:?}: it is not a local name and not in public_hosts"),
        ),
        Kind::Overloaded(why) => with_headers(
            row(
                503,
                "overloaded",
                Grpc::Unavailable,
                "retry in a moment, or close idle connections",
                format!("too many connections: {why}"),
            ),
            &[("Retry-After", "1")],
        ),

        // Edge mode: a machine DNS does not know (NOT_FOUND would say the gRPC method
        // is unknown, so it is UNAVAILABLE like a closed port), or cannot reach.
        Kind::MachineUnknown { machine, name } => row(
            502,
            "machine_unknown",
            Grpc::Unavailable,
            "check the machine name; a machine that was just added is found once DNS has its record",
            format!("unknown machine {machine:?}: DNS has no record for {name}"),
        ),
        Kind::DnsFailed { machine, why } => row(
            502,
            "dns_failed",
            Grpc::Unavailable,
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
            Grpc::Unavailable,
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
            Grpc::DeadlineExceeded,
            "the machine did not answer in time: it may be down or overloaded; retry later",
            format!("machine {machine:?} is unreachable: connecting to {node} timed out"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_refusals_are_rows_too() {
        let row = row_for(&Kind::Route(Route::MissingPort), None);
        assert_eq!((row.status, row.code), (400, "missing_port"));
        assert_eq!(row.message, "missing required header: X-Cmux-Port-Internal");
        assert_eq!(row.grpc, Grpc::InvalidArgument);
        let row = row_for(&Kind::Route(Route::MissingMachine), None);
        assert_eq!((row.status, row.code), (400, "missing_machine"));
        let row = row_for(&Kind::HostNotAllowed("evil.test".into()), None);
        assert_eq!((row.status, row.code), (421, "host_not_allowed"));
        assert!(row.hint.contains("public_hosts"), "{}", row.hint);
    }
}
