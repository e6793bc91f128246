//! Which HTTP version a request is sent to its target in: HTTP/1.1 by default, what dev
//! servers speak; h2c (HTTP/2 in plaintext, prior knowledge) for gRPC, for a request
//! that asks with `X-Cmux-Upstream-Protocol: h2c`, and for the ports in `h2c_ports`.
//! pingora pools h2c connections per target and multiplexes streams over them.

use crate::error::{grpc, ProxyErrorKind};
use crate::routing::{requested_protocol, PortRange, UpstreamProtocol};
use pingora::prelude::*;

/// Streams one upstream h2c connection carries at once before pingora opens another
/// (pingora's default of 1 would open a connection per request).
pub const MAX_STREAMS_PER_CONNECTION: usize = 100;

/// The protocol for a request to `port`. The header wins (`http/1.1` turns h2c off for
/// a gRPC request or an h2c port); then gRPC, then `h2c_ports`. A WebSocket handshake
/// is HTTP/1.1 whatever is asked: an upgrade cannot travel over pingora's HTTP/2 client.
pub fn choose(
    req: &RequestHeader,
    port: u16,
    h2c_ports: &[PortRange],
    upgrade: bool,
) -> Result<UpstreamProtocol, ProxyErrorKind> {
    let asked = requested_protocol(&req.headers).map_err(ProxyErrorKind::BadUpstreamProtocol)?;
    let wanted = asked.unwrap_or_else(|| {
        let listed = || h2c_ports.iter().any(|r| r.0.contains(&port));
        if grpc::is_grpc(&req.headers) || listed() {
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

/// Makes `peer` speak `protocol`: for h2c, HTTP/2 only (over plaintext pingora then
/// trusts that the target speaks h2c: there is no ALPN to ask), multiplexed.
pub fn apply(peer: &mut HttpPeer, protocol: UpstreamProtocol) {
    if protocol == UpstreamProtocol::H2c {
        peer.options.set_http_version(2, 2);
        peer.options.max_h2_streams = MAX_STREAMS_PER_CONNECTION;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/pkg.Svc/Call", None).unwrap();
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn grpc_header_and_ports_choose_h2c() {
        use UpstreamProtocol::*;
        let ports = ["50051".parse().unwrap(), "9000-9009".parse().unwrap()];
        let grpc = req(&[("content-type", "application/grpc")]);
        assert_eq!(choose(&req(&[]), 3000, &ports, false), Ok(Http1));
        assert_eq!(choose(&grpc, 3000, &ports, false), Ok(H2c));
        assert_eq!(choose(&req(&[]), 9005, &ports, false), Ok(H2c));
        let asked = req(&[("x-cmux-upstream-protocol", "h2c")]);
        assert_eq!(choose(&asked, 3000, &[], false), Ok(H2c));
        assert_eq!(choose(&asked, 3000, &[], true), Ok(Http1));
        let h1 = req(&[
            ("content-type", "application/grpc"),
            ("x-cmux-upstream-protocol", "http/1.1"),
        ]);
        assert_eq!(choose(&h1, 50051, &ports, false), Ok(Http1));
        let bad = req(&[("x-cmux-upstream-protocol", "spdy")]);
        assert_eq!(
            choose(&bad, 3000, &[], false),
            Err(ProxyErrorKind::BadUpstreamProtocol("spdy".into()))
        );
    }
}
