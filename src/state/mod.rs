//! What does every request share? [`ProxyState`]: the router, the access policy, the
//! recorder (metrics and access log), the open tunnels, the edge in edge mode, and the
//! settings the request paths read ([`settings`]). It is built once at start-up (by
//! `app`) and read by the services above it (`front`, `proxy`, `tunnel`); it imports
//! none of them.

mod error;
pub mod settings;

pub use error::StateError;
pub use settings::{AccessSettings, Settings};

use crate::access::{Access, ConnectionLimits, TokenError, Tokens};
use crate::edge::Edge;
use crate::host::sys;
use crate::observe::access_log::AccessLog;
use crate::observe::{Metrics, Recorder, Tunnels};
use crate::routing::{HostOverrideDefault, PortRange, Router, WaitPolicy};
use std::sync::Arc;
use std::time::Duration;

/// Shared by the HTTP proxy, the CONNECT tunnel, the dispatcher and the shutdown watcher.
pub struct ProxyState {
    pub router: Router,
    pub connect_timeout: Duration,
    pub head_timeout: Duration,
    /// Idle timeout for tunnels; `None` means tunnels stay open while both ends do.
    pub tunnel_idle_timeout: Option<Duration>,
    /// Longest silence from a target during a plain HTTP exchange; `None`: no limit.
    pub upstream_read_timeout: Option<Duration>,
    /// SO_SNDBUF for CONNECT tunnels' sockets to loopback targets (`None`: the kernel's).
    pub tunnel_send_buffer: Option<usize>,
    /// The `Host` sent to a target when a request has no `X-Cmux-Host-Override`.
    pub host_override: HostOverrideDefault,
    /// Whether loopback `Location`s are rewritten to the client's origin.
    pub rewrite_loopback_redirects: bool,
    /// Target ports spoken to in h2c.
    pub h2c_ports: Vec<PortRange>,
    pub tunnels: Arc<Tunnels>,
    pub recorder: Recorder,
    pub access: Access,
    /// Edge mode's state; `None` on a node.
    pub edge: Option<Arc<Edge>>,
}

/// Without `max_connections`: a quarter of the open-file limit (a CONNECT tunnel holds
/// seven descriptors, an HTTP request two or three), so that the proxy answers 503
/// before it runs out of descriptors.
fn default_max_connections() -> usize {
    let soft = sys::open_file_limit().map_or(1024, |(soft, _)| soft);
    usize::try_from(soft / 4).unwrap_or(usize::MAX).max(16)
}

/// The access policy from its settings; a token file that cannot be read stops start-up.
fn access(settings: &AccessSettings) -> Result<Access, TokenError> {
    let tokens = Tokens::load(
        settings.auth_tokens.clone(),
        settings.auth_token_file.clone(),
    )?;
    let max = settings
        .max_connections
        .unwrap_or_else(default_max_connections);
    Ok(Access {
        tokens,
        trusted_clients: settings.trusted_clients.clone(),
        allow_clients: settings.allow_clients.clone(),
        limits: ConnectionLimits::new(max, settings.max_connections_per_client),
    })
}

impl ProxyState {
    /// Builds the state; it fails on an access log that cannot be opened or a token
    /// file that cannot be read.
    pub fn new(settings: &Settings) -> Result<Self, StateError> {
        let metrics = Metrics::new(settings.metrics_per_target);
        let metrics = Arc::new(match settings.edge {
            Some(_) => metrics.with_machines(),
            None => metrics,
        });
        let edge = match &settings.edge {
            Some(edge) => Some(Arc::new(
                Edge::new(edge.clone(), settings.connect_timeout).map_err(StateError::Edge)?,
            )),
            None => None,
        };
        let access_log = AccessLog::open(
            settings.access_log.clone(),
            settings.access_log_format,
            settings.access_log_query,
            metrics.access_log_dropped.clone(),
        )
        .map_err(StateError::AccessLog)?;
        let wait = WaitPolicy {
            default: settings.wait_for_port,
            max: settings.max_wait_for_port,
        };
        // The proxy's own addresses, admin included, are never targets (508).
        let own: Vec<_> = settings
            .listen
            .iter()
            .chain(&settings.admin_listen)
            .copied()
            .collect();
        let targets = settings.access.targets.clone();
        Ok(ProxyState {
            router: Router::new(settings.upstream_host, own, wait, targets),
            access: access(&settings.access)?,
            connect_timeout: settings.connect_timeout,
            head_timeout: settings.request_head_timeout,
            tunnel_idle_timeout: settings.tunnel_idle_timeout,
            upstream_read_timeout: settings.upstream_read_timeout,
            tunnel_send_buffer: settings.tunnel_send_buffer,
            host_override: settings.host_override,
            rewrite_loopback_redirects: settings.rewrite_loopback_redirects,
            h2c_ports: settings.h2c_ports.clone(),
            tunnels: Arc::new(Tunnels::default()),
            edge,
            recorder: Recorder {
                metrics,
                access_log,
            },
        })
    }
}
