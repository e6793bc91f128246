//! Loopback redirects. A dev server knows itself as `localhost:5173`, and a redirect it
//! sends (`Location: http://localhost:5173/login`) would take the browser away from the
//! proxy, to a port that is not even the workspace's on the browser's machine. A
//! `Location` or `Content-Location` whose origin names the target by a loopback name is
//! rewritten so that the browser stays on the proxy:
//!
//! - the target's own port: to the origin the client used (from a trusted front, the
//!   scheme of `X-Forwarded-Proto` and the host of `X-Forwarded-Host`; else `http` and
//!   `Host`);
//! - another port, when the client came in through `<workspace>-<port>.localhost`: to
//!   that form for the other port;
//! - anything else (another host, a relative reference) is left alone.

use super::origin::{first_entry, host_and_port, AbsoluteUrl};
use crate::routing::{split_localhost_host, Target};
use http::header::{CONTENT_LOCATION, LOCATION};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Rewrites the response's loopback `Location` and `Content-Location`. A response with
/// neither (nearly every one) costs two header lookups.
pub fn rewrite(
    response: &mut ResponseHeader,
    req: &RequestHeader,
    target: &Target,
    trusted_front: bool,
) -> Result<()> {
    if !response.headers.contains_key(LOCATION) && !response.headers.contains_key(CONTENT_LOCATION)
    {
        return Ok(());
    }
    let Some(client) = ClientView::of(req, target, trusted_front) else {
        return Ok(());
    };
    for (name, case) in [
        (LOCATION, "Location"),
        (CONTENT_LOCATION, "Content-Location"),
    ] {
        let value = response.headers.get(&name).and_then(|v| v.to_str().ok());
        if let Some(moved) = value.and_then(|v| client.rewritten(v, target)) {
            response.insert_header(case, moved)?;
        }
    }
    Ok(())
}

/// What the client's browser sees of the proxy.
#[derive(Debug)]
struct ClientView<'a> {
    scheme: &'a str,
    authority: &'a str,
    /// The client came in as `<workspace>-<port>.localhost[:suffix]`, for the target's
    /// workspace: the workspace part and the `:port` suffix (or "").
    localhost_form: Option<(&'a str, &'a str)>,
}

impl<'a> ClientView<'a> {
    fn of(req: &'a RequestHeader, target: &Target, trusted_front: bool) -> Option<Self> {
        let get = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let forwarded = |name: &str| get(name).filter(|_| trusted_front);
        let scheme = match forwarded("x-forwarded-proto").map(first_entry) {
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        let authority = forwarded("x-forwarded-host")
            .map(first_entry)
            .or_else(|| get("host"))
            .map(str::trim)
            .filter(|a| !a.is_empty())?;
        Some(ClientView {
            scheme,
            authority,
            localhost_form: localhost_form(authority, target),
        })
    }

    /// The rewritten URL, when `location` names the target by a loopback name.
    fn rewritten(&self, location: &str, target: &Target) -> Option<String> {
        let url = AbsoluteUrl::parse(location.trim())?;
        let (host, port) = host_and_port(url.authority, url.scheme)?;
        if !names_target(host, target.addr.ip()) {
            return None;
        }
        if port == target.addr.port() {
            return Some(url.with_origin(self.scheme, self.authority));
        }
        let (workspace, suffix) = self.localhost_form?;
        let other = format!("{workspace}-{port}.localhost{suffix}");
        Some(url.with_origin(self.scheme, &other))
    }
}

/// The workspace part and `:port` suffix of a `<workspace>-<port>.localhost[:port]`
/// authority, when it names the target's workspace.
fn localhost_form<'a>(authority: &'a str, target: &Target) -> Option<(&'a str, &'a str)> {
    let (workspace, _) = split_localhost_host(authority)?;
    if target.workspace.as_deref() != Some(workspace) {
        return None;
    }
    let suffix = match authority.rsplit_once(':') {
        Some((_, port)) => &authority[authority.len() - port.len() - 1..],
        None => "",
    };
    Some((workspace, suffix))
}

