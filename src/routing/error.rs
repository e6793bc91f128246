//! Why a request could not be routed: each is a 400 with a stable code.

use super::headers::{PORT_DISPLAY, WAIT_DISPLAY, WORKSPACE_DISPLAY};
use std::fmt;

/// Why a request could not be routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Neither the port header nor a `<workspace>-<port>.localhost` Host.
    MissingPort,
    /// The port header's value is not a decimal number in 1..=65535.
    BadPort(String),
    /// The port header appears more than once with different values.
    ConflictingPorts(String, String),
    /// The workspace name was refused by the name rule.
    BadWorkspace { name: String, reason: &'static str },
    /// The workspace header appears more than once with different values.
    ConflictingWorkspaces(String, String),
    /// The wait header's value is not a whole number of milliseconds.
    BadWait(String),
}

impl RouteError {
    /// Stable machine-readable code, as used in JSON error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            RouteError::MissingPort => "missing_port",
            RouteError::BadPort(_) | RouteError::ConflictingPorts(..) => "bad_port",
            RouteError::BadWorkspace { .. } | RouteError::ConflictingWorkspaces(..) => {
                "bad_workspace"
            }
            RouteError::BadWait(_) => "bad_wait",
        }
    }

    /// What the client can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            RouteError::MissingPort => {
                "send X-Cmux-Port-Internal: <port>, or use a <workspace>-<port>.localhost host name"
            }
            RouteError::BadPort(_) | RouteError::ConflictingPorts(..) => {
                "send one decimal port from 1 to 65535"
            }
            RouteError::BadWorkspace { .. } | RouteError::ConflictingWorkspaces(..) => {
                "use a name of ASCII letters, digits, '.', '_', '-' and '/' ending in 1-65535 or in a letter, such as workspace-7"
            }
            RouteError::BadWait(_) => "send a whole number of milliseconds, such as 2000",
        }
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::MissingPort => write!(f, "missing required header: {PORT_DISPLAY}"),
            RouteError::BadPort(v) => write!(
                f,
                "invalid {PORT_DISPLAY} header {v:?}: expected a port number from 1 to 65535"
            ),
            RouteError::ConflictingPorts(a, b) => write!(
                f,
                "conflicting {PORT_DISPLAY} headers: {a:?} and {b:?}; send it once"
            ),
            RouteError::BadWorkspace { name, reason } => {
                write!(f, "invalid workspace name {name:?}: {reason}")
            }
            RouteError::ConflictingWorkspaces(a, b) => write!(
                f,
                "conflicting {WORKSPACE_DISPLAY} headers: {a:?} and {b:?}; send it once"
            ),
            RouteError::BadWait(v) => {
                write!(
                    f,
                    "invalid {WAIT_DISPLAY} header {v:?}: expected milliseconds"
                )
            }
        }
    }
}

impl std::error::Error for RouteError {}
