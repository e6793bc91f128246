//! The host override on the way to the target: `Host` replaced, and a same-origin
//! `Origin` and `Referer` moved to the new host with it, so that a dev server's
//! cross-origin guard (Next.js's `/_next/hmr`, Vite's host check) sees one consistent
//! request. `X-Forwarded-Host` keeps what the client sent; an `Origin` of another site
//! is left alone, for the dev server to judge.

use super::origin::{first_entry, same_authority, AbsoluteUrl};
use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::prelude::*;

/// Replaces `Host` with `host` and moves a same-origin `Origin` and `Referer` to it.
/// Runs after the forwarding headers are set (and the override header removed with
/// every `X-Cmux-*` one): the client's origin is then `X-Forwarded-Proto` and
/// `X-Forwarded-Host`, which are `http` and the client's `Host`, an allowed one (the
/// routing plan refuses others), unless a trusted front sent its own.
pub fn apply(upstream: &mut RequestHeader, host: &HeaderValue) -> Result<()> {
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
        apply(&mut req, &HeaderValue::from_static("localhost:3000")).unwrap();
        let get = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_string();
        assert_eq!(get("host"), "localhost:3000");
        assert_eq!(get("origin"), "http://localhost:3000");
        assert_eq!(get("referer"), "http://other.test/x");
        assert_eq!(get("x-forwarded-host"), "preview.test:8080");
    }
}
