//! What can an operator see? Every finished request or tunnel is one [`Entry`], recorded
//! in the metrics and the access log by the [`Recorder`]; the admin listener serves
//! health, metrics, version and each workspace's open ports.

pub mod access_log;
pub mod admin;
mod entry;
mod kinds;
pub mod log_line;
mod machines;
pub mod metrics;
mod ports;
mod recorder;

pub use entry::{peer_addr, Entry};
pub use kinds::{EndReason, RequestKind};
pub use metrics::{ConnectFailure, Metrics};
pub use recorder::Recorder;
