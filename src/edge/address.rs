//! Which machine, port and workspace a request names at an edge: the
//! `X-Cmux-Machine-Internal` header with the usual port and workspace headers, or a
//! `<workspace>-<port>--<machine>.<edge_domain>` Host. Pure functions of the head.

use crate::routing::headers::{PORT, WAIT, WORKSPACE};
use crate::routing::{parse_port, workspace_address, RouteError};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::fmt;

/// Names the machine that holds the workspace (edge mode only).
pub static MACHINE: HeaderName = HeaderName::from_static("x-cmux-machine-internal");
pub const MACHINE_DISPLAY: &str = "X-Cmux-Machine-Internal";

/// Where an edge sends a request: the machine, and what the node is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// A valid DNS label, in lower case.
    pub machine: String,
    pub port: u16,
    pub workspace: Option<String>,
    /// `X-Cmux-Wait-Ms` as sent, for the node to honour.
    pub wait: Option<HeaderValue>,
}

/// Why a request names no machine an edge can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// Neither the header nor the Host names a machine.
    MissingMachine,
    /// The machine name is not one DNS label; the name as sent.
    BadMachine(String),
    /// The port or workspace is wrong, as on a node.
    Route(RouteError),
}

impl From<RouteError> for AddressError {
    fn from(e: RouteError) -> Self {
        AddressError::Route(e)
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::MissingMachine => write!(
                f,
                "no machine named: send {MACHINE_DISPLAY} or a <workspace>-<port>--<machine> Host"
            ),
            AddressError::BadMachine(name) => write!(
                f,
                "invalid machine name {name:?}: expected one DNS label (letters, digits, '-')"
            ),
            AddressError::Route(e) => e.fmt(f),
        }
    }
}

/// The parts of a `<workspace>-<port>--<machine>.<edge_domain>` Host, unvalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostParts<'a> {
    workspace: Option<&'a str>,
    port: &'a str,
    machine: &'a str,
}

/// Splits a Host of the edge form; any other Host gives `None`.
fn split_edge_host<'a>(host: &'a str, domain: &str) -> Option<HostParts<'a>> {
    let host = host.trim_matches(|c| c == ' ' || c == '\t');
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let domain = domain.trim_matches('.');
    let cut = name.len().checked_sub(domain.len() + 1)?;
    if !name.is_char_boundary(cut)
        || name.as_bytes()[cut] != b'.'
        || !name[cut + 1..].eq_ignore_ascii_case(domain)
    {
        return None;
    }
    let label = &name[..cut];
    if label.contains('.') {
        return None;
    }
    let (left, machine) = label.rsplit_once("--")?;
    if left.bytes().all(|b| b.is_ascii_digit()) {
        return Some(HostParts {
            workspace: None,
            port: left,
            machine,
        });
    }
    let (workspace, port) = left.rsplit_once('-')?;
    Some(HostParts {
        workspace: Some(workspace),
        port,
        machine,
    })
}

