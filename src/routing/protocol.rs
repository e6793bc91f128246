//! `X-Cmux-Upstream-Protocol`: which HTTP version the target is spoken to in, when the
//! request says so. Read here like the other steering headers; the proxy decides the
//! rest (gRPC and `h2c_ports` also select h2c) and never forwards the header.

use http::{HeaderMap, HeaderName};

/// Asks for the protocol spoken to the target: `h2c` or `http/1.1`.
pub static UPSTREAM_PROTOCOL: HeaderName = HeaderName::from_static("x-cmux-upstream-protocol");
pub const UPSTREAM_PROTOCOL_DISPLAY: &str = "X-Cmux-Upstream-Protocol";

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
    for value in headers.get_all(&UPSTREAM_PROTOCOL) {
        let text = std::str::from_utf8(value.as_bytes()).unwrap_or("\u{FFFD}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(&UPSTREAM_PROTOCOL, HeaderValue::from_str(v).unwrap());
        }
        h
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
}
