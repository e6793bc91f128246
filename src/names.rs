//! The protocol's names: every header, cookie and query parameter through which a client
//! steers cmux-proxy, declared once with what it means and where it travels. Messages
//! shown to people use each name's `display` spelling; the wire name is lower case, as
//! pingora's header map and `httparse` compare names.

use http::HeaderName;

/// Where a steering header goes after this proxy has read it. No `X-Cmux-*` header,
/// declared here or not, ever reaches a target: the protocol's names are the proxy's,
/// and a target that acted on one could be steered by any client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Travel {
    /// Never past this proxy: removed before the target, and an edge writes its own
    /// value for the node (see [`NODE_HEADERS`]) or none.
    Never,
    /// Removed before the target; an edge passes the client's value on to the node, which
    /// acts on it.
    ToNodeOnly,
}

/// The prefix of every protocol header name, in the wire's lower case.
pub const PREFIX: &[u8] = b"x-cmux-";

/// Whether a header name is the protocol's (`X-Cmux-*`, any case: names on the wire
/// are lower case in the header map).
pub fn is_protocol_header(name: &HeaderName) -> bool {
    name.as_str().as_bytes().starts_with(PREFIX)
}

/// One request header of the protocol.
pub struct SteeringHeader {
    pub wire: HeaderName,
    pub display: &'static str,
    pub travel: Travel,
}

/// The target port (required unless the Host names it).
pub static PORT: SteeringHeader = SteeringHeader {
    wire: HeaderName::from_static("x-cmux-port-internal"),
    display: "X-Cmux-Port-Internal",
    travel: Travel::Never,
};

/// The target workspace; without it the target host is `--upstream-host`.
pub static WORKSPACE: SteeringHeader = SteeringHeader {
    wire: HeaderName::from_static("x-cmux-workspace-internal"),
    display: "X-Cmux-Workspace-Internal",
    travel: Travel::Never,
};

/// How many milliseconds to wait for a closed port to open.
pub static WAIT: SteeringHeader = SteeringHeader {
    wire: HeaderName::from_static("x-cmux-wait-ms"),
    display: "X-Cmux-Wait-Ms",
    travel: Travel::Never,
};

/// Edge mode: the machine that holds the workspace. A node does not read it, and
/// removes it like every protocol header.
pub static MACHINE: SteeringHeader = SteeringHeader {
    wire: HeaderName::from_static("x-cmux-machine-internal"),
    display: "X-Cmux-Machine-Internal",
    travel: Travel::Never,
};

/// The `Host` sent to the target instead of the client's (`HOST[:PORT]`), for dev
/// servers that only answer to `localhost`. Not a routing input: CONNECT ignores it.
pub static HOST_OVERRIDE: SteeringHeader = SteeringHeader {
    wire: HeaderName::from_static("x-cmux-host-override"),
    display: "X-Cmux-Host-Override",
    travel: Travel::ToNodeOnly,
};

/// The HTTP version spoken to the target: `h2c` or `http/1.1`.
pub static UPSTREAM_PROTOCOL: SteeringHeader = SteeringHeader {
    wire: HeaderName::from_static("x-cmux-upstream-protocol"),
    display: "X-Cmux-Upstream-Protocol",
    travel: Travel::ToNodeOnly,
};

/// A token, when the proxy requires one. At an edge, replaced by the edge's
/// `node_token`.
pub static TOKEN: SteeringHeader = SteeringHeader {
    wire: HeaderName::from_static("x-cmux-token"),
    display: "X-Cmux-Token",
    travel: Travel::Never,
};

/// The headers an edge writes for its node from the request's hop, in this order:
/// port, workspace, wait, token. Clients' own copies of them are removed first, and so is
/// [`MACHINE`], which the node has no use for.
pub static NODE_HEADERS: [&SteeringHeader; 4] = [&PORT, &WORKSPACE, &WAIT, &TOKEN];

/// The headers an edge passes on to its node as the client sent them.
pub static TO_NODE: [&SteeringHeader; 2] = [&HOST_OVERRIDE, &UPSTREAM_PROTOCOL];

/// The cookie a browser keeps its token in (never forwarded while tokens are in force).
pub const TOKEN_COOKIE: &str = "cmux_token";

/// The query parameter that hands a browser its token once, answered with a redirect
/// that sets [`TOKEN_COOKIE`] (never forwarded, never logged by default).
pub const TOKEN_QUERY: &str = "cmux_token";

/// Response header: the stable code of a proxy's own error (gRPC answers carry it as
/// custom metadata).
pub const ERROR_CODE: &str = "x-cmux-error";
