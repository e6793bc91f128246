//! An HTTP/2 request names its host in `:authority`, not `Host`. Given a `Host` equal to
//! its `:authority` as soon as it arrives, it is seen like an HTTP/1.1 request by every
//! step after: routing, the forwarding headers (`X-Forwarded-Host`), the host override's
//! origin check, the loopback-redirect rewrite and the access log. pingora turns `Host`
//! back into `:authority` on an HTTP/2 target, and checks that the two agree on an
//! HTTP/1.1 one, so what the target sees does not change.

use http::Version;
use pingora::http::RequestHeader;
use pingora::prelude::*;

/// Gives an HTTP/2 request without `Host` one, from its `:authority`.
pub fn host_from_authority(req: &mut RequestHeader) -> Result<()> {
    if req.version != Version::HTTP_2 || req.headers.contains_key(http::header::HOST) {
        return Ok(());
    }
    match req.uri.authority().map(|a| a.as_str().to_string()) {
        Some(authority) => req.insert_header(http::header::HOST, authority),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http2_requests_without_host_get_one() {
        let h2 = |uri: &str| {
            let mut r = RequestHeader::build("GET", b"/", None).unwrap();
            r.set_uri(uri.parse().unwrap());
            r.set_version(Version::HTTP_2);
            r
        };
        let mut req = h2("http://workspace-7-5173.localhost:8080/a?b");
        host_from_authority(&mut req).unwrap();
        assert_eq!(
            req.headers.get("host").unwrap(),
            "workspace-7-5173.localhost:8080"
        );
        let mut req = h2("http://a.test/");
        req.insert_header("Host", "b.test").unwrap();
        host_from_authority(&mut req).unwrap();
        assert_eq!(req.headers.get("host").unwrap(), "b.test");
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        host_from_authority(&mut req).unwrap();
        assert!(req.headers.get("host").is_none(), "HTTP/1.1 left alone");
    }
}
