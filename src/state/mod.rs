//! What does every request share? [`ProxyState`]: the router, the access policy, the
//! recorder (metrics and access log), the open tunnels, the edge in edge mode, and the
//! settings the request paths read ([`settings`]). It is built once at start-up (by
//! `app`) and read by the services above it (`front`, `proxy`, `tunnel`); it imports
//! none of them.

mod error;
pub mod settings;

pub use error::StateError;
pub use settings::{
    AccessSettings, AdminSettings, RedirectSettings, Settings, Timeouts, TunnelSettings,
};

use crate::access::{Access, ConnectionLimits, TokenError, Tokens};
use crate::edge::Edge;
use crate::host::{host_service_behind, sys, Disclosure};
use crate::observe::{Recorder, Tunnels};
use crate::routing::{Router, Target};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Shared by the HTTP proxy, the CONNECT tunnel, the dispatcher and the shutdown watcher.
pub struct ProxyState {
    pub router: Router,
    pub timeouts: Timeouts,
    /// How tunnels behave; the open ones are counted in `tunnels`.
    pub tunnel: TunnelSettings,
    pub redirects: RedirectSettings,
    pub tunnels: Arc<Tunnels>,
    pub recorder: Recorder,
    pub access: Access,
    /// Edge mode's state; `None` on a node.
    pub edge: Option<Arc<Edge>>,
}

impl ProxyState {
    /// What a client may be told about the machine's listeners (a 502's explanation).
    pub fn disclosure(&self) -> Disclosure<'_> {
        Disclosure {
            own: &self.router.loops,
            outside_workspaces: self.router.rules.targets.allow_default_upstream,
        }
    }

    /// With `allow_default_upstream: false`, why `target` is refused when a host
    /// service's wildcard listener, not a workspace's server, would answer it. Reads the
    /// socket table, so it runs where the plan is carried out, before connecting.
    pub async fn host_service_refusal(&self, target: &Target) -> Option<String> {
        if self.router.rules.targets.allow_default_upstream {
            return None;
        }
        let wildcard = host_service_behind(target.addr).await?;
        Some(format!(
            "{} is answered by a host service listening on {wildcard} (every address), not by the workspace, and allow_default_upstream is false",
            target.describe()
        ))
    }
}

/// Without `max_connections`: a quarter of the open-file limit (a CONNECT tunnel holds
/// seven descriptors, an HTTP request two or three), so that the proxy answers 503
/// before it runs out of descriptors.
fn default_max_connections() -> usize {
    let soft = sys::open_file_limit().map_or(1024, |(soft, _)| soft);
    usize::try_from(soft / 4).unwrap_or(usize::MAX).max(16)
}

/// With a wildcard among `own`, the machine's interface addresses, read once: each one
/// reaches that listener (a loop), and is a name the proxy is known by (its `Host`).
fn interface_addresses_behind_wildcards(own: &[SocketAddr]) -> Vec<IpAddr> {
    if !own.iter().any(|a| a.ip().is_unspecified()) {
        return Vec::new();
    }
    sys::interface_addresses().unwrap_or_else(|e| {
        log::warn!("cannot list the interface addresses ({e}): only loopback counts as local");
        Vec::new()
    })
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
    /// Builds the state, holding the settings groups as they are; it fails on edge
    /// mode's resolver or node token, an access log that cannot be opened or a token
    /// file that cannot be read.
    pub fn new(settings: &Settings) -> Result<Self, StateError> {
        let edge = match &settings.edge {
            Some(edge) => Some(Arc::new(Edge::new(
                edge.clone(),
                settings.timeouts.connect,
            )?)),
            None => None,
        };
        let recorder = Recorder::open(
            &settings.access_log,
            &settings.metrics,
            settings.edge.is_some(),
        )
        .map_err(StateError::AccessLog)?;
        // The proxy's own addresses, admin included, are never targets (508).
        let own: Vec<_> = settings
            .listen
            .iter()
            .chain(&settings.admin.listen)
            .copied()
            .collect();
        let local_ips = interface_addresses_behind_wildcards(&own);
        Ok(ProxyState {
            router: Router::new(settings.routing.clone(), own, local_ips),
            access: access(&settings.access)?,
            timeouts: settings.timeouts,
            tunnel: settings.tunnel,
            redirects: settings.redirects,
            tunnels: Arc::new(Tunnels::default()),
            edge,
            recorder,
        })
    }
}
