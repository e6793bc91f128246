//! Assembles the pingora server: the proxy service (HTTP, WebSocket and CONNECT on the
//! same listeners), the admin service, and the background services.

use super::background::{HangupService, ShutdownWatcher};
use super::cli::Cli;
use super::load::Loaded;
use super::startup_error::StartupError;
use crate::front::FrontDoor;
use crate::observe::admin::AdminApp;
use crate::proxy::CmuxProxy;
use crate::state::{ProxyState, Settings};
use pingora::apps::http_app::HttpServer;
use pingora::listeners::ListenerConfig;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::proxy::HttpProxy;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Name of the listening service in pingora's logs.
pub const SERVICE_NAME: &str = "cmux-proxy";

/// How long before the process stops its runtimes the tunnels are closed, so that
/// they end with a clean close rather than being dropped mid-write.
const DEADLINE_MARGIN: Duration = Duration::from_millis(300);

/// The proxy service: the dispatcher in front of pingora's HTTP proxy, on every listen
/// address.
fn proxy_service(
    server: &Server,
    state: &Arc<ProxyState>,
    listen: &[SocketAddr],
) -> Service<FrontDoor<HttpProxy<CmuxProxy>>> {
    let http = pingora::proxy::http_proxy(&server.configuration, CmuxProxy::new(state.clone()));
    let mut service = Service::new(
        SERVICE_NAME.to_string(),
        FrontDoor::new(http, state.clone()),
    );
    for addr in listen {
        // No read buffer in front of client sockets: the dispatcher and pingora's parser
        // read into buffers of their own, so pingora's default 64 KiB one only added a
        // copy, and about 4 KiB of memory per idle WebSocket (measured).
        service.add_listener(
            ListenerConfig::tcp(addr.to_string()).l4_buffer(L4BufferSettings::default().read(0)),
        );
    }
    service
}

/// Builds the server, ready to run.
pub fn build(cli: &Cli, loaded: Loaded) -> Result<Server, StartupError> {
    let Loaded {
        settings,
        server_conf,
    } = loaded;
    let grace = Duration::from_secs(server_conf.grace_period_seconds.unwrap_or(0));
    let state = Arc::new(ProxyState::new(&settings)?);
    let mut server = Server::new_with_opt_and_conf(cli.pingora_opt(), server_conf);
    super::handover::bootstrap(&mut server)?;
    server.add_service(proxy_service(&server, &state, &settings.listen));

    let draining = Arc::new(AtomicBool::new(false));
    if let Some(admin) = settings.admin.listen {
        let app = AdminApp {
            metrics: state.recorder.metrics.clone(),
            tunnels: state.tunnels.clone(),
            draining: draining.clone(),
            machines: state.edge.as_ref().map(|e| e.book.clone()),
        };
        let mut admin_service = Service::new("cmux-proxy admin".into(), HttpServer::new_app(app));
        admin_service.add_tcp(&admin.to_string());
        server.add_service(admin_service);
    }
    let hangups = HangupService {
        state: state.clone(),
    };
    server.add_service(background_service("access log and SIGHUP", hangups));
    let shutdown = ShutdownWatcher {
        state,
        draining,
        tunnel_deadline: grace.saturating_sub(DEADLINE_MARGIN),
    };
    server.add_service(background_service("shutdown watcher", shutdown));
    Ok(server)
}

/// Checks that every listen address can be bound, so that a port in use is reported in
/// one line instead of a panic inside pingora's listener setup. An admin address that
/// was only the default and is in use (a second instance, say) is dropped with a
/// warning; one the user gave stops start-up like a proxy address.
pub fn check_listen_addresses(settings: &mut Settings) -> Result<(), StartupError> {
    for &addr in &settings.listen {
        if let Err(error) = TcpListener::bind(addr) {
            return Err(StartupError::Listen { addr, error });
        }
    }
    let Some(admin) = settings.admin.listen else {
        return Ok(());
    };
    match TcpListener::bind(admin) {
        Ok(_) => Ok(()),
        Err(error) if settings.admin.explicit => Err(StartupError::Listen { addr: admin, error }),
        Err(e) => {
            log::warn!(
                "admin listener {admin} (the default) is unavailable ({e}): running without it; set --admin-listen to choose another address"
            );
            settings.admin.listen = None;
            Ok(())
        }
    }
}

/// Warns when anyone who can reach a listen address reaches every loopback port of the
/// machine: the proxy listens beyond loopback with neither tokens nor `allow_clients`.
pub fn warn_if_open(settings: &Settings) {
    let access = &settings.access;
    let open = access.auth_tokens.is_empty()
        && access.auth_token_file.is_none()
        && access.allow_clients.is_empty();
    let beyond: Vec<String> = settings
        .listen
        .iter()
        .filter(|a| !a.ip().is_loopback())
        .map(|a| a.to_string())
        .collect();
    if open && !beyond.is_empty() {
        let reach = match settings.edge {
            None => "every loopback port of this machine",
            // An edge's node token is its own: whoever reaches the edge gets it added.
            Some(_) => "every port of every machine this edge finds, with the edge's node token",
        };
        log::warn!(
            "listening on {} beyond loopback with neither auth tokens nor allow_clients: whoever reaches it reaches {reach} (see the README's Access section)",
            beyond.join(", ")
        );
    }
}
