//! The proxy's settings after merging flags, environment, conf and defaults (the merge
//! is `app::merge`'s).

use crate::access::Cidr;
use crate::edge::EdgeSettings;
use crate::observe::access_log::LogTarget;
use crate::observe::log_line::LogFormat;
use crate::routing::HostOverrideDefault;
use crate::routing::{PortRange, TargetPolicy};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The proxy's settings after merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: Vec<SocketAddr>,
    /// `--upstream-host` as given, for messages.
    pub upstream_host_name: String,
    /// `--upstream-host` resolved once at start-up.
    pub upstream_host: IpAddr,
    pub connect_timeout: Duration,
    /// Longest time a client may take to send a request head (and, on a new connection,
    /// its first bytes).
    pub request_head_timeout: Duration,
    /// Default wait for a refusing target to start listening.
    pub wait_for_port: Duration,
    /// Cap on the wait a request may ask for with `X-Cmux-Wait-Ms`.
    pub max_wait_for_port: Duration,
    /// Idle timeout of tunnels; `None` (the default) keeps quiet tunnels open.
    pub tunnel_idle_timeout: Option<Duration>,
    /// Longest silence from a target before or during its response (not upgrades);
    /// `None` (the default) waits as long as the client does.
    pub upstream_read_timeout: Option<Duration>,
    /// SO_SNDBUF for a CONNECT tunnel's socket to a loopback target; `None` leaves it to
    /// the kernel's autotuning.
    pub tunnel_send_buffer: Option<usize>,
    /// Where the admin endpoints listen; `None` turns them off.
    pub admin_listen: Option<SocketAddr>,
    /// Whether the admin address was given (flag, env or conf) rather than defaulted: a
    /// defaulted one that is in use is skipped with a warning instead of stopping start-up.
    pub admin_explicit: bool,
    /// Who may come in.
    pub access: AccessSettings,
    pub access_log: LogTarget,
    pub access_log_format: LogFormat,
    /// Whether access log lines keep the query string (it may carry secrets).
    pub access_log_query: bool,
    /// Whether metrics carry `workspace` and `port` labels (capped).
    pub metrics_per_target: bool,
    /// The `Host` a target gets when a request sends no `X-Cmux-Host-Override`.
    pub host_override: HostOverrideDefault,
    /// Whether a response `Location` that names the target's loopback origin is
    /// rewritten to the origin the client used (on by default).
    pub rewrite_loopback_redirects: bool,
    /// Target ports spoken to in h2c (HTTP/2 in plaintext) rather than HTTP/1.1.
    pub h2c_ports: Vec<PortRange>,
    /// Edge mode's settings; `None` in node mode.
    pub edge: Option<EdgeSettings>,
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
