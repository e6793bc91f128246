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
//! | [`routing`] | where does a request go? (headers in, target out; no I/O) |
//! | [`host`] | what does the machine say: listening sockets, owners, raw syscalls? |
//! | [`access`] | who may come in: client lists, tokens, connection limits? |
//! | [`error`] | what does a client get when something fails? |
//! | [`edge`] | in edge mode, which machine holds it, and where is that machine's proxy (DNS)? |
//! | [`observe`] | what can an operator see: access log, metrics, open tunnels, admin endpoints? |
//! | [`state`] | what does every request share: router, access policy, recorder, open tunnels, settings? |
//! | [`proxy`] | how are HTTP/1.1, HTTP/2 and WebSocket proxied (pingora's `ProxyHttp` hooks)? |
//! | [`tunnel`] | how are CONNECT tunnels made and relayed? |
//! | [`front`] | what arrives on the listener, and where does it go? |
//! | [`app`] | how is the server put together: flags, conf and their merge, start-up errors, services, signals? |
//!
//! # The request path, in pingora's phase order
//!
//! ```text
//! accept (pingora Service, one per listen address)
//!  └─ front::FrontDoor::process_new       read the head: bounded in size and time
//!      ├─ "CONNECT ..."  ─> tunnel::serve (on an edge: CONNECT to the machine's node)
//!      │     request::parse ─> routing::Router::route ─> upstream::connect_waiting
//!      │     ─> "200 Connection Established" ─> relay (splice both ways) ─> observe
//!      ├─ h2c preface (first bytes) ─> front::h2c::serve: pingora's HTTP/2 server,
//!      │     each stream one request for pingora's HTTP proxy, below
//!      ├─ not HTTP, head timeout, late h2c preface ─> front::early::refuse (error::reply)
//!      └─ anything else ─> pingora's HTTP proxy, with proxy::CmuxProxy's hooks:
//!           upstream_peer            routing::Router::route, the host override and
//!                                    HTTP/1.1 or h2c to the target (first attempt), or
//!                                    pause before retrying a refused target; on an
//!                                    edge: edge::hop (machine, port, workspace) and
//!                                    edge::Edge::locate (DNS)
//!           fail_to_connect          count it; retry a refusal within the wait budget
//!           upstream_request_filter  drop routing headers; X-Forwarded-*, Via; the
//!                                    host override (Host, same-origin Origin/Referer)
//!           response_filter          101: count the WebSocket; else drop hop-by-hop,
//!                                    rewrite a loopback Location to the client's origin
//!           (pingora streams the body both ways, or the upgraded WebSocket bytes)
//!           fail_to_proxy            proxy::failure::classify ─> error table ─> reply
//!                                    (a gRPC status for a gRPC request)
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
