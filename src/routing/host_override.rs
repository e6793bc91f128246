//! The host override: which `Host` a target is sent. Dev servers such as Vite and
//! webpack-dev-server answer only `localhost`, `*.localhost` and IP addresses, so a
//! preview reached through another name asks for `X-Cmux-Host-Override: localhost:5173`,
//! or the proxy is set to send `localhost:<target port>` for every request. The choice
//! is pure and part of the routing plan; the head is rewritten in `proxy::host_override`.

use super::error::RouteError;
use super::parse::{header_text, parse_port, single_value, trim_blank};
use crate::names::HOST_OVERRIDE;
use http::{HeaderMap, HeaderValue};

/// The `Host` a target gets when a request carries no override header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostOverrideDefault {
    /// The client's `Host`, unchanged (the default).
    #[default]
    Keep,
    /// `localhost:<target port>`.
    TargetLocalhost,
}

impl HostOverrideDefault {
    /// The setting's spellings: `keep` or `localhost`.
    pub fn parse(raw: &str) -> Option<Self> {
        match trim_blank(raw) {
            "keep" => Some(HostOverrideDefault::Keep),
            "localhost" => Some(HostOverrideDefault::TargetLocalhost),
            _ => None,
        }
    }
}

/// The `Host` to send instead of the client's, if any: the header's value, else what
/// the proxy's default says. A bad header value is the request's error (400). Without
/// the header and with the default `keep`, this is one header lookup, no allocation.
pub fn wanted(
    headers: &HeaderMap,
    default: HostOverrideDefault,
    target_port: u16,
) -> Result<Option<HeaderValue>, RouteError> {
    let mut sent = headers.get_all(&HOST_OVERRIDE.wire).iter().peekable();
    if sent.peek().is_some() {
        let values: Vec<&str> = sent.map(header_text).collect();
        return match parse_host_override(&values) {
            Some(host) => Ok(HeaderValue::from_str(host).ok()),
            None => Err(RouteError::BadHostOverride(values.join(", "))),
        };
    }
    Ok(match default {
        HostOverrideDefault::Keep => None,
        HostOverrideDefault::TargetLocalhost => {
            HeaderValue::from_str(&format!("localhost:{target_port}")).ok()
        }
    })
}

/// The longest host name DNS allows.
const MAX_HOST_LEN: usize = 253;

/// Checks the values of the override header (all copies must agree after trimming) and
/// returns the one to send: `HOST[:PORT]`, where HOST is a DNS name (ASCII letters,
/// digits, `-`, `_`, `.`), an IPv4 address or a bracketed IPv6 address, and PORT is
/// 1-65535 in decimal. `None` when a value is refused.
pub fn parse_host_override<'a>(values: &[&'a str]) -> Option<&'a str> {
    let value = single_value(values.iter().copied()).ok()??;
    let (host, port) = split_host_port(value)?;
    if port.is_some_and(|p| parse_port(p).is_none()) {
        return None;
    }
    valid_host(host).then_some(value)
}

/// `host[:port]` or `[v6][:port]`, split; `None` when the shape is wrong.
fn split_host_port(value: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = value.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let host = &value[..v6.len() + 2];
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match value.split_once(':') {
        Some((host, port)) => Some((host, Some(port))),
        None => Some((value, None)),
    }
}

/// A bracketed IPv6 address (already checked), or a DNS name / IPv4 address.
fn valid_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && host.len() <= MAX_HOST_LEN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::parse::header_map as headers;

    #[test]
    fn header_wins_over_default() {
        let keep = HostOverrideDefault::Keep;
        let local = HostOverrideDefault::TargetLocalhost;
        assert_eq!(wanted(&headers(&[]), keep, 5173), Ok(None));
        let got = wanted(&headers(&[]), local, 5173).unwrap().unwrap();
        assert_eq!(got, "localhost:5173");
        let h = headers(&[("x-cmux-host-override", " 127.0.0.1:3000 ")]);
        assert_eq!(wanted(&h, local, 5173).unwrap().unwrap(), "127.0.0.1:3000");
        let bad = headers(&[
            ("x-cmux-host-override", "a:1"),
            ("x-cmux-host-override", "b"),
        ]);
        assert_eq!(
            wanted(&bad, keep, 1),
            Err(RouteError::BadHostOverride("a:1, b".into()))
        );
    }

    fn one(v: &str) -> Option<&str> {
        parse_host_override(&[v])
    }

    #[test]
    fn accepts_names_addresses_and_ports() {
        for (raw, want) in [
            ("localhost", "localhost"),
            ("localhost:5173", "localhost:5173"),
            (" localhost:5173\t", "localhost:5173"),
            ("app-7.preview.example.com", "app-7.preview.example.com"),
            ("my_app.localhost:3000", "my_app.localhost:3000"),
            ("example.com.", "example.com."),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("[::1]", "[::1]"),
            ("[::1]:5173", "[::1]:5173"),
            ("LOCALHOST:065535", "LOCALHOST:065535"),
        ] {
            assert_eq!(one(raw), Some(want), "{raw:?}");
        }
        assert_eq!(
            parse_host_override(&["localhost:1", " localhost:1"]),
            Some("localhost:1")
        );
    }

    #[test]
    fn refuses_everything_else() {
        let long = format!("{}.com", "a".repeat(64));
        for bad in [
            "",
            " ",
            ":5173",
            "localhost:",
            "localhost:0",
            "localhost:65536",
            "localhost:51a",
            "localhost:5173:1",
            "http://localhost",
            "localhost/x",
            "user@localhost",
            "local host",
            "a..b",
            ".",
            "[::1",
            "[::1]5173",
            "[nope]:1",
            "::1",
            "héllo",
            long.as_str(),
        ] {
            assert_eq!(one(bad), None, "{bad:?}");
        }
        assert_eq!(parse_host_override(&["a:1", "b:1"]), None);
        assert_eq!(parse_host_override(&[]), None);
    }

    #[test]
    fn default_spellings() {
        assert_eq!(
            HostOverrideDefault::parse("keep"),
            Some(HostOverrideDefault::Keep)
        );
        assert_eq!(
            HostOverrideDefault::parse(" localhost "),
            Some(HostOverrideDefault::TargetLocalhost)
        );
        assert_eq!(HostOverrideDefault::parse("Localhost:3000"), None);
    }
}
