//! Background services, started by pingora after it has daemonised (threads started
//! before the fork would not survive it): the access log's writer and `SIGHUP` (the log
//! reopened, the token file re-read), and the shutdown watcher.

use crate::state::ProxyState;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a stopping proxy looks whether anything is still in flight, and for how
/// long nothing must be: a connection accepted just before the listeners stopped is
/// counted within microseconds, well inside this.
const DRAIN_POLL: Duration = Duration::from_millis(25);
const DRAIN_SETTLE: Duration = Duration::from_millis(100);
/// Longest wait for the access log's last lines before an early exit.
const LOG_FLUSH: Duration = Duration::from_secs(1);

/// Starts the access log's writer; then on each `SIGHUP` reopens the log file (so that
/// logrotate can move it away) and re-reads the token file.
pub struct HangupService {
    pub state: Arc<ProxyState>,
}

impl HangupService {
    fn on_hangup(&self) {
        log::info!("SIGHUP: reopening the access log");
        self.state.recorder.access_log.reopen();
        let tokens = &self.state.access.tokens;
        if tokens.required() {
            match tokens.reload() {
                Ok(n) => log::info!("SIGHUP: {n} token(s) in force"),
                Err(e) => log::error!("SIGHUP: {e}; the tokens in force stay"),
            }
        }
    }
}

#[async_trait]
impl BackgroundService for HangupService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let access_log = &self.state.recorder.access_log;
        if let Err(e) = access_log.start_writer() {
            log::error!("cannot start the access log writer: {e}");
        }
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            log::warn!("cannot watch SIGHUP: the access log will not be reopened");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                Some(()) = hangups.recv() => self.on_hangup(),
            }
        }
    }
}

/// On shutdown: health turns 503 at once; the process exits as soon as no connection is
/// left (pingora's grace period is only the upper bound); tunnels still open when the
/// grace period ends are closed (and counted).
pub struct ShutdownWatcher {
    pub state: Arc<ProxyState>,
    pub draining: Arc<AtomicBool>,
    pub tunnel_deadline: Duration,
}

impl ShutdownWatcher {
    /// Resolves once no client connection has been open for [`DRAIN_SETTLE`].
    async fn drained(&self) {
        let active = &self.state.recorder.metrics.connections_active;
        let mut quiet = Duration::ZERO;
        while quiet < DRAIN_SETTLE {
            tokio::time::sleep(DRAIN_POLL).await;
            quiet = if active.get() == 0 {
                quiet + DRAIN_POLL
            } else {
                Duration::ZERO
            };
        }
    }

    /// Ends the process now that nothing is in flight: pingora would otherwise sleep
    /// out the whole grace period first. Its listeners have stopped (the shutdown
    /// broadcast came first), so no connection is accepted after the check.
    fn exit_drained(&self) -> ! {
        log::info!("graceful shutdown: no connection left; exiting");
        self.state.recorder.access_log.flush(LOG_FLUSH);
        std::process::exit(0)
    }
}

#[async_trait]
impl BackgroundService for ShutdownWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let _ = shutdown.wait_for(|stop| *stop).await;
        self.draining.store(true, Ordering::Relaxed);
        let deadline = tokio::time::sleep(self.tunnel_deadline);
        tokio::pin!(deadline);
        let mut tunnels_closed = false;
        loop {
            tokio::select! {
                _ = &mut deadline, if !tunnels_closed => {
                    tunnels_closed = true;
                    self.state.tunnels.close_all();
                }
                _ = self.drained() => self.exit_drained(),
            }
        }
    }
}
