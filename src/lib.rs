//! cmux-proxy: one front door for many coding workspaces on one machine.
//!
//! A request names its target with headers (`X-Cmux-Port-Internal`,
//! `X-Cmux-Workspace-Internal`) or a `<workspace>-<port>.localhost` Host; the proxy
//! streams it there. Each folder answers one question. They are listed from the bottom
//! up: a folder imports only folders above it in the table, and `proxy` and `tunnel`
//! not each other.
//!
//! | module | question |
//! |---|---|
//! | [`routing`] | where does a request go? (a request head in, one plan out; no I/O) |
//! | [`host`] | what does the machine say: listening sockets, owners, raw syscalls? |
//! | [`access`] | who may come in: client lists, tokens, connection limits? |
//! | [`error`] | what does a client get when something fails? |
//! | [`edge`] | in edge mode, where is the proxy of the machine the plan names (DNS)? |
//! | [`observe`] | what can an operator see: access log, metrics, open tunnels, admin endpoints? |
//! | [`state`] | what does every request share: router, access policy, recorder, open tunnels, settings? |
//! | [`proxy`] | how are HTTP/1.1, HTTP/2 and WebSocket proxied (pingora's `ProxyHttp` hooks)? |
//! | [`tunnel`] | how are CONNECT tunnels made and relayed? |
//! | [`front`] | what arrives on the listener, and where does it go? |
//! | [`app`] | how is the server put together: flags, conf and their merge, start-up errors, services, signals? |
//!
//! [`names`] declares every header, cookie and query name of the protocol once.
//!
//! # The request path, in pingora's phase order
//!
//! Every path asks [`routing::Router::plan`] once where the request goes and carries the
//! [`routing::Plan`] out: `Direct` (target, wait budget, host override, protocol to the
//! target) on a node, `Edge` (machine, port, workspace, and what the node is told) on an
//! edge, or a `Refusal` answered from the [`error`] table.
//!
//! ```text
//! accept (pingora Service, one per listen address)
//!  └─ front::FrontDoor::process_new       read the head: bounded in size and time
//!      ├─ "CONNECT ..."  ─> tunnel::serve
//!      │     request::parse ─> Router::plan
//!      │       Direct: upstream::connect_waiting (retries within the wait budget)
//!      │       Edge:   edge::node_for (DNS, loop guard) ─> tunnel::edge::open (a CONNECT
//!      │               to the node with Hop::node_headers; 200 only if the node said so)
//!      │     ─> "200 Connection Established" ─> relay (splice both ways) ─> observe
//!      ├─ h2c preface (first bytes) ─> front::h2c::serve: pingora's HTTP/2 server,
//!      │     each stream one request for pingora's HTTP proxy, below
//!      ├─ not HTTP, head timeout, late h2c preface ─> front::early::refuse (error::reply)
//!      └─ anything else ─> pingora's HTTP proxy, with proxy::CmuxProxy's hooks:
//!           request_filter           the token (access), the ?cmux_token= visit
//!           upstream_peer            first attempt: Router::plan, then
//!                                      Direct: peer::first_attempt (target, override,
//!                                              protocol, wait budget into the context)
//!                                      Edge:   edge_hop::first_attempt: edge::node_for
//!                                    later attempts: pause before retrying a refusal
//!           fail_to_connect          count it; retry a refusal within the wait budget
//!           upstream_request_filter  drop routing headers; X-Forwarded-*, Via; then the
//!                                    host override (Host, same-origin Origin/Referer),
//!                                    or at an edge the node's headers (Hop::node_headers)
//!           response_filter          101: count the WebSocket; else drop hop-by-hop,
//!                                    rewrite a loopback Location to the client's origin
//!           (pingora streams the body both ways, or the upgraded WebSocket bytes)
//!           fail_to_proxy            proxy::failure::classify ─> error table ─> reply
//!                                    (the row's gRPC status for a gRPC request)
//!           logging                  observe::Recorder (metrics, access log)
//! ```
#![deny(unsafe_code)]

pub mod access;
pub mod app;
pub mod edge;
pub mod error;
pub mod front;
pub mod host;
pub mod names;
pub mod observe;
pub mod proxy;
pub mod routing;
pub mod state;
pub mod tunnel;
