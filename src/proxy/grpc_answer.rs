//! Answering a gRPC request that the proxy itself fails, as a gRPC status
//! ([`crate::error::grpc`] says which): over HTTP/2, one header block that ends the
//! stream (gRPC's Trailers-Only form); over HTTP/1.1, the same fields as headers of an
//! empty response.

use crate::error::{grpc, ProxyError};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::http::HttpTask;

/// Answers `err`; returns whether an answer was written.
pub async fn answer(session: &mut Session, err: &ProxyError) -> bool {
    write(session, grpc::trailers_only(err)).await
}

/// Answers a failure of the proxy itself: INTERNAL.
pub async fn internal(session: &mut Session) -> bool {
    let code = grpc::INTERNAL.as_u8().to_string();
    let fields = [
        ("content-type", "application/grpc".to_string()),
        ("grpc-status", code),
        ("grpc-message", "internal error in cmux-proxy".to_string()),
        ("x-cmux-error", "internal_error".to_string()),
    ];
    write(session, fields).await
}

async fn write(session: &mut Session, fields: [(&'static str, String); 4]) -> bool {
    // Once a response head went out, a status can only come from the target's trailers:
    // pingora then resets the stream, which the client reports itself.
    if session.response_written().is_some() {
        return false;
    }
    let Ok(mut header) = ResponseHeader::build(200, Some(fields.len() + 1)) else {
        return false;
    };
    for (name, value) in fields {
        if header.insert_header(name, value).is_err() {
            return false;
        }
    }
    let downstream = session.as_downstream_mut();
    let written = if downstream.is_http2() {
        let end = vec![HttpTask::Header(Box::new(header), true)];
        downstream.response_duplex_vec(end).await.map(|_| ())
    } else {
        let _ = header.insert_header(http::header::CONTENT_LENGTH, "0");
        downstream
            .write_error_response(header, Default::default())
            .await
    };
    if let Err(e) = &written {
        log::debug!("could not send the gRPC error status: {e}");
    }
    written.is_ok()
}
