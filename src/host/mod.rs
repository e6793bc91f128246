//! What does the machine say? Which sockets listen where (the kernel's `sock_diag`, or
//! `/proc`), which process owns them, what that means for a refused connection, which
//! host services a workspace address reaches, and every
//! raw system call ([`sys`], the only module allowed `unsafe`).

mod explain;
mod exposure;
mod listening;
mod owners;
mod proc_net;
mod sock_diag;
pub mod sys;

pub use explain::{explain_refusal, explain_refused, RefusalExplanation, START_OR_WAIT};
pub use exposure::{host_service_behind, wildcard_only, Disclosure};
pub use listening::{listening, listening_on_port};
pub use owners::{socket_owners, Owner};
pub use proc_net::listening_from_proc;

use std::net::SocketAddr;

/// One listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    /// Socket inode, to find the owning process in `/proc/*/fd`.
    pub inode: u64,
}
