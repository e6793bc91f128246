//! Where every finished request or tunnel is recorded: metrics, then the access log.

use super::access_log::{AccessLog, AccessLogSettings};
use super::entry::Entry;
use super::metrics::{Metrics, MetricsSettings};
use std::io;
use std::sync::Arc;

/// Records finished requests and tunnels.
pub struct Recorder {
    pub metrics: Arc<Metrics>,
    pub access_log: AccessLog,
}

impl Recorder {
    /// The metrics (with the per-machine counter on an edge) and the access log, opened
    /// now; no writer thread is started yet.
    pub fn open(
        log: &AccessLogSettings,
        metrics: &MetricsSettings,
        per_machine: bool,
    ) -> io::Result<Self> {
        let metrics = Metrics::new(metrics.per_target);
        let metrics = Arc::new(match per_machine {
            true => metrics.with_machines(),
            false => metrics,
        });
        let access_log = AccessLog::open(log, metrics.access_log_dropped.clone())?;
        Ok(Recorder {
            metrics,
            access_log,
        })
    }

    /// Records one finished request or tunnel.
    pub fn record(&self, entry: &Entry<'_>) {
        self.metrics.finished(entry);
        self.access_log.log(entry);
    }
}
