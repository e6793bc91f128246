//! Answering an h2c stream that the connection limits refuse, on its own: the client's
//! other streams on the connection go on (`h2c` decides; this writes and logs).

use crate::error::{BodyFormat, ProxyError, ProxyErrorKind};
use crate::observe::{EndReason, Entry, RequestKind};
use crate::state::ProxyState;
use pingora::http::ResponseHeader;
use pingora::protocols::http::v2::server::HttpSession;

/// Answers a stream over the connection limits: 503 with `Retry-After`, logged and
/// counted as an `overloaded` refusal.
pub async fn refuse_stream(mut session: HttpSession, why: String, state: &ProxyState) {
    let started = std::time::Instant::now();
    let err = ProxyError::without_target(ProxyErrorKind::Overloaded(why));
    let row = err.describe();
    let body = err.body(BodyFormat::Text);
    let client = session.client_addr().and_then(|a| a.as_inet()).copied();
    let method = session.req_header().method.clone();
    if let Ok(mut header) = ResponseHeader::build(row.status, Some(4)) {
        let _ = header.insert_header(http::header::CONTENT_TYPE, BodyFormat::Text.content_type());
        let _ = header.insert_header(http::header::CONTENT_LENGTH, body.len());
        let _ = header.insert_header(http::header::CACHE_CONTROL, "no-store");
        for (name, value) in row.headers {
            let _ = header.insert_header(*name, *value);
        }
        if session
            .write_response_header(Box::new(header), false)
            .is_ok()
        {
            let _ = session.write_body(body.clone(), true).await;
        }
    }
    let mut entry = Entry::new(RequestKind::Http, client, started, None);
    entry.method = method.as_str();
    entry.status = row.status;
    entry.bytes_out = body.len() as u64;
    entry.end = Some(EndReason::Answered(row.code));
    state.recorder.record(&entry);
}
