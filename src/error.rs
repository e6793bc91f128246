//! The errors the proxy itself answers with, and how they are written.
//!
//! One type serves the HTTP path (through pingora's `fail_to_proxy`) and the CONNECT
//! tunnel (which writes the same response by hand), so a client sees the same status
//! and body whichever way it came in.

use crate::route::{RouteError, Target};
use crate::sockets::RefusalExplanation;
use bytes::Bytes;
use std::time::Duration;

/// What went wrong, in the terms of the contract's error table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyErrorKind {
    /// The request could not be routed (400).
    Route(RouteError),
    /// Nothing listens at the target (502), with what does listen on that port.
    PortClosed(Option<RefusalExplanation>),
    /// Connecting to the target timed out (504).
    ConnectTimeout,
    /// The target closed or sent garbage before a response head (502).
    UpstreamClosed,
    /// The target sent nothing for `upstream_read_timeout_ms` (504).
    ReadTimeout(Duration),
    /// Any other failure to connect (502).
    ConnectFailed(String),
    /// The target is this proxy itself, or the request already passed through it (508).
    LoopDetected,
    /// The request head did not arrive within the head timeout (408).
    HeadTimeout,
    /// The request body paused longer than the body read timeout (408).
    BodyTimeout,
    /// A CONNECT request head over the size limit (431).
    HeadTooLarge,
    /// A CONNECT request that does not parse (400).
    Malformed(String),
    /// Bytes that cannot start an HTTP/1 request, with the first one (400).
    NotHttp(u8),
    /// A request body that breaks its own framing, with pingora's reason (400).
    BadBody(String),
    /// An HTTP/2 connection preface (h2c with prior knowledge, as gRPC clients send):
    /// answered in HTTP/2 terms, logged as 505.
    Http2,
}

/// An error response: its kind and the target it was aimed at, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    pub kind: ProxyErrorKind,
    pub target: Option<Target>,
}

impl From<RouteError> for ProxyError {
    fn from(e: RouteError) -> Self {
        ProxyError {
            kind: ProxyErrorKind::Route(e),
            target: None,
        }
    }
}

impl ProxyError {
    pub fn new(kind: ProxyErrorKind, target: &Target) -> Self {
        ProxyError {
            kind,
            target: Some(target.clone()),
        }
    }

    pub fn status(&self) -> u16 {
        match self.kind {
            ProxyErrorKind::Route(_)
            | ProxyErrorKind::Malformed(_)
            | ProxyErrorKind::NotHttp(_)
            | ProxyErrorKind::BadBody(_) => 400,
            ProxyErrorKind::HeadTimeout | ProxyErrorKind::BodyTimeout => 408,
            ProxyErrorKind::HeadTooLarge => 431,
            ProxyErrorKind::ConnectTimeout | ProxyErrorKind::ReadTimeout(_) => 504,
            ProxyErrorKind::LoopDetected => 508,
            ProxyErrorKind::Http2 => 505,
            ProxyErrorKind::PortClosed(_)
            | ProxyErrorKind::UpstreamClosed
            | ProxyErrorKind::ConnectFailed(_) => 502,
        }
    }

