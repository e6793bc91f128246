//! Requests refused before any proxy path takes them (a head too slow, too large, not
//! HTTP/1 at all): answered and logged here, since no other path would log them.

use crate::error::{reply, ProxyError, ProxyErrorKind};
use crate::observe::{peer_addr, EndReason, Entry, RequestKind};
use crate::state::ProxyState;
use pingora::protocols::Stream;
use std::time::Instant;

/// Answers a request whose head could not be taken, closes, and logs it as `kind`.
pub async fn refuse(
    client: &mut Stream,
    kind: ProxyErrorKind,
    logged_as: RequestKind,
    state: &ProxyState,
) {
    let started = Instant::now();
    let err = ProxyError::without_target(kind);
    let bytes_out = reply::reject(client, &err).await as u64;
    let mut entry = Entry::new(logged_as, peer_addr(client), started, None);
    entry.status = err.status();
    entry.bytes_out = bytes_out;
    entry.end = Some(EndReason::Answered(err.code()));
    state.recorder.record(&entry);
}

/// Closes a connection from a client that `allow_clients` does not list, at once and
/// without a word, and logs it.
pub fn close_forbidden(client: &Stream, state: &ProxyState) {
    let mut entry = Entry::new(RequestKind::Http, peer_addr(client), Instant::now(), None);
    entry.end = Some(EndReason::ClientForbidden);
    state.recorder.record(&entry);
}
