//! An HTTP/2 request names its host in `:authority`, not `Host`. pingora adds a `Host`
//! for an HTTP/1.1 target before the request filters run, but not for an HTTP/2 one;
//! adding it here gives every target the same forwarding headers (`X-Forwarded-Host`)
//! and the host override the same origin to compare with. On the HTTP/2 wire pingora
//! turns `Host` back into `:authority`, so nothing else changes.

use http::Version;
use pingora::http::RequestHeader;
use pingora::prelude::*;

/// Gives an HTTP/2 request without `Host` one, from its `:authority`.
pub fn host_from_authority(upstream: &mut RequestHeader, downstream: Version) -> Result<()> {
    if downstream != Version::HTTP_2 || upstream.headers.contains_key(http::header::HOST) {
        return Ok(());
    }
    match upstream.uri.authority().map(|a| a.as_str().to_string()) {
        Some(authority) => upstream.insert_header(http::header::HOST, authority),
        None => Ok(()),
    }
}
