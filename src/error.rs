//! The errors the proxy itself answers with, and how they are written.
//!
//! One type serves the HTTP path (through pingora's `fail_to_proxy`) and the CONNECT
//! tunnel (which writes the same response by hand), so a client sees the same status
//! and body whichever way it came in.

use crate::route::{RouteError, Target};
use bytes::Bytes;
use std::fmt::Write as _;

/// What went wrong, in the terms of the contract's error table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyErrorKind {
    /// The request could not be routed (400).
    Route(RouteError),
    /// Nothing listens at the target (502).
    PortClosed,
    /// Connecting to the target timed out (504).
    ConnectTimeout,
    /// The target closed or sent garbage before a response head (502).
    UpstreamClosed,
    /// Any other failure to connect (502).
    ConnectFailed(String),
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
            ProxyErrorKind::Route(_) => 400,
            ProxyErrorKind::ConnectTimeout => 504,
            ProxyErrorKind::PortClosed
            | ProxyErrorKind::UpstreamClosed
            | ProxyErrorKind::ConnectFailed(_) => 502,
        }
    }

    /// Stable machine-readable code (the `code` field of the JSON form).
    pub fn code(&self) -> &'static str {
        match &self.kind {
            ProxyErrorKind::Route(e) => e.code(),
            ProxyErrorKind::PortClosed => "port_closed",
            ProxyErrorKind::ConnectTimeout => "connect_timeout",
            ProxyErrorKind::UpstreamClosed => "upstream_closed",
            ProxyErrorKind::ConnectFailed(_) => "connect_failed",
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
            ProxyErrorKind::PortClosed => {
                format!("connection refused by {target}: nothing listens on that port")
            }
            ProxyErrorKind::ConnectTimeout => {
                format!("timed out connecting to {target}")
            }
            ProxyErrorKind::UpstreamClosed => {
                format!("{target} closed the connection or sent an invalid response before a response head")
            }
            ProxyErrorKind::ConnectFailed(why) => format!("cannot connect to {target}: {why}"),
        }
    }

    /// The response body, as plain text or JSON.
    pub fn body(&self, format: BodyFormat) -> Bytes {
        let message = self.message();
        match format {
            BodyFormat::Text => Bytes::from(message + "\n"),
            BodyFormat::Json => {
                let mut out = String::with_capacity(message.len() + 96);
                out.push_str("{\"status\":");
                let _ = write!(out, "{}", self.status());
                out.push_str(",\"code\":");
                json_string(&mut out, self.code());
                out.push_str(",\"message\":");
                json_string(&mut out, &message);
                if let Some(t) = &self.target {
                    out.push_str(",\"target\":");
                    json_string(&mut out, &t.addr.to_string());
                    if let Some(ws) = &t.workspace {
                        out.push_str(",\"workspace\":");
                        json_string(&mut out, ws);
                    }
                }
                out.push_str("}\n");
                Bytes::from(out)
            }
        }
    }
}

/// The two body forms the contract knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Text,
    Json,
}

impl BodyFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Text => "text/plain; charset=utf-8",
            BodyFormat::Json => "application/json",
        }
    }

    /// JSON when the `Accept` header prefers `application/json` (or `*/json`, or a
    /// `+json` type) over text; plain text otherwise.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return BodyFormat::Text;
        };
        let mut best_json = 0.0f32;
        let mut best_text = 0.0f32;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if media == "application/json" || media.ends_with("+json") {
                best_json = best_json.max(q);
            } else if media.starts_with("text/") {
                best_text = best_text.max(q);
            }
        }
        if best_json > 0.0 && best_json >= best_text {
            BodyFormat::Json
        } else {
            BodyFormat::Text
        }
    }
}

/// Appends `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
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

fn http_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
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
    }

    #[test]
    fn bodies_name_the_target() {
        let target = Target {
            addr: "127.18.0.7:3000".parse().unwrap(),
            workspace: Some("workspace-7".into()),
        };
        let e = ProxyError::new(ProxyErrorKind::PortClosed, &target);
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
    fn json_escapes() {
        let e = ProxyError::from(RouteError::BadPort("a\"b\\\u{1}\n".into()));
        let json = e.body(BodyFormat::Json);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["message"].as_str().unwrap(), e.message());
        assert_eq!(v["code"], "bad_port");
        assert_eq!(v["status"], 400);
    }
}
