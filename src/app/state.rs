//! What every request path shares, built once at start-up from the settings.

use super::settings::Settings;
use crate::observe::access_log::AccessLog;
use crate::observe::{Metrics, Recorder};
use crate::routing::{Router, WaitPolicy};
use crate::tunnel::Tunnels;
use std::sync::Arc;
use std::time::Duration;

/// Shared by the HTTP proxy, the CONNECT tunnel, the dispatcher and the shutdown watcher.
pub struct ProxyState {
    pub router: Router,
    pub connect_timeout: Duration,
    pub head_timeout: Duration,
    /// Idle timeout for tunnels; `None` means tunnels stay open while both ends do.
    pub tunnel_idle_timeout: Option<Duration>,
    /// Longest silence from a target during a plain HTTP exchange; `None`: no limit.
    pub upstream_read_timeout: Option<Duration>,
    /// SO_SNDBUF for CONNECT tunnels' sockets to loopback targets (`None`: the kernel's).
    pub tunnel_send_buffer: Option<usize>,
    pub tunnels: Arc<Tunnels>,
    pub recorder: Recorder,
}

impl ProxyState {
    /// Builds the state; opening the access log can fail (a file that cannot be
    /// opened).
    pub fn new(settings: &Settings) -> std::io::Result<Self> {
        let metrics = Arc::new(Metrics::new(settings.metrics_per_target));
        let access_log = AccessLog::open(
            settings.access_log.clone(),
            settings.access_log_format,
            settings.access_log_query,
            metrics.access_log_dropped.clone(),
        )?;
        let wait = WaitPolicy {
            default: settings.wait_for_port,
            max: settings.max_wait_for_port,
        };
        Ok(ProxyState {
            router: Router::new(settings.upstream_host, settings.listen.clone(), wait),
            connect_timeout: settings.connect_timeout,
            head_timeout: settings.request_head_timeout,
            tunnel_idle_timeout: settings.tunnel_idle_timeout,
            upstream_read_timeout: settings.upstream_read_timeout,
            tunnel_send_buffer: settings.tunnel_send_buffer,
            tunnels: Arc::new(Tunnels::default()),
            recorder: Recorder {
                metrics,
                access_log,
            },
        })
    }
}
