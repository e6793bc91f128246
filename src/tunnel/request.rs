//! A CONNECT request head, parsed into the same header map that pingora gives the HTTP
//! path, so that both are routed by one function.

use crate::error::BodyFormat;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Most header lines accepted in a CONNECT request head.
const MAX_HEADERS: usize = 128;

/// A parsed CONNECT request.
pub struct ConnectRequest {
    pub headers: HeaderMap,
    /// The error body form its `Accept` asks for.
    pub format: BodyFormat,
    /// Bytes that followed the head in the same reads.
    pub early_data: Vec<u8>,
}

/// Parses a complete CONNECT head (and the bytes after it). The request target (the
/// CONNECT authority) is not used: the headers name the target.
pub fn parse(bytes: &[u8]) -> Result<ConnectRequest, String> {
    let mut parsed = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut parsed);
    let head_len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete request head".into()),
        Err(e) => return Err(e.to_string()),
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        // httparse has checked names and values; a value the header map still refuses
        // (a control byte) cannot be a routing value either.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) {
            headers.append(name, value);
        }
    }
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    Ok(ConnectRequest {
        format: BodyFormat::from_accept(accept),
        headers,
        early_data: bytes[head_len..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_format_and_early_data() {
        let head = b"CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: 3000\r\nAccept: application/json\r\n\r\nPING";
        let req = parse(head).unwrap();
        assert_eq!(req.headers["x-cmux-port-internal"], "3000");
        assert_eq!(req.format, BodyFormat::Json);
        assert_eq!(req.early_data, b"PING");
        assert!(parse(b"CONNECT x:1 HTTP/1.1\r\nBad Header\r\n\r\n").is_err());
    }
}
