//! How is the server put together? The command line ([`cli`]), the conf and its merge
//! with flags and environment ([`conf`], [`merge`], with edge mode's settings in
//! `merge::edge`, [`load`], [`settings`]), the state every request path shares
//! ([`state`]), the pingora server with its services ([`server`], [`background`]),
//! signals ([`signals`]), the open-file limit ([`limits`]), and why start-up stops
//! ([`startup_error`]).

pub mod background;
pub mod cli;
pub mod conf;
pub mod limits;
pub mod load;
pub mod merge;
pub mod server;
pub mod settings;
pub mod signals;
pub mod startup_error;
pub mod state;

pub use cli::Cli;
pub use load::{load, Loaded};
pub use startup_error::StartupError;
pub use state::ProxyState;
