//! Routing: from a request's headers to the `HOST:PORT` it is meant for.
//!
//! Everything here is a pure function over header values, so the same rules serve the
//! HTTP path, the WebSocket path and the CONNECT tunnel, and unit tests need no sockets.
//! The rules are those of the routing contract, section 1.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Header that names the target port (required unless the Host names it).
pub const PORT_HEADER: &str = "x-cmux-port-internal";
/// Header that names the target workspace.
pub const WORKSPACE_HEADER: &str = "x-cmux-workspace-internal";
/// Header that asks the proxy to wait this many milliseconds for a closed port to open.
pub const WAIT_HEADER: &str = "x-cmux-wait-ms";
/// Spelling used in messages shown to people.
pub const WAIT_HEADER_DISPLAY: &str = "X-Cmux-Wait-Ms";
/// Spelling used in messages shown to people.
pub const PORT_HEADER_DISPLAY: &str = "X-Cmux-Port-Internal";
/// Spelling used in messages shown to people.
pub const WORKSPACE_HEADER_DISPLAY: &str = "X-Cmux-Workspace-Internal";

const FNV_OFFSET: u32 = 0x811C_9DC5;
const FNV_PRIME: u32 = 0x0100_0193;

/// Why a request could not be routed. Each maps to a 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Neither the port header nor a `<workspace>-<port>.localhost` Host.
    MissingPort,
    /// The port header's value is not a decimal number in 1..=65535.
    BadPort(String),
    /// The port header appears more than once with different values.
    ConflictingPorts(String, String),
    /// The workspace name was refused by the name rule.
    BadWorkspace { name: String, reason: &'static str },
    /// The workspace header appears more than once with different values.
    ConflictingWorkspaces(String, String),
    /// The wait header's value is not a whole number of milliseconds.
    BadWait(String),
}

impl RouteError {
    /// Stable machine-readable code, as used in JSON error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            RouteError::MissingPort => "missing_port",
            RouteError::BadPort(_) | RouteError::ConflictingPorts(..) => "bad_port",
            RouteError::BadWorkspace { .. } | RouteError::ConflictingWorkspaces(..) => {
                "bad_workspace"
            }
            RouteError::BadWait(_) => "bad_wait",
        }
    }

    /// What the client can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            RouteError::MissingPort => {
                "send X-Cmux-Port-Internal: <port>, or use a <workspace>-<port>.localhost host name"
            }
            RouteError::BadPort(_) | RouteError::ConflictingPorts(..) => {
                "send one decimal port from 1 to 65535"
            }
            RouteError::BadWorkspace { .. } | RouteError::ConflictingWorkspaces(..) => {
                "use a name of ASCII letters, digits, '.', '_', '-' and '/' ending in 1-65535 or in a letter, such as workspace-7"
            }
            RouteError::BadWait(_) => "send a whole number of milliseconds, such as 2000",
        }
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::MissingPort => {
                write!(f, "missing required header: {PORT_HEADER_DISPLAY}")
            }
            RouteError::BadPort(v) => write!(
                f,
                "invalid {PORT_HEADER_DISPLAY} header {v:?}: expected a port number from 1 to 65535"
            ),
            RouteError::ConflictingPorts(a, b) => write!(
                f,
                "conflicting {PORT_HEADER_DISPLAY} headers: {a:?} and {b:?}; send it once"
            ),
            RouteError::BadWorkspace { name, reason } => {
                write!(f, "invalid workspace name {name:?}: {reason}")
            }
            RouteError::ConflictingWorkspaces(a, b) => write!(
                f,
                "conflicting {WORKSPACE_HEADER_DISPLAY} headers: {a:?} and {b:?}; send it once"
            ),
            RouteError::BadWait(v) => write!(
                f,
                "invalid {WAIT_HEADER_DISPLAY} header {v:?}: expected milliseconds"
            ),
        }
    }
}

impl std::error::Error for RouteError {}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// The workspace name as the client gave it (trimmed), if one was given.
    pub workspace: Option<String>,
}

impl Target {
    /// `HOST:PORT` plus the workspace, for messages: `127.18.0.7:3000 (workspace-7)`.
    pub fn describe(&self) -> String {
        match &self.workspace {
            Some(ws) => format!("{} ({ws})", self.addr),
            None => self.addr.to_string(),
        }
    }
}

fn trim_blank(s: &str) -> &str {
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

/// Parses the wait header: the first value, trimmed, whole milliseconds.
pub fn parse_wait_ms(raw: &str) -> Result<u64, RouteError> {
    let v = trim_blank(raw);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RouteError::BadWait(raw.to_string()));
    }
    // Absurdly long values saturate; the caller caps them anyway.
    Ok(v.parse::<u64>().unwrap_or(u64::MAX))
}

/// Maps a workspace name to its loopback address by the contract's rule.
///
/// `workspace-7` is 127.18.0.7; a name without trailing digits is hashed (FNV-1a, low 16
/// bits). Names are never wrapped: `workspace-65537` is refused rather than aliasing
/// `workspace-1`.
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
    let digits_start = base
        .bytes()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let n = if digits_start < base.len() {
        let number = base[digits_start..].trim_start_matches('0');
        match number.parse::<u32>() {
            Ok(n) if number.len() <= 5 && (1..=65535).contains(&n) => n,
            _ => return Err(refuse("its trailing number must be from 1 to 65535")),
        }
    } else {
        fnv1a_lowercase(base) & 0xFFFF
    };
    Ok(Ipv4Addr::new(127, 18, (n >> 8) as u8, (n & 0xFF) as u8))
}

