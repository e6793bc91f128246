//! The request headers that steer the proxy, by their wire names (lower case, as
//! pingora's header map and `httparse` compare them) and as people read them.

use http::HeaderName;

/// Names the target port (required unless the Host names it).
pub static PORT: HeaderName = HeaderName::from_static("x-cmux-port-internal");
/// Names the target workspace.
pub static WORKSPACE: HeaderName = HeaderName::from_static("x-cmux-workspace-internal");
/// Asks the proxy to wait this many milliseconds for a closed port to open.
pub static WAIT: HeaderName = HeaderName::from_static("x-cmux-wait-ms");
/// Replaces the `Host` sent to the target (`HOST[:PORT]`), for dev servers that only
/// answer to `localhost`. Not a routing input: CONNECT accepts and ignores it. Never
/// forwarded either: `proxy::host_override` removes it where it applies it (a request
/// that carries it always has an override to apply, or was refused), which spares every
/// other request a header lookup.
pub static HOST_OVERRIDE: HeaderName = HeaderName::from_static("x-cmux-host-override");

/// Spellings used in messages shown to people.
pub const PORT_DISPLAY: &str = "X-Cmux-Port-Internal";
pub const WORKSPACE_DISPLAY: &str = "X-Cmux-Workspace-Internal";
pub const WAIT_DISPLAY: &str = "X-Cmux-Wait-Ms";
pub const HOST_OVERRIDE_DISPLAY: &str = "X-Cmux-Host-Override";

/// The routing headers, which only steer this proxy: never forwarded to a target (nor
/// is [`HOST_OVERRIDE`]).
pub fn routing_only() -> [&'static HeaderName; 3] {
    [&PORT, &WORKSPACE, &WAIT]
}

/// A header map from (name, value) pairs, in order, repeats kept: for tests.
#[cfg(test)]
pub fn header_map(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}
