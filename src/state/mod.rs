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
use crate::host::sys;
use crate::observe::{Recorder, Tunnels};
use crate::routing::Router;
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
        Ok(ProxyState {
            router: Router::new(settings.routing.clone(), own),
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
