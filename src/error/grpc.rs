//! The proxy's own errors as a gRPC client reads them: a gRPC status, not an HTML or
//! text body, which a gRPC library would report as a bare "bad HTTP status".
//!
//! The answer is gRPC's Trailers-Only form (PROTOCOL-HTTP2.md in the gRPC repository):
//! one header block with HTTP status 200, `content-type: application/grpc`,
//! `grpc-status` and a percent-encoded `grpc-message`, ending the stream. The status
//! and the message are the error table's.

use super::ProxyError;
use crate::names::ERROR_CODE;

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
        ("grpc-status", row.grpc.as_u8().to_string()),
        ("grpc-message", percent_encode(&row.message)),
        (ERROR_CODE, row.code.to_string()),
    ]
}

/// The status for a failure of the proxy itself, with no row in the table.
pub const INTERNAL: Code = Code::Internal;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProxyErrorKind as Kind;
    use crate::routing::{RouteError, Target};
    use std::time::Duration;

    #[test]
    fn percent_encoding_as_grpc_does() {
        assert_eq!(percent_encode("plain text: ok"), "plain text: ok");
        assert_eq!(percent_encode("100% é\n"), "100%25 %C3%A9%0A");
    }

    #[test]
    fn statuses_and_messages_come_from_the_table() {
        let target = Target {
            addr: "127.18.0.7:3000".parse().unwrap(),
            workspace: Some("workspace-7".into()),
        };
        let closed = ProxyError::new(Kind::PortClosed(None), &target);
        let fields = trailers_only(&closed);
        assert_eq!(fields[1], ("grpc-status", "14".to_string()));
        assert_eq!(fields[2].1, percent_encode(&closed.message()));
        assert_eq!(fields[3], ("x-cmux-error", "port_closed".to_string()));
        let code = |kind| ProxyError::without_target(kind).describe().grpc;
        assert_eq!(
            code(Kind::Route(RouteError::BadPort("x".into()))),
            Code::InvalidArgument
        );
        assert_eq!(code(Kind::ConnectTimeout), Code::DeadlineExceeded);
        assert_eq!(
            code(Kind::ReadTimeout(Duration::from_secs(1))),
            Code::DeadlineExceeded
        );
        assert_eq!(
            code(Kind::Unauthorized { proxy: false }),
            Code::Unauthenticated
        );
    }
}
