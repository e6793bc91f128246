//! Why start-up stops: every message is written here once, and printed as one line
//! (`cmux-proxy: <message>`). `tests/cli.rs` checks several of them word for word.

use super::conf::ConfError;
use super::defaults::MAX_TUNNEL_SEND_BUFFER_BYTES;
use crate::state::StateError;
use std::io;
use std::net::SocketAddr;

/// A start-up failure: the conf, a setting, a listen address or the shared state.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot read conf file {path}: {error}")]
    ConfUnreadable {
        path: String,
        #[source]
        error: io::Error,
    },
    #[error("conf file {path}: {error}")]
    Conf {
        path: String,
        #[source]
        error: ConfError,
    },
    /// pingora's bootstrap runs before the fork here, so the readiness signal would
    /// never reach the launcher, which would give up while the daemon runs on.
    #[error("daemon_wait_for_ready is not supported: use scripts/cmux-proxyctl, which waits for readiness itself")]
    DaemonWaitForReady,
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        #[source]
        error: io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    /// What came through the upgrade socket was not the old instance's listening sockets
    /// (`app::handover`).
    #[error("graceful upgrade hand-over failed: {sock} did not carry the running instance's listening sockets ({why}); the running instance keeps serving")]
    Handover { sock: String, why: String },
}

/// A flag, environment variable or conf value that cannot be used. Names are the conf
/// keys (`connect_timeout_ms`); values are quoted as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("{0} must be greater than 0")]
    NotPositive(&'static str),
    /// An item of a list (client addresses, port ranges) that does not parse.
    #[error("{name}: {reason}")]
    BadItem { name: &'static str, reason: String },
    #[error(
        "invalid listen address {0:?}: expected IP:PORT, for example 127.0.0.1:8080 or [::1]:8080"
    )]
    ListenAddress(String),
    #[error("no listen address given")]
    NoListenAddress,
    #[error("invalid admin listen address {0:?}: expected IP:PORT or \"off\"")]
    AdminAddress(String),
    #[error("admin listen address {0} overlaps a proxy listen address")]
    AdminOverlaps(SocketAddr),
    #[error("upstream host {0:?} has no address")]
    UpstreamHostNoAddress(String),
    #[error("cannot resolve upstream host {host:?}: {reason}")]
    UpstreamHostUnresolved { host: String, reason: String },
    #[error("invalid host_override {0:?}: expected \"keep\" (the client's Host) or \"localhost\" (localhost:<target port>)")]
    HostOverride(String),
    #[error("tunnel_send_buffer_bytes must be at most {max} (0 leaves it to the kernel)", max = MAX_TUNNEL_SEND_BUFFER_BYTES)]
    SendBufferTooLarge,
    #[error("invalid mode {0:?}: expected \"node\" or \"edge\"")]
    Mode(String),
    #[error("edge_domain, machine_dns_suffix and node_token apply to mode: edge only")]
    EdgeKeysInNodeMode,
    #[error("mode: edge needs machine_dns_suffix (machine M is looked up as M.<suffix>)")]
    NoMachineDnsSuffix,
    #[error("dns_min_ttl_ms must not be above dns_max_ttl_ms")]
    DnsTtlOrder,
    #[error("invalid DNS server {0:?}: expected IP:PORT, for example 10.0.0.2:53")]
    DnsServer(String),
}
