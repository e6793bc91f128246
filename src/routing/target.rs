//! Where a request goes.

use std::net::SocketAddr;

/// A routed request's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// The workspace name as the client gave it (trimmed), if one was given.
    pub workspace: Option<String>,
}

impl Target {
    /// `HOST:PORT` plus the workspace, for messages: `127.18.0.7:3000 (workspace-7)`.
    pub fn describe(&self) -> String {
        match &self.workspace {
            Some(ws) => format!("{} ({ws})", self.addr),
            None => self.addr.to_string(),
        }
    }
}
