//! Parsing header values: ports, waits, repeated headers and the `.localhost` Host form.

use super::error::RouteError;
use http::{HeaderMap, HeaderName, HeaderValue};

/// A header value as text. A value that is not UTF-8 shows as U+FFFD: it can still be
/// named in an error, and never equals a valid value.
pub fn header_text(value: &HeaderValue) -> &str {
    std::str::from_utf8(value.as_bytes()).unwrap_or("\u{FFFD}")
}

/// The one value a possibly repeated header's copies agree on (`None`: absent), or the
/// first two that differ.
pub type Agreed<'a> = Result<Option<&'a str>, (String, String)>;

/// The value the copies of header `name` agree on (see [`single_value`]).
pub fn agreed<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Agreed<'a> {
    single_value(headers.get_all(name).iter().map(header_text))
}

/// Trims spaces and tabs, as HTTP allows around a field value.
pub fn trim_blank(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Parses a port value: trimmed, decimal digits only (leading zeros allowed), 1..=65535.
pub fn parse_port(raw: &str) -> Option<u16> {
    let digits = trim_blank(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 5 {
        return None;
    }
    match significant.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Some(n as u16),
        _ => None,
    }
}

/// Parses the wait header: trimmed, whole milliseconds.
pub fn parse_wait_ms(raw: &str) -> Result<u64, RouteError> {
    let v = trim_blank(raw);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RouteError::BadWait(raw.to_string()));
    }
    // Absurdly long values saturate; the wait policy caps them anyway.
    Ok(v.parse::<u64>().unwrap_or(u64::MAX))
}

/// Agrees on one value for a header that may be repeated: all copies must match
/// (after trimming), else the two first different values are returned. Takes the values
/// as they come from the header map, with no list built per request.
pub fn single_value<'a>(values: impl IntoIterator<Item = &'a str>) -> Agreed<'a> {
    let mut chosen: Option<&str> = None;
    for v in values {
        let v = trim_blank(v);
        match chosen {
            None => chosen = Some(v),
            Some(c) if c == v => {}
            Some(c) => return Err((c.to_string(), v.to_string())),
        }
    }
    Ok(chosen)
}

/// Splits a `<workspace>-<port>.localhost[:listen-port]` Host into its workspace and port
/// parts (both unvalidated). Any other Host gives `None`.
pub fn split_localhost_host(host: &str) -> Option<(&str, &str)> {
    let host = trim_blank(host);
    // Drop an optional `:<listen-port>` suffix.
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    const SUFFIX: &str = ".localhost";
    if name.len() <= SUFFIX.len() || !name[name.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX)
    {
        return None;
    }
    let label = &name[..name.len() - SUFFIX.len()];
    let (workspace, port) = label.rsplit_once('-')?;
    if workspace.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((workspace, port))
}

/// A header map from (name, value) pairs, in order, repeats kept: for unit tests.
#[cfg(test)]
pub fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port("3000"), Some(3000));
        assert_eq!(parse_port(" \t3000\t "), Some(3000));
        assert_eq!(parse_port("0003000"), Some(3000));
        assert_eq!(parse_port("65535"), Some(65535));
        assert_eq!(parse_port("000000000000000000001"), Some(1));
        for bad in [
            "",
            " ",
            "0",
            "000",
            "65536",
            "99999999999999999999",
            "-1",
            "+80",
            "80a",
            "8 0",
            "0x50",
            "３０００",
        ] {
            assert_eq!(parse_port(bad), None, "{bad:?}");
        }
    }
}
