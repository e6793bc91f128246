//! Where does a request go? Headers and Host in; a target, a loop check and a wait
//! budget out. Everything here is a pure function of the request head, so HTTP,
//! WebSocket and CONNECT share one set of rules ([`Router::route`]) and the tests need no
//! sockets. The rules are those of `spec/routing.md`.

mod address;
mod error;
pub mod headers;
mod host_override;
mod listen_addr;
mod parse;
mod policy;
mod protocol;
mod resolve;
mod router;
mod target;

pub use address::{is_workspace_ip, workspace_address, workspace_number};
pub use error::RouteError;
pub use host_override::{parse_host_override, HostOverrideDefault};
pub use listen_addr::listen_covers;
pub use parse::{parse_port, parse_wait_ms, split_localhost_host};
pub use policy::{LoopGuard, PortRange, TargetPolicy, WaitPolicy};
pub use protocol::{
    requested_protocol, UpstreamProtocol, UPSTREAM_PROTOCOL, UPSTREAM_PROTOCOL_DISPLAY,
};
pub use resolve::{resolve, RouteRequest};
pub use router::{Refused, Routed, Router};
pub use target::Target;
