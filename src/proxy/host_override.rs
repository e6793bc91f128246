//! The host override on the way to the target: `Host` replaced, and a same-origin
//! `Origin` and `Referer` moved to the new host with it, so that a dev server's
//! cross-origin guard (Next.js's `/_next/hmr`, Vite's host check) sees one consistent
//! request. `X-Forwarded-Host` keeps what the client sent; an `Origin` of another site
//! is left alone, for the dev server to judge.

use super::origin::{first_entry, same_authority, AbsoluteUrl};
use crate::error::ProxyErrorKind;
use crate::routing::headers::HOST_OVERRIDE;
use crate::routing::{parse_host_override, HostOverrideDefault};
use http::{HeaderMap, HeaderValue};
use pingora::http::RequestHeader;
use pingora::prelude::*;

/// The `Host` to send instead of the client's, if any: the header's value, else what
/// the proxy's default says. A bad header value is the request's error (400). Without
/// the header and with the default `keep`, this is one header lookup, no allocation.
pub fn wanted(
    headers: &HeaderMap,
    default: HostOverrideDefault,
    target_port: u16,
) -> Result<Option<HeaderValue>, ProxyErrorKind> {
    let mut sent = headers.get_all(&HOST_OVERRIDE).iter().peekable();
    if sent.peek().is_some() {
        let values: Vec<&str> = sent
            .map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or("\u{FFFD}"))
            .collect();
        return match parse_host_override(&values) {
            Some(host) => Ok(HeaderValue::from_str(host).ok()),
            None => Err(ProxyErrorKind::BadHostOverride(values.join(", "))),
        };
    }
    Ok(match default {
        HostOverrideDefault::Keep => None,
        HostOverrideDefault::TargetLocalhost => {
            HeaderValue::from_str(&format!("localhost:{target_port}")).ok()
        }
    })
}

/// Replaces `Host` with `host`, moves a same-origin `Origin` and `Referer` to it, and
/// drops the override header. Runs after the forwarding headers are set: the client's
/// origin is then `X-Forwarded-Proto` and `X-Forwarded-Host` (which default to `http`
/// and the client's `Host`).
pub fn apply(upstream: &mut RequestHeader, host: &HeaderValue) -> Result<()> {
    upstream.remove_header(&HOST_OVERRIDE);
    let new_host = host.to_str().unwrap_or_default();
    let (origin, referer) = {
        let get = |name| {
            let value = upstream.headers.get(name)?.to_str().ok()?;
            Some(first_entry(value))
        };
        let client = ClientOrigin {
            scheme: get("x-forwarded-proto").unwrap_or("http"),
            authority: get("x-forwarded-host").unwrap_or_default(),
        };
        let moved = |name| {
            let value = upstream.headers.get(name)?.to_str().ok()?;
            client.moved(value, new_host)
        };
        (moved(http::header::ORIGIN), moved(http::header::REFERER))
    };
    if let Some(origin) = origin {
        upstream.insert_header("Origin", origin)?;
    }
    if let Some(referer) = referer {
        upstream.insert_header("Referer", referer)?;
    }
    upstream.insert_header("Host", host.clone())
}

/// The origin the client's browser used for the page.
struct ClientOrigin<'a> {
    scheme: &'a str,
    authority: &'a str,
}

impl ClientOrigin<'_> {
    /// `url` with its origin moved to `new_host`, when that origin is the client's.
    fn moved(&self, url: &str, new_host: &str) -> Option<String> {
        let parsed = AbsoluteUrl::parse(url)?;
        let same = parsed.scheme.eq_ignore_ascii_case(self.scheme)
            && same_authority(parsed.authority, self.authority, self.scheme);
        same.then(|| parsed.with_origin(parsed.scheme, new_host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

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
            Err(ProxyErrorKind::BadHostOverride("a:1, b".into()))
        );
    }

    #[test]
    fn moves_same_origin_urls_only() {
        let client = ClientOrigin {
            scheme: "http",
            authority: "Preview.Test:8080",
        };
        let to = "localhost:3000";
        assert_eq!(
            client.moved("http://preview.test:8080", to).as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(
            client
                .moved("http://preview.test:8080/a/b?c", to)
                .as_deref(),
            Some("http://localhost:3000/a/b?c")
        );
        for other in [
            "http://evil.test:8080",
            "https://preview.test:8080",
            "http://preview.test:8081",
            "http://preview.test",
            "null",
            "/relative",
        ] {
            assert_eq!(client.moved(other, to), None, "{other}");
        }
    }

    #[test]
    fn rewrites_host_origin_and_referer() {
        let mut req = RequestHeader::build("GET", b"/_next/hmr", None).unwrap();
        req.insert_header("Host", "preview.test:8080").unwrap();
        req.insert_header("X-Forwarded-Host", "preview.test:8080")
            .unwrap();
        req.insert_header("X-Forwarded-Proto", "http").unwrap();
        req.insert_header("Origin", "http://preview.test:8080")
            .unwrap();
        req.insert_header("Referer", "http://other.test/x").unwrap();
        req.insert_header("X-Cmux-Host-Override", "localhost:3000")
            .unwrap();
        apply(&mut req, &HeaderValue::from_static("localhost:3000")).unwrap();
        let get = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_string();
        assert_eq!(get("host"), "localhost:3000");
        assert_eq!(get("origin"), "http://localhost:3000");
        assert_eq!(get("referer"), "http://other.test/x");
        assert_eq!(get("x-forwarded-host"), "preview.test:8080");
        assert!(!req.headers.contains_key("x-cmux-host-override"));
    }
}
