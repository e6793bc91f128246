//! The proxy's settings after merging flags, environment, conf and defaults (the merge
//! is `app::merge`'s), in groups that [`ProxyState`](super::ProxyState) holds as they
//! are. A group lives with the lowest folder that reads it: edge mode's in `edge`, the
//! access log's and the metrics' in `observe`, the rest here.

use crate::access::Cidr;
use crate::edge::EdgeSettings;
use crate::observe::{AccessLogSettings, MetricsSettings};
use crate::routing::{HostOverrideDefault, HostPattern};
use crate::routing::{PortRange, TargetPolicy};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The proxy's settings after merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: Vec<SocketAddr>,
    pub admin: AdminSettings,
    /// `--upstream-host` as given, for messages.
    pub upstream_host_name: String,
    /// `--upstream-host` resolved once at start-up.
    pub upstream_host: IpAddr,
    /// Default wait for a refusing target to start listening.
    pub wait_for_port: Duration,
    /// Cap on the wait a request may ask for with `X-Cmux-Wait-Ms`.
    pub max_wait_for_port: Duration,
    /// The `Host` a target gets when a request sends no `X-Cmux-Host-Override`.
    pub host_override: HostOverrideDefault,
    /// Target ports spoken to in h2c (HTTP/2 in plaintext) rather than HTTP/1.1.
    pub h2c_ports: Vec<PortRange>,
    /// Names besides the local ones a request's `Host` may have (`public_hosts`).
    pub public_hosts: Vec<HostPattern>,
    pub timeouts: Timeouts,
    pub tunnel: TunnelSettings,
    pub redirects: RedirectSettings,
    pub access: AccessSettings,
    pub access_log: AccessLogSettings,
    pub metrics: MetricsSettings,
    /// Edge mode's settings; `None` in node mode.
    pub edge: Option<EdgeSettings>,
}

/// The admin listener (health, metrics, ports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Where the admin endpoints listen; `None` turns them off.
    pub listen: Option<SocketAddr>,
    /// Whether the address was given (flag, env or conf) rather than defaulted: a
    /// defaulted one that is in use is skipped with a warning instead of stopping start-up.
    pub explicit: bool,
}

/// How long the proxy waits for a client or a target, on every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to a target (`connect_timeout_ms`); also bounds an edge's DNS look-up.
    pub connect: Duration,
    /// Longest time a client may take to send a request head (and, on a new connection,
    /// its first bytes) (`request_head_timeout_ms`).
    pub request_head: Duration,
    /// Longest silence from a target before or during its response, not upgrades
    /// (`upstream_read_timeout_ms`); `None` (the default) waits as long as the client does.
    pub upstream_read: Option<Duration>,
}

/// Tunnels: CONNECT tunnels and WebSocket sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelSettings {
    /// Idle timeout (`tunnel_idle_timeout_ms`); `None` (the default) keeps quiet tunnels
    /// open while both ends do.
    pub idle_timeout: Option<Duration>,
    /// SO_SNDBUF for a CONNECT tunnel's socket to a loopback target
    /// (`tunnel_send_buffer_bytes`); `None` leaves it to the kernel's autotuning.
    pub send_buffer: Option<usize>,
}

/// What the proxy changes in a target's redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectSettings {
    /// Whether a response `Location` that names the target's loopback origin is
    /// rewritten to the origin the client used (`rewrite_loopback_redirects`, on by
    /// default).
    pub rewrite_loopback: bool,
}

/// The access policy's settings; every part is off by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessSettings {
    /// Tokens given in the conf.
    pub auth_tokens: Vec<String>,
    /// A file of tokens, re-read on `SIGHUP`.
    pub auth_token_file: Option<PathBuf>,
    /// Clients let in without a token.
    pub trusted_clients: Vec<Cidr>,
    /// Clients allowed to connect at all; empty: any.
    pub allow_clients: Vec<Cidr>,
    pub targets: TargetPolicy,
    /// Most client connections open at once; `None`: a quarter of the open-file limit.
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address; `None`: no limit.
    pub max_connections_per_client: Option<usize>,
}
