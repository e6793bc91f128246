//! Signals: pingora's handling with one change, and running the server until it stops.

use async_trait::async_trait;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};

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
