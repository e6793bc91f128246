//! What can an operator see? Every finished request or tunnel is one [`Entry`], recorded
//! in the metrics and the access log by the [`Recorder`]; open tunnels are counted in
//! [`Tunnels`] (which also closes them at the shutdown deadline); the admin listener
//! serves health, metrics, version, each workspace's open ports and, on an edge, the
//! machines DNS was asked about.

pub mod access_log;
pub mod admin;
mod connect_failure;
mod entry;
mod kinds;
pub mod log_line;
mod machine_answers;
mod machines;
pub mod metrics;
mod ports;
mod recorder;
mod tunnels;

pub use access_log::AccessLogSettings;
pub use connect_failure::ConnectFailure;
pub use entry::{peer_addr, Entry};
pub use kinds::{EndReason, RequestKind};
pub use metrics::{Metrics, MetricsSettings};
pub use recorder::Recorder;
pub use tunnels::{TunnelGuard, Tunnels};
