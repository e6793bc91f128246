//! Where every finished request or tunnel is recorded: metrics, then the access log.

use super::access_log::AccessLog;
use super::entry::Entry;
use super::metrics::Metrics;
use std::sync::Arc;

/// Records finished requests and tunnels.
pub struct Recorder {
    pub metrics: Arc<Metrics>,
    pub access_log: AccessLog,
}

impl Recorder {
    /// Records one finished request or tunnel.
    pub fn record(&self, entry: &Entry<'_>) {
        self.metrics.finished(entry);
        self.access_log.log(entry);
    }
}
