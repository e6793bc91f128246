//! Whether an HTTP or WebSocket request is let in: the token check of `request_filter`,
//! and the `?cmux_token=` visit that gives a browser its cookie.

use super::ctx::RequestCtx;
use crate::access::{issue_cookie, split_query_token, COOKIE_MAX_AGE};
use crate::error::{ProxyError, ProxyErrorKind};
use crate::names::{TOKEN_COOKIE, TOKEN_QUERY};
use crate::observe::EndReason;
use crate::state::ProxyState;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::ErrorType;

/// `Ok(true)` when the request was answered here (the cookie redirect); `Err` when it
/// is refused (401, answered by `fail_to_proxy`); `Ok(false)` to go on.
pub async fn admit(
    state: &ProxyState,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<bool> {
    let access = &state.access;
    if !access.tokens.required() {
        return Ok(false);
    }
    if let Some(token) = take_query_token(session) {
        if access.tokens.accepts(token.as_bytes()) {
            give_cookie(session, &token).await?;
            ctx.end = Some(EndReason::Answered("token_cookie"));
            return Ok(true);
        }
        return refuse(ctx);
    }
    let client = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip());
    if !access.token_required(client) || access.request_token_ok(&session.req_header().headers) {
        return Ok(false);
    }
    refuse(ctx)
}

fn refuse(ctx: &mut RequestCtx) -> Result<bool> {
    let err = ProxyError::without_target(ProxyErrorKind::Unauthorized { proxy: false });
    let status = err.status();
    ctx.early_error = Some(err);
    Error::e_explain(ErrorType::HTTPStatus(status), "no valid token")
}

/// Takes `cmux_token=` out of the request's query, so that neither the target nor the
/// access log ever sees it; returns it.
fn take_query_token(session: &mut Session) -> Option<String> {
    let uri = &session.req_header().uri;
    let query = uri.query().filter(|q| q.contains(TOKEN_QUERY))?;
    let (token, rest) = split_query_token(query)?;
    let stripped = match rest.as_str() {
        "" => uri.path().to_string(),
        rest => format!("{}?{rest}", uri.path()),
    };
    if let Ok(stripped) = stripped.parse() {
        session.req_header_mut().set_uri(stripped);
    }
    Some(token)
}

/// The redirect target for a request's path and query: always a path on this origin. A
/// path starting with `//` or `/\` would be read by a browser as another host
/// (`//evil.example/x`), so leading slashes and backslashes become one `/`.
fn same_origin_location(path_and_query: &str) -> String {
    let rest = path_and_query.trim_start_matches(['/', '\\']);
    format!("/{rest}")
}

/// Answers with a redirect to the same URL without the token, setting the cookie: bound
/// to the request's Host, never the token itself (`access::cookie`).
async fn give_cookie(session: &mut Session, token: &str) -> Result<()> {
    let req = session.req_header();
    let location = same_origin_location(req.uri.path_and_query().map_or("/", |p| p.as_str()));
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let value = issue_cookie(token.as_bytes(), host);
    let max_age = COOKIE_MAX_AGE.as_secs();
    let cookie =
        format!("{TOKEN_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}");
    let mut resp = ResponseHeader::build(302, Some(5))?;
    resp.insert_header("Location", location)?;
    resp.insert_header("Set-Cookie", cookie)?;
    resp.insert_header("Cache-Control", "no-store")?;
    resp.insert_header("Content-Length", "0")?;
    session.set_keepalive(None);
    session.write_response_header(Box::new(resp), true).await
}

#[cfg(test)]
mod tests {
    use super::same_origin_location;

    #[test]
    fn redirects_stay_on_this_origin() {
        assert_eq!(same_origin_location("//evil.example/x"), "/evil.example/x");
        assert_eq!(same_origin_location("/\\evil.example/x"), "/evil.example/x");
        assert_eq!(same_origin_location("/\\/\\x?a=1"), "/x?a=1");
        assert_eq!(same_origin_location("/a/b?c=d"), "/a/b?c=d");
        assert_eq!(same_origin_location(""), "/");
        assert_eq!(same_origin_location("/"), "/");
    }
}
