//! The browser cookie the `?cmux_token=` visit gives: never the token itself, but a proof
//! that the bearer knew a token, bound to the Host (with its port) it was issued for and
//! to an expiry.
//!
//! Browsers send a cookie to every port of a host name, so a cookie holding the token
//! would reach any server of another workspace listening on the same name. This one is
//! `EXPIRES.MAC`, MAC = HMAC-SHA256 keyed by the token over the Host and the expiry: it
//! opens nothing on another Host, a server that receives it learns no token, and it stops
//! working when the token leaves the token file or when it expires. Keyed by the tokens
//! themselves, it survives a graceful reload (no key of the process's own to hand over).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a cookie is good for, in the browser (`Max-Age`) and here.
pub const COOKIE_MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The MAC of `host` and `expires` under `token`.
fn mac(token: &[u8], host: &str, expires: u64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token).expect("HMAC takes any key length");
    mac.update(b"cmux-proxy cookie v1\0");
    mac.update(host.to_ascii_lowercase().as_bytes());
    mac.update(b"\0");
    mac.update(expires.to_string().as_bytes());
    mac
}

/// The cookie value for `host`, issued now under `token`.
pub fn issue(token: &[u8], host: &str) -> String {
    let expires = unix_now() + COOKIE_MAX_AGE.as_secs();
    let tag = mac(token, host, expires).finalize().into_bytes();
    format!("{expires}.{}", B64.encode(tag))
}

/// Whether `value` was issued for `host` under one of `tokens` and has not expired. Every
/// token is tried, each compared in constant time (`verify_slice`).
pub fn valid<'a>(value: &[u8], host: &str, tokens: impl Iterator<Item = &'a [u8]>) -> bool {
    let Some(dot) = value.iter().position(|&b| b == b'.') else {
        return false;
    };
    let Some(expires) = std::str::from_utf8(&value[..dot])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return false;
    };
    let Ok(tag) = B64.decode(&value[dot + 1..]) else {
        return false;
    };
    if expires <= unix_now() || expires > unix_now() + COOKIE_MAX_AGE.as_secs() {
        return false;
    }
    let mut found = false;
    for token in tokens {
        found |= mac(token, host, expires).verify_slice(&tag).is_ok();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_opens_only_its_own_host_under_a_current_token() {
        let value = issue(b"tok-1", "localhost:8080");
        let tokens = [&b"other"[..], b"tok-1"];
        assert!(valid(
            value.as_bytes(),
            "localhost:8080",
            tokens.into_iter()
        ));
        assert!(valid(
            value.as_bytes(),
            "LocalHost:8080",
            tokens.into_iter()
        ));
        assert!(!valid(
            value.as_bytes(),
            "localhost:8081",
            tokens.into_iter()
        ));
        assert!(!valid(value.as_bytes(), "localhost", tokens.into_iter()));
        assert!(!valid(
            value.as_bytes(),
            "localhost:8080",
            [&b"tok-2"[..]].into_iter()
        ));
        assert!(!value.contains("tok-1"));
        assert!(!valid(b"tok-1", "localhost:8080", tokens.into_iter()));
        assert!(!valid(b"", "localhost:8080", tokens.into_iter()));
        // Expired, or claiming a longer life than a cookie gets: refused.
        let tag = |expires: u64| {
            let t = mac(b"tok-1", "h", expires).finalize().into_bytes();
            format!("{expires}.{}", B64.encode(t))
        };
        assert!(!valid(
            tag(unix_now() - 1).as_bytes(),
            "h",
            tokens.into_iter()
        ));
        let far = unix_now() + COOKIE_MAX_AGE.as_secs() + 60;
        assert!(!valid(tag(far).as_bytes(), "h", tokens.into_iter()));
        assert!(valid(
            tag(unix_now() + 60).as_bytes(),
            "h",
            tokens.into_iter()
        ));
    }
}
