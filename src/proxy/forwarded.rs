//! What the target sees of a request: every `X-Cmux-*` header removed (an edge keeps
//! those its node acts on), and the forwarding headers (`X-Forwarded-For`, `-Proto`,
//! `-Host`, and `Via`, which also guards against loops) added. `X-Forwarded-Proto` and
//! `-Host` name what the proxy itself saw unless the client is a trusted front, whose
//! own values pass: anyone else could name any origin to the target.

use crate::access::cookies_without_token;
use crate::names::{is_protocol_header, TOKEN_COOKIE, TO_NODE};
use crate::routing::header_text;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::prelude::*;
use std::fmt::Write as _;
use std::net::IpAddr;

/// Who sent the request and where it goes next, as far as its forwarding headers care.
pub struct Sender {
    pub client: Option<IpAddr>,
    /// The client is in `trusted_clients`: its `X-Forwarded-Proto` and `-Host` pass.
    pub trusted: bool,
    /// The request goes to an edge's node, which reads the headers of [`TO_NODE`].
    pub to_node: bool,
    /// Tokens are in force, so a `cmux_token` cookie is the proxy's, never the target's.
    pub strip_token_cookie: bool,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The headers this proxy adds, as the names pingora writes upstream. Given a
/// `HeaderName`, pingora's insert copies its lower-case text into a new buffer for the
/// name it writes; a static name is used as it is, and goes out in the usual case
/// (callgrind: 91.8k -> 91.1k instructions per proxied request).
static X_FORWARDED_FOR_CASE: Bytes = Bytes::from_static(b"X-Forwarded-For");
static X_FORWARDED_PROTO_CASE: Bytes = Bytes::from_static(b"X-Forwarded-Proto");
static X_FORWARDED_HOST_CASE: Bytes = Bytes::from_static(b"X-Forwarded-Host");
static VIA_CASE: Bytes = Bytes::from_static(b"Via");

/// This instance's `Via` entry, as text and as a ready header value (most requests
/// carry no `Via`, and get the value as it is).
pub struct ViaEntry {
    pub text: String,
    value: HeaderValue,
}

impl ViaEntry {
    pub fn new(text: &str) -> Self {
        ViaEntry {
            text: text.to_string(),
            value: HeaderValue::from_str(text).expect("the Via entry is ASCII"),
        }
    }
}

/// Rewrites the request head sent upstream.
pub fn rewrite(upstream: &mut RequestHeader, sender: &Sender, via: &ViaEntry) -> Result<()> {
    remove_protocol_headers(upstream, sender.to_node);
    remove_token_cookie(upstream, sender.strip_token_cookie)?;
    if let Some(ip) = sender.client {
        let forwarded = append_list_entry(upstream, &X_FORWARDED_FOR, |out| push_ip(out, ip));
        upstream.insert_header(X_FORWARDED_FOR_CASE.clone(), forwarded)?;
    }
    let keep = |h: &RequestHeader, name| sender.trusted && h.headers.contains_key(name);
    if !keep(upstream, &X_FORWARDED_PROTO) {
        let http = HeaderValue::from_static("http");
        upstream.insert_header(X_FORWARDED_PROTO_CASE.clone(), http)?;
    }
    if !keep(upstream, &X_FORWARDED_HOST) {
        match upstream.headers.get(http::header::HOST).cloned() {
            Some(host) => upstream.insert_header(X_FORWARDED_HOST_CASE.clone(), host)?,
            None => {
                upstream.remove_header(&X_FORWARDED_HOST);
            }
        }
    }
    // Mark the request as ours, so that it is refused if it ever comes back.
    if upstream.headers.contains_key(http::header::VIA) {
        let joined = append_list_entry(upstream, &http::header::VIA, |out| out.push_str(&via.text));
        upstream.insert_header(VIA_CASE.clone(), joined)?;
    } else {
        upstream.insert_header(VIA_CASE.clone(), via.value.clone())?;
    }
    Ok(())
}

/// Removes every `X-Cmux-*` header, known or not, but those an edge's node reads. A
/// scan of the names, with no allocation when there are none (most requests carry just
/// the port header).
fn remove_protocol_headers(upstream: &mut RequestHeader, to_node: bool) {
    let goes = |name: &HeaderName| {
        is_protocol_header(name) && !(to_node && TO_NODE.iter().any(|h| h.wire == name))
    };
    while let Some(name) = upstream.headers.keys().find(|n| goes(n)).cloned() {
        upstream.remove_header(&name);
    }
}

/// With tokens in force, removes the token cookie.
fn remove_token_cookie(upstream: &mut RequestHeader, strip_cookie: bool) -> Result<()> {
    let name = TOKEN_COOKIE.as_bytes();
    let has_cookie = |h: &RequestHeader| {
        h.headers
            .get_all(http::header::COOKIE)
            .iter()
            .any(|v| v.as_bytes().windows(name.len()).any(|w| w == name))
    };
    if strip_cookie && has_cookie(upstream) {
        match cookies_without_token(&upstream.headers) {
            Some(kept) => upstream.insert_header(http::header::COOKIE, kept)?,
            None => {
                upstream.remove_header(&http::header::COOKIE);
            }
        }
    }
    Ok(())
}

/// The values of a list header (`X-Forwarded-For`, `Via`) joined with ", ", then `entry`
/// appended, as a new header value.
fn append_list_entry(
    req: &RequestHeader,
    name: &HeaderName,
    entry: impl FnOnce(&mut String),
) -> String {
    let mut joined = String::with_capacity(48);
    for value in req.headers.get_all(name) {
        joined.push_str(header_text(value));
        joined.push_str(", ");
    }
    entry(&mut joined);
    joined
}

/// An IP address as text. IPv4, the common case, without the formatting machinery
/// (about 1,500 instructions per request through `Display`).
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.18.1.255",
            "10.20.100.9",
            "255.255.255.255",
            "::1",
            "fe80::1:2",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }

    #[test]
    fn headers_that_never_travel_never_reach_the_target() {
        use crate::names::*;
        let all = [
            &PORT,
            &WORKSPACE,
            &WAIT,
            &TOKEN,
            &MACHINE,
            &HOST_OVERRIDE,
            &UPSTREAM_PROTOCOL,
        ];
        let via = ViaEntry::new("1.1 cmux-proxy-test");
        for to_node in [false, true] {
            let mut req = RequestHeader::build("GET", b"/", None).unwrap();
            for header in all {
                req.append_header(header.display, "1").unwrap();
            }
            req.append_header("X-CMUX-Unknown", "1").unwrap();
            req.append_header("X-Cmuxy", "1").unwrap();
            let sender = Sender {
                client: None,
                trusted: false,
                to_node,
                strip_token_cookie: true,
            };
            rewrite(&mut req, &sender, &via).unwrap();
            for header in all {
                let kept = req.headers.contains_key(&header.wire);
                let travels = to_node && header.travel == Travel::ToNodeOnly;
                assert_eq!(kept, travels, "{} to_node={to_node}", header.display);
            }
            assert!(!req.headers.contains_key("x-cmux-unknown"));
            assert!(req.headers.contains_key("x-cmuxy"));
        }
    }

    #[test]
    fn forwarded_proto_and_host_pass_from_trusted_fronts_only() {
        let via = ViaEntry::new("1.1 cmux-proxy-test");
        for trusted in [false, true] {
            let mut req = RequestHeader::build("GET", b"/", None).unwrap();
            req.append_header("Host", "localhost:8080").unwrap();
            req.append_header("X-Forwarded-Proto", "https").unwrap();
            req.append_header("X-Forwarded-Host", "app.test").unwrap();
            let sender = Sender {
                client: None,
                trusted,
                to_node: false,
                strip_token_cookie: false,
            };
            rewrite(&mut req, &sender, &via).unwrap();
            let get = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_string();
            let want = if trusted {
                ("https", "app.test")
            } else {
                ("http", "localhost:8080")
            };
            assert_eq!(
                (
                    get("x-forwarded-proto").as_str(),
                    get("x-forwarded-host").as_str()
                ),
                want
            );
        }
    }

    #[test]
    fn list_entry_is_appended_to_every_value() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        let add = |out: &mut String| out.push_str("10.0.0.3");
        assert_eq!(append_list_entry(&req, &X_FORWARDED_FOR, add), "10.0.0.3");
        req.append_header("X-Forwarded-For", "10.0.0.1").unwrap();
        req.append_header("X-Forwarded-For", "10.0.0.2").unwrap();
        assert_eq!(
            append_list_entry(&req, &X_FORWARDED_FOR, add),
            "10.0.0.1, 10.0.0.2, 10.0.0.3"
        );
    }
}
