//! Why a connection to a target failed, as the metrics label it
//! (`cmux_upstream_connect_failures_total{reason}`). The proxy's own error kinds are
//! mapped here, on the observing side, so that `error` knows nothing of the metrics.

use crate::error::ProxyErrorKind;

/// Why a connection to a target failed, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    Refused,
    Timeout,
    Other,
}

impl ConnectFailure {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ConnectFailure::Refused => "refused",
            ConnectFailure::Timeout => "timeout",
            ConnectFailure::Other => "other",
        }
    }
}

impl From<&ProxyErrorKind> for ConnectFailure {
    /// How a failure to connect counts in the metrics, for HTTP and CONNECT alike.
    fn from(kind: &ProxyErrorKind) -> Self {
        match kind {
            ProxyErrorKind::PortClosed(_) => ConnectFailure::Refused,
            ProxyErrorKind::ConnectTimeout => ConnectFailure::Timeout,
            ProxyErrorKind::MachineUnreachable { timed_out, .. } => match timed_out {
                true => ConnectFailure::Timeout,
                false => ConnectFailure::Refused,
            },
            _ => ConnectFailure::Other,
        }
    }
}
