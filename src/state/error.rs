//! Why the shared state could not be built: start-up stops with the message.

use crate::access::TokenError;
use crate::edge::EdgeError;
use std::io;

/// Why the shared state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open the access log: {0}")]
    AccessLog(#[source] io::Error),
    #[error(transparent)]
    Tokens(#[from] TokenError),
    /// Edge mode's node token or DNS resolver.
    #[error(transparent)]
    Edge(#[from] EdgeError),
}
