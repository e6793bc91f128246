//! Hop-by-hop response headers, which end at this proxy (RFC 9110 section 7.6.1).

use http::HeaderName;
use pingora::http::ResponseHeader;

/// Hop-by-hop response headers never passed to the client. pingora writes its own
/// `Connection` and framing headers.
const HOP_BY_HOP_RESPONSE: [&str; 5] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "trailer",
    "upgrade",
];

/// Removes the hop-by-hop headers of a response that is not a protocol switch.
pub fn remove(response: &mut ResponseHeader) {
    // Remove only what is present: each removal from pingora's case-preserving header
    // map costs hundreds of instructions, and usually there is nothing to remove but
    // what `Connection` (which pingora rewrites itself) nominates.
    let nominated = response
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.eq_ignore_ascii_case("close") && !t.eq_ignore_ascii_case("keep-alive"));
    let mut doomed: Vec<HeaderName> = nominated
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    doomed.extend(
        response
            .headers
            .keys()
            .filter(|name| HOP_BY_HOP_RESPONSE.contains(&name.as_str()))
            .cloned(),
    );
    for name in &doomed {
        response.remove_header(name);
    }
}
