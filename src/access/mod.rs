//! Who may come in? Client address lists, tokens (with where a request carries them),
//! and connection limits. Routing decides where a request may go (`routing::policy`);
//! this decides whether it is let in at all.

mod carriers;
mod cidr;
mod cookie;
mod limits;
mod tokens;

pub use carriers::{cookies_without_token, split_query_token, without_query_token};
pub use cidr::{parse_list, Cidr};
pub use cookie::{issue as issue_cookie, COOKIE_MAX_AGE};
pub use limits::{ClientSlot, ConnectionLimits, StreamSlot};
pub use tokens::{TokenError, Tokens};

use crate::names::TOKEN;
use http::HeaderMap;
use std::net::IpAddr;

/// The access policy, fixed at start-up (the token file aside).
pub struct Access {
    pub tokens: Tokens,
    /// Clients let in without a token.
    pub trusted_clients: Vec<Cidr>,
    /// Clients allowed to connect at all; empty: any.
    pub allow_clients: Vec<Cidr>,
    pub limits: ConnectionLimits,
}

impl Access {
    /// Whether a connection from `client` may be served at all.
    pub fn client_allowed(&self, client: Option<IpAddr>) -> bool {
        self.allow_clients.is_empty()
            || client.is_some_and(|ip| cidr::any_contains(&self.allow_clients, ip))
    }

    /// Whether a request from `client` must carry a token.
    pub fn token_required(&self, client: Option<IpAddr>) -> bool {
        self.tokens.required() && !self.is_trusted(client)
    }

    /// Whether `client` is in `trusted_clients`: let in without a token, and its
    /// `X-Forwarded-Proto` and `-Host` are passed on as sent.
    pub fn is_trusted(&self, client: Option<IpAddr>) -> bool {
        !self.trusted_clients.is_empty()
            && client.is_some_and(|ip| cidr::any_contains(&self.trusted_clients, ip))
    }

    /// Whether the request carries a valid token in the token header itself, as an
    /// edge's hop to its node does. A cookie does not count: a browser sends it on its
    /// own, whichever page asks, while a page cannot know the token to write the header.
    pub fn header_token_ok(&self, headers: &HeaderMap) -> bool {
        self.tokens.required()
            && headers
                .get(&TOKEN.wire)
                .is_some_and(|t| self.tokens.accepts(t.as_bytes()))
    }

    /// Whether an HTTP or WebSocket request carries a valid token: the header, or a
    /// cookie issued for the request's own Host (never the bare token as a cookie).
    pub fn request_token_ok(&self, headers: &HeaderMap) -> bool {
        let header = headers.get(&TOKEN.wire).map(|v| v.as_bytes());
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        header.is_some_and(|t| self.tokens.accepts(t))
            || carriers::cookie_token(headers).is_some_and(|c| self.tokens.accepts_cookie(c, host))
    }

    /// Whether a CONNECT request carries a valid token (`Proxy-Authorization`, or the
    /// token header).
    pub fn connect_token_ok(&self, headers: &HeaderMap) -> bool {
        carriers::proxy_authorization_token(headers).is_some_and(|t| self.tokens.accepts(&t))
            || self.request_token_ok(headers)
    }
}
