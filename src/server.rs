//! Assembles the pingora server: the proxy service (HTTP, WebSocket and CONNECT on the
//! same listeners), the admin service, and a background service that reacts to
//! shutdown (health turns 503, tunnels close at the deadline) and to `SIGHUP`.

use crate::admin::AdminApp;
use crate::config::{Cli, Loaded};
use crate::dispatch::FrontDoor;
use crate::proxy::CmuxProxy;
use crate::state::ProxyState;
use async_trait::async_trait;
use pingora::apps::http_app::HttpServer;
use pingora::listeners::ListenerConfig;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::configuration::Opt;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
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
pub fn build(cli: &Cli, loaded: Loaded) -> Result<Server, String> {
    let Loaded {
        settings,
        server_conf,
    } = loaded;
    let grace = Duration::from_secs(server_conf.grace_period_seconds.unwrap_or(0));
    let state = Arc::new(
        ProxyState::new(&settings).map_err(|e| format!("cannot open the access log: {e}"))?,
    );
    let mut server = Server::new_with_opt_and_conf(pingora_opt(cli), server_conf);
    server.bootstrap();

    let http = pingora::proxy::http_proxy(&server.configuration, CmuxProxy::new(state.clone()));
    let mut service = Service::new(
        SERVICE_NAME.to_string(),
        FrontDoor::new(http, state.clone()),
    );
    for addr in &settings.listen {
        // No read buffer in front of client sockets: the dispatcher and pingora's parser
        // read into buffers of their own, so pingora's default 64 KiB one only added a
        // copy, and about 4 KiB of memory per idle WebSocket (measured).
        service.add_listener(
            ListenerConfig::tcp(addr.to_string()).l4_buffer(L4BufferSettings::default().read(0)),
        );
    }
    server.add_service(service);

    let draining = Arc::new(AtomicBool::new(false));
    if let Some(admin) = settings.admin_listen {
        let app = AdminApp {
            metrics: state.metrics.clone(),
            tunnels: state.tunnels.clone(),
            draining: draining.clone(),
        };
        let mut admin_service = Service::new("cmux-proxy admin".into(), HttpServer::new_app(app));
        admin_service.add_tcp(&admin.to_string());
        server.add_service(admin_service);
    }
    server.add_service(background_service(
        "shutdown watcher",
        ShutdownWatcher {
            state,
            draining,
            tunnel_deadline: grace.saturating_sub(DEADLINE_MARGIN),
        },
    ));
    Ok(server)
}

/// On shutdown: health turns 503 at once, and the tunnels still open when the grace
/// period ends are closed (and counted). Also reopens the access log on `SIGHUP`.
struct ShutdownWatcher {
    state: Arc<ProxyState>,
    draining: Arc<AtomicBool>,
    tunnel_deadline: Duration,
}

#[async_trait]
impl BackgroundService for ShutdownWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup()).ok();
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                Some(()) = async { hangups.as_mut()?.recv().await } => {
                    log::info!("SIGHUP: reopening the access log");
                    self.state.access_log.reopen();
                }
            }
        }
        self.draining.store(true, Ordering::Relaxed);
        tokio::time::sleep(self.tunnel_deadline).await;
        self.state.tunnels.close_all();
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

/// pingora's signal handling with one change: `SIGINT` (Ctrl-C) stops gracefully like
/// `SIGTERM` instead of dropping requests in flight. `SIGQUIT` still starts the
/// graceful upgrade hand-over.
pub struct GracefulSignals;

#[async_trait]
impl ShutdownSignalWatch for GracefulSignals {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            log::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = quit.recv() => ShutdownSignal::GracefulUpgrade,
            _ = term.recv() => ShutdownSignal::GracefulTerminate,
            _ = int.recv() => {
                log::info!("SIGINT received: stopping gracefully, as for SIGTERM");
                ShutdownSignal::GracefulTerminate
            }
        }
    }
}

/// Runs the server until it is stopped, then exits 0.
pub fn run(server: Server) -> ! {
    server.run(RunArgs {
        shutdown_signal: Box::new(GracefulSignals),
    });
    std::process::exit(0)
}
