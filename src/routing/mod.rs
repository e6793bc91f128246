//! Where does a request go? A request head in, one [`Plan`] out: the target (or, at an
//! edge, the machine), the wait budget, the host override and the protocol spoken to the
//! target, or the [`Refusal`] to answer. Everything here is a pure function of the head,
//! so HTTP, WebSocket, h2c and CONNECT share one set of rules ([`Router::plan`]) and the
//! tests need no sockets. The rules are those of `spec/routing.md`.

mod address;
mod error;
mod host_allow;
mod host_override;
mod listen_addr;
mod loop_guard;
mod machine;
mod parse;
mod plan;
mod policy;
mod protocol;
mod resolve;
mod router;
mod target;

pub use address::{is_workspace_ip, workspace_address, workspace_number};
pub use error::RouteError;
pub use host_allow::{HostAllowList, HostPattern};
pub use host_override::{parse_host_override, HostOverrideDefault};
pub use listen_addr::listen_covers;
pub use loop_guard::{canonical, LoopGuard};
pub use machine::valid_machine;
pub use parse::{header_text, parse_port, parse_wait_ms, split_localhost_host};
pub use plan::{for_this_hop_only, Direct, Exchange, Head, Hop, Plan, Reason, Refusal};
pub use policy::{PortRange, TargetPolicy, WaitPolicy};
pub use protocol::{is_grpc, requested_protocol, UpstreamProtocol};
pub use resolve::{resolve, RouteRequest};
pub use router::{Mode, RouteRules, Router};
pub use target::Target;

#[cfg(test)]
pub use parse::header_map;
