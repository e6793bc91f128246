//! How are HTTP/1.1 requests and WebSocket upgrades proxied? By pingora, which does the
//! streaming, keep-alive, upstream pooling and upgrade handling; [`CmuxProxy`]'s hooks
//! decide where a request goes ([`peer`]), what the target sees ([`forwarded`],
//! [`host_override`]), what the client sees of the response ([`hop_by_hop`],
//! [`redirects`]) and of a failure ([`failure`], [`respond`]).

mod admission;
mod ctx;
mod edge_hop;
mod failure;
mod forwarded;
mod hooks;
mod hop_by_hop;
mod host_override;
mod origin;
mod peer;
mod redirects;
mod respond;

pub use ctx::RequestCtx;
pub use hooks::CmuxProxy;
pub use peer::BODY_READ_TIMEOUT;