    /// Stable machine-readable code (the `code` field of the JSON form).
    pub fn code(&self) -> &'static str {
        match &self.kind {
            ProxyErrorKind::Route(e) => e.code(),
            ProxyErrorKind::PortClosed(_) => "port_closed",
            ProxyErrorKind::ConnectTimeout => "connect_timeout",
            ProxyErrorKind::UpstreamClosed => "upstream_closed",
            ProxyErrorKind::ReadTimeout(_) => "read_timeout",
            ProxyErrorKind::ConnectFailed(_) => "connect_failed",
            ProxyErrorKind::LoopDetected => "loop_detected",
            ProxyErrorKind::HeadTimeout => "head_timeout",
            ProxyErrorKind::BodyTimeout => "body_timeout",
            ProxyErrorKind::HeadTooLarge => "head_too_large",
            ProxyErrorKind::Http2 => "http2_unsupported",
            ProxyErrorKind::Malformed(_)
            | ProxyErrorKind::NotHttp(_)
            | ProxyErrorKind::BadBody(_) => "bad_request",
        }
    }

    /// What the developer can do about it.
    pub fn hint(&self) -> String {
        match &self.kind {
            ProxyErrorKind::Route(e) => e.hint().to_string(),
            ProxyErrorKind::PortClosed(Some(explanation)) => explanation.hint.clone(),
            ProxyErrorKind::PortClosed(None) => {
                "start the server, or send X-Cmux-Wait-Ms to wait for it".into()
            }
            ProxyErrorKind::ConnectTimeout => {
                "the target accepted no connection in time: is it overloaded or stopped in a debugger?".into()
            }
            ProxyErrorKind::UpstreamClosed => {
                "the server accepted the connection but gave no HTTP response: is it an HTTP server? Use CONNECT for raw TCP".into()
            }
            ProxyErrorKind::ReadTimeout(_) => {
                "the server took the request but did not answer: is it stuck, or stopped in a debugger? Raise upstream_read_timeout_ms for slow endpoints".into()
            }
            ProxyErrorKind::ConnectFailed(_) => "check the target address".into(),
            ProxyErrorKind::LoopDetected => {
                "the target is this proxy itself: name the dev server's port, not the proxy's".into()
            }
            ProxyErrorKind::HeadTimeout => "send the whole request head at once".into(),
            ProxyErrorKind::BodyTimeout => "send the request body without long pauses".into(),
            ProxyErrorKind::HeadTooLarge => "send fewer or smaller headers".into(),
            ProxyErrorKind::Malformed(_) => {
                "send CONNECT <anything> HTTP/1.1 with the routing headers".into()
            }
            ProxyErrorKind::NotHttp(_) => "use http://, not https://".into(),
            ProxyErrorKind::Http2 => {
                "send HTTP/1.1, or tunnel HTTP/2 (gRPC, say) through CONNECT".into()
            }
            ProxyErrorKind::BadBody(_) => {
                "check the body against its Content-Length or chunked encoding".into()
            }
        }
    }

    /// The one-line message: what was wrong and what was tried.
    pub fn message(&self) -> String {
        let target = self
            .target
            .as_ref()
            .map(Target::describe)
            .unwrap_or_default();
        match &self.kind {
            ProxyErrorKind::Route(e) => e.to_string(),
            ProxyErrorKind::PortClosed(explanation) => {
                let mut m = format!("nothing listens on {target} (connection refused)");
                if let Some(e) = explanation {
                    m.push_str("; ");
                    m.push_str(&e.hint);
                }
                m
            }
            ProxyErrorKind::ConnectTimeout => {
                format!("timed out connecting to {target}")
            }
            ProxyErrorKind::UpstreamClosed => {
                format!("{target} closed the connection or sent an invalid response before a response head")
            }
            ProxyErrorKind::ReadTimeout(limit) => format!(
                "{target} sent no response within {} ms (upstream_read_timeout_ms)",
                limit.as_millis()
            ),
            ProxyErrorKind::ConnectFailed(why) => format!("cannot connect to {target}: {why}"),
            ProxyErrorKind::LoopDetected => {
                format!("loop detected: the request would reach this proxy again at {target}")
            }
            ProxyErrorKind::HeadTimeout => "request head not received in time".into(),
            ProxyErrorKind::BodyTimeout => format!(
                "request body stalled: no byte for {} s",
                crate::proxy::BODY_READ_TIMEOUT.as_secs()
            ),
            ProxyErrorKind::HeadTooLarge => format!(
                "CONNECT request head larger than {} bytes",
                crate::head::MAX_HEAD_BYTES
            ),
            ProxyErrorKind::Malformed(why) => format!("malformed CONNECT request: {why}"),
            ProxyErrorKind::NotHttp(0x16) => {
                "not an HTTP request: a TLS handshake; this listener speaks plain HTTP".into()
            }
            ProxyErrorKind::NotHttp(byte) => {
                format!("not an HTTP request: it starts with byte 0x{byte:02x}")
            }
            ProxyErrorKind::BadBody(why) => format!("malformed request body: {why}"),
            ProxyErrorKind::Http2 => {
                "HTTP/2 is not served here: this listener speaks HTTP/1.1".into()
            }
        }
    }

    /// An error with no target (the request could not be read or routed).
    pub fn without_target(kind: ProxyErrorKind) -> Self {
        ProxyError { kind, target: None }
    }

    /// The response body in the chosen form.
    pub fn body(&self, format: BodyFormat) -> Bytes {
        match format {
            BodyFormat::Text => Bytes::from(self.message() + "\n"),
            BodyFormat::Json => Bytes::from(self.json()),
            BodyFormat::Html => Bytes::from(self.html()),
        }
    }

    fn json(&self) -> String {
        let mut body = serde_json::json!({
            "status": self.status(),
            "code": self.code(),
            "message": self.message(),
            "hint": self.hint(),
        });
        if let Some(t) = &self.target {
            body["target"] = t.addr.to_string().into();
            if let Some(ws) = &t.workspace {
                body["workspace"] = ws.as_str().into();
            }
        }
        if let ProxyErrorKind::PortClosed(Some(e)) = &self.kind {
            body["listeners"] = e.listeners.iter().map(|l| l.to_string()).collect();
        }
        body.to_string() + "\n"
    }

    /// A small self-contained page for browsers. While the port is closed it reloads
    /// itself every few seconds, so the app appears as soon as the dev server is up.
    fn html(&self) -> String {
        let status = self.status();
        let refresh = if matches!(self.kind, ProxyErrorKind::PortClosed(_)) {
            "<meta http-equiv=\"refresh\" content=\"3\">\n"
        } else {
            ""
        };
        let target = self
            .target
            .as_ref()
            .map(|t| {
                format!(
                    "<p>Target: <code>{}</code></p>\n",
                    html_escape(&t.describe())
                )
            })
            .unwrap_or_default();
        let retrying = if refresh.is_empty() {
            ""
        } else {
            "<p class=\"note\">This page reloads itself every 3 seconds.</p>\n"
        };
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n{refresh}<title>{status} {code} - cmux-proxy</title>\n\
<style>body{{font-family:system-ui,sans-serif;max-width:42em;margin:3em auto;padding:0 1em;color:#222}}\
code{{background:#f2f2f2;padding:0 .25em}}.note{{color:#666}}</style></head>\n\
<body><h1>{status} {code}</h1>\n<p>{message}</p>\n{target}<p><strong>Hint:</strong> {hint}</p>\n{retrying}</body></html>\n",
            code = self.code(),
            message = html_escape(&self.message()),
            hint = html_escape(&self.hint()),
        )
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The body forms of an error: plain text (default), JSON, or a page for browsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Text,
    Json,
    Html,
}

impl BodyFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Text => "text/plain; charset=utf-8",
            BodyFormat::Json => "application/json",
            BodyFormat::Html => "text/html; charset=utf-8",
        }
    }

    /// The form the `Accept` header prefers: JSON (`application/json`, `*/json`,
    /// `+json`), HTML (`text/html`, as browsers send), else plain text. Ties go to
    /// plain text, then JSON.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return BodyFormat::Text;
        };
        let (mut json, mut html, mut text) = (0.0f32, 0.0f32, 0.0f32);
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if media == "application/json" || media.ends_with("+json") {
                json = json.max(q);
            } else if media == "text/html" || media == "application/xhtml+xml" {
                html = html.max(q);
            } else if media.starts_with("text/") {
                text = text.max(q);
            }
        }
        if text >= json && text >= html {
            BodyFormat::Text
        } else if json >= html {
            BodyFormat::Json
        } else {
            BodyFormat::Html
        }
    }
}

