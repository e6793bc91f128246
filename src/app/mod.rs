//! How is the server put together? The command line ([`cli`]), the conf ([`conf`]) and
//! their merge with the environment and the built-in [`defaults`] into
//! `state::Settings` ([`merge`], with edge mode's settings in `merge::edge`; [`load`]
//! does it all), why start-up stops ([`startup_error`]), the pingora server with its
//! services around the shared `state::ProxyState` ([`server`], [`background`]), the
//! upgrade hand-over's failures ([`handover`]),
//! signals ([`signals`]) and the open-file limit ([`limits`]).

pub mod background;
pub mod cli;
pub mod conf;
pub mod defaults;
pub mod handover;
pub mod limits;
pub mod load;
pub mod merge;
pub mod server;
pub mod signals;
pub mod startup_error;

pub use cli::Cli;
pub use load::{load, Loaded};
pub use startup_error::StartupError;