fn fnv1a_lowercase(name: &str) -> u32 {
    name.bytes().fold(FNV_OFFSET, |hash, b| {
        (hash ^ u32::from(b.to_ascii_lowercase())).wrapping_mul(FNV_PRIME)
    })
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

/// All values of one header, as text. A value that is not valid UTF-8 is kept as a lossy
/// string so that it can still be named in the error.
pub type HeaderValues<'a> = &'a [&'a str];

/// Agrees on one value for a header that may be repeated: all copies must match
/// (after trimming), else the two first different values are returned.
fn single_value<'a>(values: HeaderValues<'a>) -> Result<Option<&'a str>, (String, String)> {
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

/// The routing inputs of one request, borrowed from its header.
#[derive(Debug, Default, Clone, Copy)]
pub struct RouteRequest<'a> {
    pub port_values: HeaderValues<'a>,
    pub workspace_values: HeaderValues<'a>,
    pub host: Option<&'a str>,
}

/// Resolves a request to its target. `default_host` is `--upstream-host`, already
/// resolved to an address at start-up.
pub fn resolve(req: RouteRequest<'_>, default_host: IpAddr) -> Result<Target, RouteError> {
    let from_host = req.host.and_then(split_localhost_host);

    let port = match single_value(req.port_values) {
        Err((a, b)) => return Err(RouteError::ConflictingPorts(a, b)),
        Ok(Some(raw)) => parse_port(raw).ok_or_else(|| RouteError::BadPort(raw.to_string()))?,
        Ok(None) => match from_host {
            Some((_, raw)) => {
                parse_port(raw).ok_or_else(|| RouteError::BadPort(raw.to_string()))?
            }
            None => return Err(RouteError::MissingPort),
        },
    };

    let workspace = match single_value(req.workspace_values) {
        Err((a, b)) => return Err(RouteError::ConflictingWorkspaces(a, b)),
        Ok(Some(name)) => Some(name),
        Ok(None) => from_host.map(|(ws, _)| ws),
    };

    match workspace {
        Some(name) => {
            let ip = workspace_address(name)?;
            Ok(Target {
                addr: SocketAddr::new(IpAddr::V4(ip), port),
                workspace: Some(name.to_string()),
            })
        }
        None => Ok(Target {
            addr: SocketAddr::new(default_host, port),
            workspace: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn route(port: &[&str], ws: &[&str], host: Option<&str>) -> Result<Target, RouteError> {
        resolve(
            RouteRequest {
                port_values: port,
                workspace_values: ws,
                host,
            },
            LOCAL,
        )
    }

    /// Every row of the shared vectors file, read at test time.
    #[test]
    fn name_rule_matches_shared_vectors() {
        let path = crate::spec_dir().join("workspace-addresses.tsv");
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

    #[test]
    fn header_routing() {
        let t = route(&["3000"], &[], None).unwrap();
        assert_eq!(t.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(t.workspace, None);
        let t = route(&["5173"], &["workspace-7"], None).unwrap();
        assert_eq!(t.addr, "127.18.0.7:5173".parse().unwrap());
        assert_eq!(t.describe(), "127.18.0.7:5173 (workspace-7)");
        // Repeated but equal values are one value.
        assert!(route(&["3000", " 3000"], &["a", "a"], None).is_ok());
    }

    #[test]
    fn header_errors() {
        assert_eq!(route(&[], &[], None), Err(RouteError::MissingPort));
        assert_eq!(
            route(&["x"], &[], None),
            Err(RouteError::BadPort("x".into()))
        );
        assert!(matches!(
            route(&["1", "2"], &[], None),
            Err(RouteError::ConflictingPorts(..))
        ));
        assert!(matches!(
            route(&["1"], &["a", "b"], None),
            Err(RouteError::ConflictingWorkspaces(..))
        ));
        assert!(matches!(
            route(&["1"], &["workspace-0"], None),
            Err(RouteError::BadWorkspace { .. })
        ));
        assert_eq!(
            RouteError::MissingPort.to_string(),
            "missing required header: X-Cmux-Port-Internal"
        );
    }

    #[test]
    fn host_fallback() {
        let t = route(&[], &[], Some("workspace-7-5173.localhost")).unwrap();
        assert_eq!(t.addr, "127.18.0.7:5173".parse().unwrap());
        let t = route(&[], &[], Some("My-App-3000.LocalHost:8080")).unwrap();
        assert_eq!(t.workspace.as_deref(), Some("My-App"));
        assert_eq!(t.addr, "127.18.64.9:3000".parse().unwrap());
        // The header wins for the port, the Host still names the workspace.
        let t = route(&["4000"], &[], Some("workspace-2-3000.localhost")).unwrap();
        assert_eq!(t.addr, "127.18.0.2:4000".parse().unwrap());
        // And the workspace header wins over the Host's workspace.
        let t = route(&[], &["workspace-3"], Some("workspace-2-3000.localhost")).unwrap();
        assert_eq!(t.addr, "127.18.0.3:3000".parse().unwrap());
        for not_ours in [
            "localhost",
            "example.com",
            "3000.localhost",
            "-3000.localhost",
            "ws-.localhost",
            "ws-3000.localhost.evil",
            "ws-3000.localhost:abc",
        ] {
            assert_eq!(
                route(&[], &[], Some(not_ours)),
                Err(RouteError::MissingPort),
                "{not_ours}"
            );
        }
        assert!(matches!(
            route(&[], &[], Some("workspace-7-70000.localhost")),
            Err(RouteError::BadPort(_))
        ));
        assert!(matches!(
            route(&[], &[], Some("workspace-0-3000.localhost")),
            Err(RouteError::BadWorkspace { .. })
        ));
    }
}
