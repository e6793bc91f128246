//! Edge mode's settings: where machines are found and how nodes are addressed.

use std::net::SocketAddr;
use std::time::Duration;

/// The proxy's own port on every machine, when no SRV record names another.
pub const DEFAULT_MACHINE_PORT: u16 = 8080;
/// Floor of a cached DNS answer's lifetime: a record with TTL 0 would otherwise cost a
/// DNS round trip on every request.
pub const DEFAULT_DNS_MIN_TTL: Duration = Duration::from_secs(1);
/// Ceiling of a cached answer's lifetime: a moved machine is followed within this even
/// when its record says to cache it for a day.
pub const DEFAULT_DNS_MAX_TTL: Duration = Duration::from_secs(60);
/// How long "no such machine" is remembered: short, so that a machine that has just
/// been added is found soon, but long enough that a client retrying a wrong name does
/// not turn every retry into a DNS query.
pub const DEFAULT_DNS_NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// What an edge needs besides the common settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSettings {
    /// The domain of the Host form `<workspace>-<port>--<machine>.<edge_domain>`;
    /// `None`: machines are named by header only.
    pub edge_domain: Option<String>,
    /// A machine `m` is looked up as `m.<machine_dns_suffix>`.
    pub machine_dns_suffix: String,
    /// The node proxies' port when there is no SRV record.
    pub machine_port: u16,
    /// DNS servers to ask; empty: the system resolver's (`/etc/resolv.conf`).
    pub dns_servers: Vec<SocketAddr>,
    pub dns_min_ttl: Duration,
    pub dns_max_ttl: Duration,
    pub dns_negative_ttl: Duration,
    /// Sent to nodes as the token header, so that they can let in only edges.
    pub node_token: Option<String>,
}
