//! The request headers that steer the proxy, by their wire names (lower case, as
//! pingora's header map and `httparse` compare them) and as people read them.

use http::HeaderName;

/// Names the target port (required unless the Host names it).
pub static PORT: HeaderName = HeaderName::from_static("x-cmux-port-internal");
/// Names the target workspace.
pub static WORKSPACE: HeaderName = HeaderName::from_static("x-cmux-workspace-internal");
/// Asks the proxy to wait this many milliseconds for a closed port to open.
pub static WAIT: HeaderName = HeaderName::from_static("x-cmux-wait-ms");

/// Spellings used in messages shown to people.
pub const PORT_DISPLAY: &str = "X-Cmux-Port-Internal";
pub const WORKSPACE_DISPLAY: &str = "X-Cmux-Workspace-Internal";
pub const WAIT_DISPLAY: &str = "X-Cmux-Wait-Ms";

/// The headers that only steer this proxy: never forwarded to a target.
pub fn routing_only() -> [&'static HeaderName; 3] {
    [&PORT, &WORKSPACE, &WAIT]
}