/// A complete HTTP/1.1 error response as raw bytes, for the CONNECT path which writes
/// to the socket itself. The connection is closed after it.
pub fn raw_response(err: &ProxyError, format: BodyFormat) -> Vec<u8> {
    let body = err.body(format);
    let status = err.status();
    let reason = http_reason(status);
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        format.content_type(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The bytes that end a connection in reply to `err`: an HTTP/1.1 response in plain text,
/// or, to an HTTP/2 client, what it can read (see [`http2_refusal`]).
pub fn final_reply(err: &ProxyError) -> Vec<u8> {
    match err.kind {
        ProxyErrorKind::Http2 => http2_refusal(&format!("{}; {}", err.message(), err.hint())),
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

fn http_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        508 => "Loop Detected",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert_eq!(BodyFormat::from_accept(None), BodyFormat::Text);
        assert_eq!(BodyFormat::from_accept(Some("*/*")), BodyFormat::Text);
        assert_eq!(
            BodyFormat::from_accept(Some("application/json")),
            BodyFormat::Json
        );
        assert_eq!(
            BodyFormat::from_accept(Some("text/plain;q=0.5, application/json")),
            BodyFormat::Json
        );
        assert_eq!(
            BodyFormat::from_accept(Some("text/plain, application/json;q=0.1")),
            BodyFormat::Text
        );
        assert_eq!(
            BodyFormat::from_accept(Some("application/problem+json")),
            BodyFormat::Json
        );
        // What a browser sends for a page.
        assert_eq!(
            BodyFormat::from_accept(Some(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            BodyFormat::Html
        );
    }

    #[test]
    fn html_page_names_the_target_and_reloads_while_closed() {
        let target = Target {
            addr: "127.18.0.7:3000".parse().unwrap(),
            workspace: Some("<ws>".into()),
        };
        let e = ProxyError::new(ProxyErrorKind::PortClosed(None), &target);
        let page = String::from_utf8(e.body(BodyFormat::Html).to_vec()).unwrap();
        assert!(page.contains("http-equiv=\"refresh\""), "{page}");
        assert!(page.contains("127.18.0.7:3000 (&lt;ws&gt;)"), "{page}");
        assert!(!page.contains("<ws>"), "{page}");
        let e = ProxyError::new(ProxyErrorKind::ConnectTimeout, &target);
        let page = String::from_utf8(e.body(BodyFormat::Html).to_vec()).unwrap();
        assert!(!page.contains("refresh"), "{page}");
    }

    #[test]
    fn bodies_name_the_target() {
        let target = Target {
            addr: "127.18.0.7:3000".parse().unwrap(),
            workspace: Some("workspace-7".into()),
        };
        let e = ProxyError::new(ProxyErrorKind::PortClosed(None), &target);
        assert_eq!(e.status(), 502);
        let text = String::from_utf8(e.body(BodyFormat::Text).to_vec()).unwrap();
        assert!(text.contains("127.18.0.7:3000 (workspace-7)"), "{text}");
        assert!(text.ends_with('\n') && text.lines().count() == 1);
        let json = String::from_utf8(e.body(BodyFormat::Json).to_vec()).unwrap();
        assert!(json.contains("\"code\":\"port_closed\""), "{json}");
        assert!(json.contains("\"target\":\"127.18.0.7:3000\""), "{json}");
        assert!(json.contains("\"workspace\":\"workspace-7\""), "{json}");
        let raw = String::from_utf8(raw_response(&e, BodyFormat::Text)).unwrap();
        assert!(raw.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{raw}");
        assert!(raw.contains(&format!("Content-Length: {}\r\n", text.len())));
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
            why.contains("speaks HTTP/1.1") && why.contains("CONNECT"),
            "{why}"
        );
    }

    #[test]
    fn json_escapes() {
        let e = ProxyError::from(RouteError::BadPort("a\"b\\\u{1}\n".into()));
        let json = e.body(BodyFormat::Json);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["message"].as_str().unwrap(), e.message());
        assert_eq!(v["code"], "bad_port");
        assert_eq!(v["status"], 400);
    }
}
