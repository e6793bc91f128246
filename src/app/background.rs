//! Background services: the shutdown watcher (health turns 503 at once, tunnels close
//! at the deadline) and the `SIGHUP` watcher (the access log is reopened).

use super::state::ProxyState;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// On shutdown: health turns 503 at once, and the tunnels still open when the grace
/// period ends are closed (and counted).
pub struct ShutdownWatcher {
    pub state: Arc<ProxyState>,
    pub draining: Arc<AtomicBool>,
    pub tunnel_deadline: Duration,
}

#[async_trait]
impl BackgroundService for ShutdownWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let _ = shutdown.wait_for(|stop| *stop).await;
        self.draining.store(true, Ordering::Relaxed);
        tokio::time::sleep(self.tunnel_deadline).await;
        self.state.tunnels.close_all();
    }
}

/// Reopens the access log on `SIGHUP`, so that logrotate can move the file away.
pub struct HangupWatcher {
    pub state: Arc<ProxyState>,
}

#[async_trait]
impl BackgroundService for HangupWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            log::warn!("cannot watch SIGHUP: the access log will not be reopened");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                Some(()) = hangups.recv() => {
                    log::info!("SIGHUP: reopening the access log");
                    self.state.recorder.access_log.reopen();
                }
            }
        }
    }
}
