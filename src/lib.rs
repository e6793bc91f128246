//! cmux-proxy: one front door for many coding workspaces on one machine.
//!
//! A request names its target with headers (`X-Cmux-Port-Internal`,
//! `X-Cmux-Workspace-Internal`) or a `<workspace>-<port>.localhost` Host; the proxy
//! streams it there. Plain HTTP/1.1 and WebSocket upgrades go through pingora's proxy
//! ([`proxy`]); `CONNECT` tunnels are served on the same listener ([`connect`]), chosen
//! per request by [`dispatch`].

pub mod access_log;
pub mod admin;
pub mod config;
pub mod connect;
pub mod dispatch;
pub mod error;
pub mod head;
pub mod limits;
pub mod metrics;
pub mod proxy;
pub mod route;
pub mod server;
pub mod sock_diag;
pub mod sockets;
pub mod splice;
pub mod state;
pub mod tunnels;

/// Where the shared routing contract and its test vectors live: `$CMUX_SPEC_DIR`, or
/// `../shared/spec` beside the repository.
#[cfg(test)]
pub(crate) fn spec_dir() -> std::path::PathBuf {
    match std::env::var_os("CMUX_SPEC_DIR") {
        Some(dir) => dir.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/spec"),
    }
}
