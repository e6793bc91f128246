//! Assembles the pingora server: one service whose listeners serve HTTP, WebSocket and
//! CONNECT alike, and a background service that closes tunnels at the shutdown deadline.

use crate::config::{Cli, Loaded};
use crate::dispatch::FrontDoor;
use crate::proxy::CmuxProxy;
use crate::state::ProxyState;
use crate::tunnels::Tunnels;
use async_trait::async_trait;
use pingora::server::configuration::Opt;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// Name of the listening service in pingora's logs.
pub const SERVICE_NAME: &str = "cmux-proxy";

/// How long before the process stops its runtimes the tunnels are closed, so that
/// they end with a clean close rather than being dropped mid-write.
const DEADLINE_MARGIN: Duration = Duration::from_millis(300);

/// pingora's flags as given, without the conf path: the conf was already read once by
/// [`crate::config::load`] and is handed over whole.
fn pingora_opt(cli: &Cli) -> Opt {
    Opt {
        upgrade: cli.pingora.upgrade,
        daemon: cli.pingora.daemon,
        nocapture: cli.pingora.nocapture,
        test: cli.pingora.test,
        conf: None,
    }
}

/// Builds the server, ready for `run_forever`.
pub fn build(cli: &Cli, loaded: Loaded) -> Server {
    let Loaded {
        settings,
        server_conf,
    } = loaded;
    let grace = Duration::from_secs(server_conf.grace_period_seconds.unwrap_or(0));
    let mut server = Server::new_with_opt_and_conf(pingora_opt(cli), server_conf);
    server.bootstrap();

    let state = Arc::new(ProxyState::new(&settings));
    let http = pingora::proxy::http_proxy(&server.configuration, CmuxProxy::new(state.clone()));
    let mut service = Service::new(
        SERVICE_NAME.to_string(),
        FrontDoor::new(http, state.clone()),
    );
    for addr in &settings.listen {
        service.add_tcp(&addr.to_string());
    }
    server.add_service(service);
    server.add_service(background_service(
        "tunnel deadline",
        TunnelDeadline {
            tunnels: state.tunnels.clone(),
            after: grace.saturating_sub(DEADLINE_MARGIN),
        },
    ));
    server
}

/// Closes the tunnels still open when the grace period after a shutdown signal ends.
struct TunnelDeadline {
    tunnels: Arc<Tunnels>,
    after: Duration,
}

#[async_trait]
impl BackgroundService for TunnelDeadline {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if shutdown.wait_for(|stop| *stop).await.is_err() {
            return;
        }
        tokio::time::sleep(self.after).await;
        self.tunnels.close_all();
    }
}

/// Checks that every listen address can be bound, so that a port in use is reported in
/// one line instead of a panic inside pingora's listener setup.
pub fn check_listen_addresses(addrs: &[SocketAddr]) -> Result<(), String> {
    for addr in addrs {
        if let Err(e) = TcpListener::bind(addr) {
            return Err(format!("cannot listen on {addr}: {e}"));
        }
    }
    Ok(())
}
