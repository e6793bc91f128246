//! Which HTTP version a request is sent to its target in: HTTP/1.1 by default, what dev
//! servers speak; h2c (HTTP/2 in plaintext, prior knowledge) for gRPC, for a request
//! that asks with `X-Cmux-Upstream-Protocol: h2c`, and for the ports in `h2c_ports`.

use super::error::RouteError;
use super::parse::header_text;
use super::policy::PortRange;
use crate::names::UPSTREAM_PROTOCOL;
use http::HeaderMap;

/// How the proxy talks to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1, what dev servers speak (the default).
    Http1,
    /// HTTP/2 in plaintext with prior knowledge, as gRPC servers speak it.
    H2c,
}

impl UpstreamProtocol {
    fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("h2c") {
            Some(UpstreamProtocol::H2c)
        } else if value.eq_ignore_ascii_case("http/1.1") {
            Some(UpstreamProtocol::Http1)
        } else {
            None
        }
    }
}

/// The protocol the request asks for, if it carries the header. `Err` holds the values
/// as sent when they are not one known protocol (several equal copies are one).
pub fn requested_protocol(headers: &HeaderMap) -> Result<Option<UpstreamProtocol>, String> {
    let mut wanted = None;
    let mut sent = Vec::new();
    let mut valid = true;
    for value in headers.get_all(&UPSTREAM_PROTOCOL.wire) {
        let text = header_text(value);
        sent.push(text);
        match (UpstreamProtocol::parse(text), wanted) {
            (Some(p), None) => wanted = Some(p),
            (Some(p), Some(w)) if p == w => {}
            _ => valid = false,
        }
    }
    if valid {
        Ok(wanted)
    } else {
        Err(sent.join(", "))
    }
}

/// The protocol for a request to `port`. The header wins (`http/1.1` turns h2c off for
/// a gRPC request or an h2c port); then gRPC, then `h2c_ports`. A WebSocket handshake
/// (`upgrade`) is HTTP/1.1 whatever is asked: an upgrade cannot travel over pingora's
/// HTTP/2 client.
pub fn choose(
    headers: &HeaderMap,
    port: u16,
    h2c_ports: &[PortRange],
    upgrade: bool,
) -> Result<UpstreamProtocol, RouteError> {
    let asked = requested_protocol(headers).map_err(RouteError::BadUpstreamProtocol)?;
    let wanted = asked.unwrap_or_else(|| {
        let listed = || h2c_ports.iter().any(|r| r.0.contains(&port));
        if is_grpc(headers) || listed() {
            UpstreamProtocol::H2c
        } else {
            UpstreamProtocol::Http1
        }
    });
    Ok(if upgrade {
        UpstreamProtocol::Http1
    } else {
        wanted
    })
}

/// How an edge speaks to a node: h2c for gRPC and for a request that asks its target to
/// be spoken to in h2c (nodes serve h2c on their listener, and a gRPC call needs HTTP/2
/// end to end for its trailers); HTTP/1.1 otherwise, upgrades included. What the node
/// then speaks to the target is the node's choice, from the same headers.
pub fn to_node(headers: &HeaderMap, upgrade: bool) -> UpstreamProtocol {
    let asked_h2c = matches!(requested_protocol(headers), Ok(Some(UpstreamProtocol::H2c)));
    if !upgrade && (is_grpc(headers) || asked_h2c) {
        UpstreamProtocol::H2c
    } else {
        UpstreamProtocol::Http1
    }
}

/// Whether a request is gRPC: `content-type` is `application/grpc`, alone or with a
/// `+format` or parameters. gRPC-Web (`application/grpc-web*`) is not: it is made for
/// HTTP/1.1 and browsers, and is proxied like any other HTTP request.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return false;
    };
    let value = value.as_bytes();
    const GRPC: &[u8] = b"application/grpc";
    value.len() >= GRPC.len()
        && value[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(value.get(GRPC.len()), None | Some(b'+' | b';' | b' '))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::parse::header_map;

    fn with(values: &[&str]) -> HeaderMap {
        let pairs: Vec<_> = values
            .iter()
            .map(|v| ("x-cmux-upstream-protocol", *v))
            .collect();
        header_map(&pairs)
    }

    #[test]
    fn values() {
        assert_eq!(requested_protocol(&with(&[])), Ok(None));
        let h2c = Ok(Some(UpstreamProtocol::H2c));
        assert_eq!(requested_protocol(&with(&["h2c"])), h2c);
        assert_eq!(requested_protocol(&with(&[" H2C ", "h2c"])), h2c);
        assert_eq!(
            requested_protocol(&with(&["HTTP/1.1"])),
            Ok(Some(UpstreamProtocol::Http1))
        );
        assert_eq!(requested_protocol(&with(&["h2"])), Err("h2".to_string()));
        assert_eq!(
            requested_protocol(&with(&["h2c", "http/1.1"])),
            Err("h2c, http/1.1".to_string())
        );
    }

    #[test]
    fn grpc_header_and_ports_choose_h2c() {
        use UpstreamProtocol::*;
        let ports = ["50051".parse().unwrap(), "9000-9009".parse().unwrap()];
        let none = header_map(&[]);
        let grpc = header_map(&[("content-type", "application/grpc")]);
        assert_eq!(choose(&none, 3000, &ports, false), Ok(Http1));
        assert_eq!(choose(&grpc, 3000, &ports, false), Ok(H2c));
        assert_eq!(choose(&none, 9005, &ports, false), Ok(H2c));
        let asked = header_map(&[("x-cmux-upstream-protocol", "h2c")]);
        assert_eq!(choose(&asked, 3000, &[], false), Ok(H2c));
        assert_eq!(choose(&asked, 3000, &[], true), Ok(Http1));
        let h1 = header_map(&[
            ("content-type", "application/grpc"),
            ("x-cmux-upstream-protocol", "http/1.1"),
        ]);
        assert_eq!(choose(&h1, 50051, &ports, false), Ok(Http1));
        let bad = header_map(&[("x-cmux-upstream-protocol", "spdy")]);
        assert_eq!(
            choose(&bad, 3000, &[], false),
            Err(RouteError::BadUpstreamProtocol("spdy".into()))
        );
    }

    #[test]
    fn grpc_content_types() {
        let with_type = |t| header_map(&[("content-type", t)]);
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC+json",
            "application/grpc; charset=utf-8",
        ] {
            assert!(is_grpc(&with_type(yes)), "{yes}");
        }
        for no in [
            "application/grpc-web",
            "application/grpc-web-text+proto",
            "application/grpcx",
            "application/json",
            "text/grpc",
        ] {
            assert!(!is_grpc(&with_type(no)), "{no}");
        }
        assert!(!is_grpc(&HeaderMap::new()));
    }
}
