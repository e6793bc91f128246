//! Error replies as raw bytes, for the paths that write to the socket themselves
//! (CONNECT, and requests refused before pingora parses them).

use super::{BodyFormat, ProxyError, ProxyErrorKind};

/// A complete HTTP/1.1 error response. The connection is closed after it.
pub fn raw_response(err: &ProxyError, format: BodyFormat) -> Vec<u8> {
    let row = err.describe();
    let body = super::body::render(err, &row, format);
    let reason = http::StatusCode::from_u16(row.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", row.status);
    for (name, value) in row.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        format.content_type(),
        body.len()
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The bytes that end a connection in reply to `err`: an HTTP/1.1 response in plain text,
/// or, to an HTTP/2 client, what it can read (see [`http2_refusal`]).
pub fn final_reply(err: &ProxyError) -> Vec<u8> {
    match err.kind {
        ProxyErrorKind::Http2 => {
            let row = err.describe();
            http2_refusal(&format!("{}; {}", row.message, row.hint))
        }
        _ => raw_response(err, BodyFormat::Text),
    }
}

/// An HTTP/2 server's whole answer to a client it will not serve (RFC 9113): its
/// connection preface (an empty SETTINGS frame), then GOAWAY with error code
/// HTTP_1_1_REQUIRED and `why` as the debug data. An HTTP/1.1 response would be read by
/// the client as a broken frame.
pub fn http2_refusal(why: &str) -> Vec<u8> {
    const SETTINGS: u8 = 0x4;
    const GOAWAY: u8 = 0x7;
    const HTTP_1_1_REQUIRED: u32 = 0xd;
    let frame = |kind: u8, payload: &[u8]| {
        let len = (payload.len() as u32).to_be_bytes();
        // length (24 bits), type, flags, stream 0
        let mut f = vec![len[1], len[2], len[3], kind, 0, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    };
    let mut goaway = Vec::with_capacity(8 + why.len());
    goaway.extend_from_slice(&0u32.to_be_bytes()); // last stream id: none was processed
    goaway.extend_from_slice(&HTTP_1_1_REQUIRED.to_be_bytes());
    goaway.extend_from_slice(why.as_bytes());
    let mut out = frame(SETTINGS, &[]);
    out.extend(frame(GOAWAY, &goaway));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Target;

    #[test]
    fn raw_response_has_status_line_and_length() {
        let target = Target {
            addr: "127.18.0.7:3000".parse().unwrap(),
            workspace: Some("workspace-7".into()),
        };
        let e = ProxyError::new(ProxyErrorKind::PortClosed(None), &target);
        let text = e.body(BodyFormat::Text);
        let raw = String::from_utf8(raw_response(&e, BodyFormat::Text)).unwrap();
        assert!(raw.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{raw}");
        assert!(raw.contains(&format!("Content-Length: {}\r\n", text.len())));
        let e = ProxyError::without_target(ProxyErrorKind::HeadTooLarge(65536));
        let raw = String::from_utf8(raw_response(&e, BodyFormat::Text)).unwrap();
        assert!(
            raw.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{raw}"
        );
    }

    #[test]
    fn http2_refusal_is_a_settings_frame_then_goaway_http_1_1_required() {
        let bytes = final_reply(&ProxyError::without_target(ProxyErrorKind::Http2));
        assert_eq!(&bytes[..9], &[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let goaway = &bytes[9..];
        let len = u32::from_be_bytes([0, goaway[0], goaway[1], goaway[2]]) as usize;
        assert_eq!(goaway[3], 7, "GOAWAY");
        assert_eq!(&goaway[5..9], &[0, 0, 0, 0], "on stream 0");
        assert_eq!(goaway.len(), 9 + len);
        assert_eq!(&goaway[9..13], &[0, 0, 0, 0], "last stream id");
        assert_eq!(&goaway[13..17], &[0, 0, 0, 0xd], "HTTP_1_1_REQUIRED");
        let why = std::str::from_utf8(&goaway[17..]).unwrap();
        assert!(
            why.contains("first bytes") && why.contains("new connection"),
            "{why}"
        );
    }
}
