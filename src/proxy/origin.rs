//! Absolute `http(s)` URLs as `Origin`, `Referer` and `Location` carry them: split into
//! scheme, authority and the rest, and compared by origin. Pure text work, shared by the
//! host override (request side) and the redirect rewrite (response side).

use crate::routing::parse_port;

/// An absolute `http://` or `https://` URL, split; `rest` is everything after the
/// authority (path, query, fragment), possibly empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsoluteUrl<'a> {
    pub scheme: &'a str,
    pub authority: &'a str,
    pub rest: &'a str,
}

impl<'a> AbsoluteUrl<'a> {
    /// Splits `url`; `None` for a relative reference (`/next`, `//host/x`), another
    /// scheme, an empty authority, or one with user info.
    pub fn parse(url: &'a str) -> Option<Self> {
        let (scheme, after) = url.split_once("://")?;
        if !is_http_scheme(scheme) {
            return None;
        }
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let authority = &after[..end];
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        Some(AbsoluteUrl {
            scheme,
            authority,
            rest: &after[end..],
        })
    }

    /// The same URL with another scheme and authority.
    pub fn with_origin(&self, scheme: &str, authority: &str) -> String {
        let mut out = String::with_capacity(scheme.len() + 3 + authority.len() + self.rest.len());
        out.push_str(scheme);
        out.push_str("://");
        out.push_str(authority);
        out.push_str(self.rest);
        out
    }
}

fn is_http_scheme(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

/// The host (an IPv6 address keeps its brackets) and port of an authority; the port is
/// the scheme's default when none is written. `None` when the port is not 1-65535.
pub fn host_and_port<'a>(authority: &'a str, scheme: &str) -> Option<(&'a str, u16)> {
    let (host, port) = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => {
            (&authority[..colon], Some(&authority[colon + 1..]))
        }
        _ => (authority, None),
    };
    let port = match port {
        Some(digits) => parse_port(digits)?,
        None if scheme.eq_ignore_ascii_case("https") => 443,
        None => 80,
    };
    (!host.is_empty()).then_some((host, port))
}

/// Whether two authorities name the same host (ASCII case ignored) and port under
/// `scheme`: an explicit default port equals none.
pub fn same_authority(a: &str, b: &str, scheme: &str) -> bool {
    match (host_and_port(a, scheme), host_and_port(b, scheme)) {
        (Some((ha, pa)), Some((hb, pb))) => pa == pb && ha.eq_ignore_ascii_case(hb),
        _ => false,
    }
}

/// The first entry of a list header value (`X-Forwarded-Host: a, b`), trimmed.
pub fn first_entry(value: &str) -> &str {
    value.split(',').next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_absolute_urls_only() {
        let u = AbsoluteUrl::parse("http://localhost:5173/next?a=1#f").unwrap();
        assert_eq!(
            (u.scheme, u.authority, u.rest),
            ("http", "localhost:5173", "/next?a=1#f")
        );
        let u = AbsoluteUrl::parse("HTTPS://[::1]:3000").unwrap();
        assert_eq!((u.authority, u.rest), ("[::1]:3000", ""));
        let u = AbsoluteUrl::parse("http://h?q").unwrap();
        assert_eq!((u.authority, u.rest), ("h", "?q"));
        for not in [
            "/next",
            "//localhost:5173/x",
            "next",
            "ftp://localhost/x",
            "http:///x",
            "http://user@localhost/",
            "null",
            "",
        ] {
            assert_eq!(AbsoluteUrl::parse(not), None, "{not:?}");
        }
        let u = AbsoluteUrl::parse("http://localhost:5173/a?b").unwrap();
        assert_eq!(u.with_origin("https", "x.test"), "https://x.test/a?b");
    }

    #[test]
    fn hosts_ports_and_same_authority() {
        assert_eq!(host_and_port("a:81", "http"), Some(("a", 81)));
        assert_eq!(host_and_port("a", "http"), Some(("a", 80)));
        assert_eq!(host_and_port("a", "HTTPS"), Some(("a", 443)));
        assert_eq!(host_and_port("[::1]", "http"), Some(("[::1]", 80)));
        assert_eq!(host_and_port("[::1]:9", "http"), Some(("[::1]", 9)));
        assert_eq!(host_and_port("a:0", "http"), None);
        assert_eq!(host_and_port("a:x", "http"), None);
        assert_eq!(host_and_port(":80", "http"), None);
        assert!(same_authority("Preview.Test:80", "preview.test", "http"));
        assert!(same_authority("x:443", "x", "https"));
        assert!(!same_authority("x:443", "x", "http"));
        assert!(!same_authority("x:1", "y:1", "http"));
        assert_eq!(first_entry(" a.test:1 , b"), "a.test:1");
        assert_eq!(first_entry(""), "");
    }
}