/// Whether `host` (as written in a URL) is a loopback name of the target: `localhost`,
/// `127.0.0.1`, `[::1]`, `0.0.0.0`, `[::]` or the target's own address.
fn names_target(host: &str, target: IpAddr) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = match name.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']').unwrap_or(v6),
        None => name,
    };
    match bare.parse::<IpAddr>() {
        Ok(ip) => {
            ip == target
                || ip == IpAddr::V4(Ipv4Addr::LOCALHOST)
                || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
                || ip.is_unspecified()
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(addr: &str, workspace: Option<&str>) -> Target {
        Target {
            addr: addr.parse().unwrap(),
            workspace: workspace.map(str::to_string),
        }
    }

    fn request(pairs: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (name, value) in pairs {
            req.append_header(name.to_string(), *value).unwrap();
        }
        req
    }

    fn rewrite_one(req: &[(&str, &str)], t: &Target, location: &str) -> Option<String> {
        ClientView::of(&request(req), t, true)?.rewritten(location, t)
    }

    #[test]
    fn same_port_goes_to_the_client_origin() {
        let t = target("127.18.0.7:5173", Some("workspace-7"));
        let host = [("Host", "workspace-7-5173.localhost:8080")];
        for loopback in [
            "http://localhost:5173/next",
            "http://LOCALHOST.:5173/next",
            "http://127.0.0.1:5173/next",
            "https://[::1]:5173/next",
            "http://0.0.0.0:5173/next",
            "http://127.18.0.7:5173/next",
        ] {
            assert_eq!(
                rewrite_one(&host, &t, loopback).as_deref(),
                Some("http://workspace-7-5173.localhost:8080/next"),
                "{loopback}"
            );
        }
        let front = [
            ("Host", "127.0.0.1:8080"),
            ("X-Forwarded-Host", "app-7.preview.test, inner"),
            ("X-Forwarded-Proto", "https"),
        ];
        assert_eq!(
            rewrite_one(&front, &t, "http://localhost:5173/a?b#c").as_deref(),
            Some("https://app-7.preview.test/a?b#c")
        );
    }

    #[test]
    fn other_port_uses_the_localhost_form_only() {
        let t = target("127.18.0.7:5173", Some("workspace-7"));
        let host = [("Host", "workspace-7-5173.localhost:8080")];
        assert_eq!(
            rewrite_one(&host, &t, "http://localhost:3000/api").as_deref(),
            Some("http://workspace-7-3000.localhost:8080/api")
        );
        assert_eq!(
            rewrite_one(&host, &t, "http://localhost/").as_deref(),
            Some("http://workspace-7-80.localhost:8080/")
        );
        let bare = [("Host", "workspace-7-5173.localhost")];
        assert_eq!(
            rewrite_one(&bare, &t, "http://localhost:3000").as_deref(),
            Some("http://workspace-7-3000.localhost")
        );
        let public = [("Host", "app-7.preview.test")];
        assert_eq!(rewrite_one(&public, &t, "http://localhost:3000/"), None);
        // The Host form names another workspace than the one routed to (by header).
        let t3 = target("127.18.0.3:5173", Some("workspace-3"));
        assert_eq!(rewrite_one(&host, &t3, "http://localhost:3000/"), None);
    }

    #[test]
    fn leaves_everything_else_alone() {
        let t = target("127.18.0.7:5173", Some("workspace-7"));
        let host = [("Host", "workspace-7-5173.localhost:8080")];
        for untouched in [
            "/next",
            "next",
            "//localhost:5173/next",
            "http://example.com:5173/",
            "http://127.18.0.8:5173/",
            "http://127.0.0.2:5173/",
            "ftp://localhost:5173/",
            "http://user@localhost:5173/",
        ] {
            assert_eq!(rewrite_one(&host, &t, untouched), None, "{untouched}");
        }
        assert_eq!(rewrite_one(&[], &t, "http://localhost:5173/"), None);
    }

    #[test]
    fn response_headers_are_rewritten_in_place() {
        let t = target("127.0.0.1:3000", None);
        let req = request(&[("Host", "preview.test:9000")]);
        let mut resp = ResponseHeader::build(302, None).unwrap();
        resp.insert_header("Location", "http://localhost:3000/login")
            .unwrap();
        resp.insert_header("Content-Location", "/here").unwrap();
        rewrite(&mut resp, &req, &t, false).unwrap();
        let get = |n: &str| resp.headers.get(n).unwrap().to_str().unwrap().to_string();
        assert_eq!(get("location"), "http://preview.test:9000/login");
        assert_eq!(get("content-location"), "/here");
    }
}
