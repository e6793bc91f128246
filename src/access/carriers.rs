//! Where a request carries its token: the `X-Cmux-Token` header, the `cmux_token`
//! cookie, `Proxy-Authorization` (CONNECT), or once, `?cmux_token=` in the URL.

use crate::names::{TOKEN_COOKIE, TOKEN_QUERY};
use base64::Engine;
use http::HeaderMap;
use std::borrow::Cow;

/// The value of the `cmux_token` cookie, if the request has one.
pub fn cookie_token(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let (name, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
            (name == TOKEN_COOKIE.as_bytes()).then(|| &value[1..])
        })
}

/// The token of a `Proxy-Authorization` header: `Bearer TOKEN`, or `Basic` with the
/// token as the password (any user name).
pub fn proxy_authorization_token(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = headers
        .get(http::header::PROXY_AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.as_bytes().to_vec());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// The value of a `name=value` pair named `name`.
fn value_of<'a>(pair: &'a str, name: &str) -> Option<&'a str> {
    pair.strip_prefix(name)?.strip_prefix('=')
}

/// Splits `cmux_token=...` out of a query string: (the token, the query without it).
pub fn split_query_token(query: &str) -> Option<(String, String)> {
    let mut token = None;
    let mut rest: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        match value_of(pair, TOKEN_QUERY) {
            Some(value) if token.is_none() => token = Some(value.to_string()),
            Some(_) => {}
            None => rest.push(pair),
        }
    }
    Some((token?, rest.join("&")))
}

/// A request target (`path?query`) without its `cmux_token=` pairs, for whatever logs
/// it: the token must never be written down, whatever the log settings.
pub fn without_query_token(target: &str) -> Cow<'_, str> {
    let Some((path, query)) = target.split_once('?') else {
        return Cow::Borrowed(target);
    };
    match split_query_token(query) {
        None => Cow::Borrowed(target),
        Some((_, rest)) if rest.is_empty() => Cow::Borrowed(path),
        Some((_, rest)) => Cow::Owned(format!("{path}?{rest}")),
    }
}

/// The `Cookie` header values without the `cmux_token` cookie, so that the token never
/// reaches a target; `None` when no cookie is left.
pub fn cookies_without_token(headers: &HeaderMap) -> Option<String> {
    let kept: Vec<&str> = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && value_of(pair, TOKEN_COOKIE).is_none())
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn carriers() {
        let h = headers(&[("cookie", "a=1; cmux_token=sekrit; b=2")]);
        assert_eq!(cookie_token(&h), Some(&b"sekrit"[..]));
        assert_eq!(cookies_without_token(&h).as_deref(), Some("a=1; b=2"));
        let only = headers(&[("cookie", "cmux_token=sekrit")]);
        assert_eq!(cookies_without_token(&only), None);
        let bearer = headers(&[("proxy-authorization", "Bearer sekrit")]);
        assert_eq!(proxy_authorization_token(&bearer).unwrap(), b"sekrit");
        // user:sekrit
        let basic = headers(&[("proxy-authorization", "Basic dXNlcjpzZWtyaXQ=")]);
        assert_eq!(proxy_authorization_token(&basic).unwrap(), b"sekrit");
        assert_eq!(
            split_query_token("a=1&cmux_token=sekrit&b=2"),
            Some(("sekrit".into(), "a=1&b=2".into()))
        );
        assert_eq!(split_query_token("a=1"), None);
        assert_eq!(without_query_token("/a?x=1&cmux_token=s&y=2"), "/a?x=1&y=2");
        assert_eq!(without_query_token("/a?cmux_token=s&cmux_token=t"), "/a");
        assert_eq!(without_query_token("/a?x=1"), "/a?x=1");
        assert_eq!(without_query_token("/a"), "/a");
    }
}
