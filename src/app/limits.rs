//! The open-file limit. Every proxied connection holds descriptors: two for an HTTP
//! request or WebSocket (client and target), seven for a CONNECT tunnel (two sockets, a
//! second handle on the client socket, two pipes). A shell's usual soft limit of 1024
//! would refuse connections after about 500 WebSockets or 140 tunnels, so the soft limit
//! is raised to the hard one at start-up, as nginx's `worker_rlimit_nofile` or Go's
//! runtime do.

use crate::host::sys;
use std::io;

/// Above this the limit is left where it is raised to: no machine this runs on needs
/// more, and some kernels report an effectively unlimited hard limit.
const MOST_FILES: libc::rlim_t = 1 << 20;

/// The soft limit before and after, when it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub from: libc::rlim_t,
    pub to: libc::rlim_t,
}

/// Raises the soft open-file limit to the hard limit (at most 2^20). `Ok(None)` when it
/// is already there.
pub fn raise_open_file_limit() -> io::Result<Option<Raised>> {
    let (soft, hard) = sys::open_file_limit()?;
    let wanted = hard.min(MOST_FILES);
    if soft >= wanted {
        return Ok(None);
    }
    sys::set_open_file_limit(wanted, hard)?;
    Ok(Some(Raised {
        from: soft,
        to: wanted,
    }))
}
