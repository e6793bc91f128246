//! The proxy's own errors as a gRPC client reads them: a gRPC status, not an HTML or
//! text body, which a gRPC library would report as a bare "bad HTTP status".
//!
//! The answer is gRPC's Trailers-Only form (PROTOCOL-HTTP2.md in the gRPC repository):
//! one header block with HTTP status 200, `content-type: application/grpc`,
//! `grpc-status` and a percent-encoded `grpc-message`, ending the stream. Every kind of
//! the error table has its status code here, chosen for what a gRPC client should do
//! about it (retry UNAVAILABLE, fix an INVALID_ARGUMENT); the message is the table's.

use super::{ProxyError, ProxyErrorKind as Kind};
use http::HeaderMap;

/// gRPC status codes the proxy answers with (grpc/doc/statuscodes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl Code {
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Whether a request is gRPC: `content-type` is `application/grpc`, alone or with a
/// `+format` or parameters. gRPC-Web (`application/grpc-web*`) is not: it is made for
/// HTTP/1.1 and browsers, and is proxied like any other HTTP request.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return false;
    };
    let value = value.as_bytes();
    const GRPC: &[u8] = b"application/grpc";
    value.len() >= GRPC.len()
        && value[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(value.get(GRPC.len()), None | Some(b'+' | b';' | b' '))
}

/// The status a gRPC client gets for `kind`.
pub fn code_for(kind: &Kind) -> Code {
    match kind {
        // The request as sent can never succeed.
        Kind::Route(_)
        | Kind::BadHostOverride(_)
        | Kind::BadUpstreamProtocol(_)
        | Kind::Malformed(_)
        | Kind::NotHttp(_)
        | Kind::BadBody(_)
        | Kind::BadTarget(_)
        | Kind::HeadTooLarge(_)
        | Kind::MissingMachine
        | Kind::BadMachine(_) => Code::InvalidArgument,
        // The target is down or restarting, or broke the exchange: worth a retry.
        Kind::PortClosed(_) | Kind::UpstreamClosed | Kind::ConnectFailed(_) => Code::Unavailable,
        Kind::Overloaded(_) => Code::Unavailable,
        // Edge mode: no such machine (NOT_FOUND would say the method is unknown, so the
        // machine's absence is UNAVAILABLE like a closed port); DNS or the node is down.
        Kind::MachineUnknown { .. } | Kind::DnsFailed { .. } => Code::Unavailable,
        Kind::MachineUnreachable {
            timed_out: true, ..
        } => Code::DeadlineExceeded,
        Kind::MachineUnreachable { .. } => Code::Unavailable,
        Kind::ConnectTimeout | Kind::ReadTimeout(_) | Kind::HeadTimeout | Kind::BodyTimeout(_) => {
            Code::DeadlineExceeded
        }
        // Pointing at the proxy itself is a setup mistake, not a bad argument.
        Kind::LoopDetected => Code::FailedPrecondition,
        Kind::Unauthorized { .. } => Code::Unauthenticated,
        Kind::TargetForbidden(_) => Code::PermissionDenied,
        Kind::Http2 => Code::Unimplemented,
    }
}

/// gRPC's percent-encoding of `grpc-message`: UTF-8 bytes outside printable ASCII, and
/// `%` itself, as `%XX`.
pub fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The header fields of the Trailers-Only answer to `err`, besides `:status` 200:
/// `content-type`, `grpc-status`, `grpc-message`, and the table's stable code as
/// `x-cmux-error` (custom metadata, for programs).
pub fn trailers_only(err: &ProxyError) -> [(&'static str, String); 4] {
    let row = err.describe();
    [
        ("content-type", "application/grpc".to_string()),
        ("grpc-status", code_for(&err.kind).as_u8().to_string()),
        ("grpc-message", percent_encode(&row.message)),
        ("x-cmux-error", row.code.to_string()),
    ]
}

/// The status for a failure of the proxy itself, with no row in the table.
pub const INTERNAL: Code = Code::Internal;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{RouteError, Target};
    use http::HeaderValue;
    use std::time::Duration;

    fn with_type(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn grpc_content_types() {
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC+json",
            "application/grpc; charset=utf-8",
        ] {
            assert!(is_grpc(&with_type(yes)), "{yes}");
        }
        for no in [
            "application/grpc-web",
            "application/grpc-web-text+proto",
            "application/grpcx",
            "application/json",
            "text/grpc",
        ] {
            assert!(!is_grpc(&with_type(no)), "{no}");
        }
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn percent_encoding_as_grpc_does() {
        assert_eq!(percent_encode("plain text: ok"), "plain text: ok");
        assert_eq!(percent_encode("100% é\n"), "100%25 %C3%A9%0A");
    }

    #[test]
    fn the_issues_examples() {
        let target = Target {
            addr: "127.18.0.7:3000".parse().unwrap(),
            workspace: Some("workspace-7".into()),
        };
        let closed = ProxyError::new(Kind::PortClosed(None), &target);
        let fields = trailers_only(&closed);
        assert_eq!(fields[1], ("grpc-status", "14".to_string()));
        assert_eq!(fields[2].1, percent_encode(&closed.message()));
        assert_eq!(fields[3], ("x-cmux-error", "port_closed".to_string()));
        let bad = ProxyError::from(RouteError::BadPort("x".into()));
        assert_eq!(code_for(&bad.kind), Code::InvalidArgument);
        assert_eq!(code_for(&Kind::ConnectTimeout), Code::DeadlineExceeded);
        assert_eq!(
            code_for(&Kind::ReadTimeout(Duration::from_secs(1))),
            Code::DeadlineExceeded
        );
        assert_eq!(
            code_for(&Kind::Unauthorized { proxy: false }),
            Code::Unauthenticated
        );
    }
}
