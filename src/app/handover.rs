//! pingora's bootstrap, which on a graceful upgrade (`-u`) receives the listening sockets
//! from the old process through the upgrade socket.
//!
//! pingora's receiver (`Fds::get_from_sock`) panics on a message it cannot read: a local
//! process that connected to the upgrade socket before the old instance and sent
//! anything else trips an assertion in `Fds::deserialize`. pingora binds, accepts and
//! reads that socket inside `Server::bootstrap` and offers no hook to check the message
//! first, so the panic is caught here (`catch_unwind`) and becomes a start-up error with
//! an exit code; the old instance keeps serving. The default panic message is held back
//! while bootstrap runs, so that the operator reads one line, not a backtrace.

use super::StartupError;
use pingora::server::Server;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// Runs pingora's bootstrap; a panic inside it is a [`StartupError::Handover`].
pub fn bootstrap(server: &mut Server) -> Result<(), StartupError> {
    let caught: Arc<Mutex<Option<String>>> = Arc::default();
    let note = caught.clone();
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        *note.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{what}{at}"));
    }));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| server.bootstrap()));
    panic::set_hook(previous);
    match outcome {
        Ok(()) => Ok(()),
        Err(_) => {
            let why = caught
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_default();
            Err(StartupError::Handover {
                sock: server.configuration.upgrade_sock.clone(),
                why: why.lines().next().unwrap_or_default().to_string(),
            })
        }
    }
}
