//! How are CONNECT tunnels made and relayed? pingora does not proxy CONNECT, so the
//! dispatcher hands such requests here on the same listener: [`serve`] parses and
//! routes the head, connects (waiting for a restarting target), answers `200`, then
//! relays with `splice(2)`. Each open tunnel is counted in `observe::Tunnels`, which
//! also closes it at the shutdown deadline.

mod edge;
mod relay;
mod request;
mod serve;
pub mod splice;
mod upstream;

pub use serve::serve;