/// Whether `name` is one DNS label (RFC 1123): 1-63 letters, digits and inner hyphens.
pub fn valid_machine(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn one_value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, String> {
    let mut chosen: Option<&str> = None;
    for v in headers.get_all(name) {
        let v = std::str::from_utf8(v.as_bytes())
            .unwrap_or("\u{FFFD}")
            .trim_matches(|c| c == ' ' || c == '\t');
        match chosen {
            Some(c) if c != v => return Err(format!("{c}, {v}")),
            _ => chosen = Some(v),
        }
    }
    Ok(chosen)
}

/// Reads the machine, port and workspace of a request head. Headers win over the
/// Host, each for its own part, as on a node.
pub fn hop(headers: &HeaderMap, domain: Option<&str>) -> Result<Hop, AddressError> {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let parts = match (host, domain) {
        (Some(host), Some(domain)) => split_edge_host(host, domain),
        _ => None,
    };
    let machine = match one_value(headers, &MACHINE) {
        Err(both) => return Err(AddressError::BadMachine(both)),
        Ok(Some(m)) => m,
        Ok(None) => parts
            .map(|p| p.machine)
            .ok_or(AddressError::MissingMachine)?,
    };
    if !valid_machine(machine) {
        return Err(AddressError::BadMachine(machine.to_string()));
    }
    let port_raw = match one_value(headers, &PORT) {
        Err(both) => {
            let (a, b) = both.split_once(", ").unwrap_or_default();
            return Err(RouteError::ConflictingPorts(a.into(), b.into()).into());
        }
        Ok(Some(raw)) => raw,
        Ok(None) => parts.map(|p| p.port).ok_or(RouteError::MissingPort)?,
    };
    let port = parse_port(port_raw).ok_or_else(|| RouteError::BadPort(port_raw.into()))?;
    let workspace = match one_value(headers, &WORKSPACE) {
        Err(both) => {
            let (a, b) = both.split_once(", ").unwrap_or_default();
            return Err(RouteError::ConflictingWorkspaces(a.into(), b.into()).into());
        }
        Ok(Some(ws)) => Some(ws),
        Ok(None) => parts.and_then(|p| p.workspace),
    };
    if let Some(ws) = workspace {
        // The node checks it again; checked here so that a bad name costs no hop.
        workspace_address(ws)?;
    }
    Ok(Hop {
        machine: machine.to_ascii_lowercase(),
        port,
        workspace: workspace.map(str::to_string),
        wait: headers.get(&WAIT).cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::headers::header_map as headers;

    const DOMAIN: Option<&str> = Some("edge.example");

    #[test]
    fn host_forms() {
        let h = hop(
            &headers(&[("host", "workspace-7-5173--m1.edge.example")]),
            DOMAIN,
        )
        .unwrap();
        assert_eq!(h.machine, "m1");
        assert_eq!(h.port, 5173);
        assert_eq!(h.workspace.as_deref(), Some("workspace-7"));
        let h = hop(
            &headers(&[("host", "3000--Node-2.EDGE.example.:8443")]),
            DOMAIN,
        )
        .unwrap();
        assert_eq!(
            (h.machine.as_str(), h.port, h.workspace),
            ("node-2", 3000, None)
        );
        // The machine is what follows the last `--`.
        let h = hop(&headers(&[("host", "ws--a-3000--m9.edge.example")]), DOMAIN);
        assert_eq!(h.unwrap().workspace.as_deref(), Some("ws--a"));
    }

    #[test]
    fn header_form_wins_part_by_part() {
        let h = hop(
            &headers(&[
                ("host", "workspace-7-5173--m1.edge.example"),
                ("x-cmux-machine-internal", "m2"),
                ("x-cmux-port-internal", "3000"),
                ("x-cmux-wait-ms", "500"),
            ]),
            DOMAIN,
        )
        .unwrap();
        assert_eq!((h.machine.as_str(), h.port), ("m2", 3000));
        assert_eq!(h.workspace.as_deref(), Some("workspace-7"));
        assert_eq!(h.wait.unwrap(), "500");
        let h = hop(
            &headers(&[
                ("x-cmux-machine-internal", "m2"),
                ("x-cmux-port-internal", "1"),
            ]),
            None,
        );
        assert!(h.is_ok());
    }

    #[test]
    fn errors() {
        let e = |pairs: &[(&str, &str)]| hop(&headers(pairs), DOMAIN).unwrap_err();
        assert_eq!(e(&[("host", "example.com")]), AddressError::MissingMachine);
        assert_eq!(
            e(&[("host", "a.b--m.edge.example")]),
            AddressError::MissingMachine
        );
        assert_eq!(
            e(&[
                ("x-cmux-machine-internal", "bad_name"),
                ("x-cmux-port-internal", "1")
            ]),
            AddressError::BadMachine("bad_name".into())
        );
        assert_eq!(
            e(&[("host", "3000--m-.edge.example")]),
            AddressError::BadMachine("m-".into())
        );
        let long = "m".repeat(64);
        assert!(matches!(
            e(&[("x-cmux-machine-internal", &long)]),
            AddressError::BadMachine(_)
        ));
        assert_eq!(
            e(&[("x-cmux-machine-internal", "m1")]),
            AddressError::Route(RouteError::MissingPort)
        );
        assert!(matches!(
            e(&[("host", "99999--m1.edge.example")]),
            AddressError::Route(RouteError::BadPort(_))
        ));
        assert!(matches!(
            e(&[("host", "workspace-99999-3000--m1.edge.example")]),
            AddressError::Route(_)
        ));
    }
}
