//! The name-to-address rule and its inverse: `workspace-7` is 127.18.0.7.

use super::error::RouteError;
use super::parse::trim_blank;
use std::net::{IpAddr, Ipv4Addr};

const FNV_OFFSET: u32 = 0x811C_9DC5;
const FNV_PRIME: u32 = 0x0100_0193;

/// Maps a workspace name to its loopback address.
///
/// `workspace-7` is 127.18.0.7; a name without trailing digits is hashed (FNV-1a of the
/// lower-cased name, low 16 bits). Names are never wrapped: `workspace-65537` is refused
/// rather than aliasing `workspace-1`.
pub fn workspace_address(name: &str) -> Result<Ipv4Addr, RouteError> {
    let refuse = |reason| RouteError::BadWorkspace {
        name: name.to_string(),
        reason,
    };
    let trimmed = trim_blank(name);
    if trimmed.is_empty() {
        return Err(refuse("the name is empty"));
    }
    if !trimmed
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    {
        return Err(refuse(
            "only ASCII letters, digits, '.', '_', '-' and '/' are allowed",
        ));
    }
    let base = trimmed.rsplit('/').next().unwrap_or_default();
    if base.is_empty() {
        return Err(refuse("the name after the last '/' is empty"));
    }
    let n = match trailing_number(base) {
        Some(Ok(n)) => n,
        Some(Err(())) => return Err(refuse("its trailing number must be from 1 to 65535")),
        None => fnv1a_lowercase(base) & 0xFFFF,
    };
    Ok(Ipv4Addr::new(127, 18, (n >> 8) as u8, (n & 0xFF) as u8))
}

/// The number a name ends in: `None` without trailing digits, `Err` out of 1..=65535.
fn trailing_number(base: &str) -> Option<Result<u32, ()>> {
    let digits_start = base
        .bytes()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    if digits_start == base.len() {
        return None;
    }
    let number = base[digits_start..].trim_start_matches('0');
    Some(match number.parse::<u32>() {
        Ok(n) if number.len() <= 5 && (1..=65535).contains(&n) => Ok(n),
        _ => Err(()),
    })
}

fn fnv1a_lowercase(name: &str) -> u32 {
    name.bytes().fold(FNV_OFFSET, |hash, b| {
        (hash ^ u32::from(b.to_ascii_lowercase())).wrapping_mul(FNV_PRIME)
    })
}

/// Whether an address is a workspace address (127.18.0.0/16).
pub fn is_workspace_ip(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 127 && v4.octets()[1] == 18)
}

/// The numeric workspace name of a workspace address: 127.18.0.7 is `workspace-7`.
/// (A hashed name cannot be recovered from its address.)
pub fn workspace_number(ip: IpAddr) -> Option<u32> {
    match ip {
        IpAddr::V4(v4) if is_workspace_ip(ip) => {
            let [_, _, hi, lo] = v4.octets();
            Some(u32::from(hi) << 8 | u32::from(lo))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's name-rule vectors (`spec/workspace-addresses.tsv`), which the
    /// shim's tests and the end-to-end suite read too; `$CMUX_SPEC_DIR` points elsewhere.
    fn vectors_path() -> std::path::PathBuf {
        let dir = match std::env::var_os("CMUX_SPEC_DIR") {
            Some(dir) => dir.into(),
            None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("spec"),
        };
        dir.join("workspace-addresses.tsv")
    }

    #[test]
    fn name_rule_matches_the_spec_vectors() {
        let path = vectors_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut rows = 0;
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (name, expected) = line.split_once('\t').expect("name<TAB>address");
            let name = name
                .strip_prefix('|')
                .and_then(|n| n.strip_suffix('|'))
                .expect("name between bars");
            let got = workspace_address(name);
            if expected == "error" {
                assert!(got.is_err(), "{name:?} must be refused, got {got:?}");
            } else {
                assert_eq!(
                    got.as_ref().map(ToString::to_string).ok(),
                    Some(expected.to_string()),
                    "{name:?}"
                );
            }
            rows += 1;
        }
        assert!(
            rows >= 30,
            "only {rows} vectors read from {}",
            path.display()
        );
    }

    #[test]
    fn inverse_of_numeric_names() {
        let ip = IpAddr::V4(workspace_address("workspace-258").unwrap());
        assert_eq!(workspace_number(ip), Some(258));
        assert_eq!(workspace_number("127.0.0.1".parse().unwrap()), None);
        assert!(!is_workspace_ip("::1".parse().unwrap()));
    }
}
