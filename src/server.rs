//! Assembles the pingora server: one service whose listeners serve HTTP, WebSocket and
//! CONNECT alike.

use crate::config::{Cli, Loaded};
use crate::connect::TunnelSettings;
use crate::dispatch::FrontDoor;
use crate::proxy::CmuxProxy;
use pingora::server::configuration::Opt;
use pingora::server::Server;
use pingora::services::listening::Service;
use std::net::{SocketAddr, TcpListener};

/// Name of the listening service in pingora's logs.
pub const SERVICE_NAME: &str = "cmux-proxy";

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
    let mut server = Server::new_with_opt_and_conf(pingora_opt(cli), server_conf);
    server.bootstrap();

    let http = pingora::proxy::http_proxy(&server.configuration, CmuxProxy::new(&settings));
    let tunnel = TunnelSettings {
        upstream_host: settings.upstream_host,
        connect_timeout: settings.connect_timeout,
        head_timeout: settings.request_head_timeout,
    };
    let mut service = Service::new(SERVICE_NAME.to_string(), FrontDoor::new(http, tunnel));
    for addr in &settings.listen {
        service.add_tcp(&addr.to_string());
    }
    server.add_service(service);
    server
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
