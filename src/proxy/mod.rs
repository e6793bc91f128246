//! How are HTTP/1.1 and HTTP/2 requests and WebSocket upgrades proxied? By pingora, which
//! does the streaming, keep-alive, upstream pooling and multiplexing, and upgrade
//! handling; [`CmuxProxy`]'s hooks decide where a request goes ([`peer`]) and in which
//! protocol ([`upstream_protocol`]), what the target sees ([`forwarded`], [`authority`],
//! [`host_override`]), what the client sees of the response ([`hop_by_hop`],
//! [`redirects`]) and of a failure ([`failure`], [`respond`], [`grpc_answer`]).

mod admission;
mod authority;
mod ctx;
mod edge_hop;
mod failure;
mod forwarded;
mod grpc_answer;
mod hooks;
mod hop_by_hop;
mod host_override;
mod origin;
mod peer;
mod redirects;
mod respond;
mod upstream_protocol;

pub use ctx::RequestCtx;
pub use hooks::CmuxProxy;
pub use peer::BODY_READ_TIMEOUT;
