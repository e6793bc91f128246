//! Which machine, port and workspace a request names at an edge: the
//! `X-Cmux-Machine-Internal` header with the usual port and workspace headers, or a
//! `<workspace>-<port>--<machine>.<edge_domain>` Host. Pure functions of the head.

use super::address::workspace_address;
use super::error::RouteError;
use super::parse::{agreed, parse_port};
use super::plan::Hop;
use super::protocol;
use crate::names::{MACHINE, PORT, WAIT, WORKSPACE};
use http::HeaderMap;

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

/// Reads the machine, port and workspace of a request head at an edge, and how the
/// node is spoken to (`upgrade`: a WebSocket handshake). Headers win over the Host, each
/// for its own part, as on a node.
pub fn hop(headers: &HeaderMap, domain: Option<&str>, upgrade: bool) -> Result<Hop, RouteError> {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let parts = match (host, domain) {
        (Some(host), Some(domain)) => split_edge_host(host, domain),
        _ => None,
    };
    let machine = match agreed(headers, &MACHINE.wire) {
        Err((a, b)) => return Err(RouteError::BadMachine(format!("{a}, {b}"))),
        Ok(Some(m)) => m,
        Ok(None) => parts.map(|p| p.machine).ok_or(RouteError::MissingMachine)?,
    };
    if !valid_machine(machine) {
        return Err(RouteError::BadMachine(machine.to_string()));
    }
    let port_raw = match agreed(headers, &PORT.wire) {
        Err((a, b)) => return Err(RouteError::ConflictingPorts(a, b)),
        Ok(Some(raw)) => raw,
        Ok(None) => parts.map(|p| p.port).ok_or(RouteError::MissingPort)?,
    };
    let port = parse_port(port_raw).ok_or_else(|| RouteError::BadPort(port_raw.into()))?;
    let workspace = match agreed(headers, &WORKSPACE.wire) {
        Err((a, b)) => return Err(RouteError::ConflictingWorkspaces(a, b)),
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
        wait: headers.get(&WAIT.wire).cloned(),
        protocol: protocol::to_node(headers, upgrade),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::parse::header_map as headers;

    const DOMAIN: Option<&str> = Some("edge.example");

    #[test]
    fn host_forms() {
        let h = hop(
            &headers(&[("host", "workspace-7-5173--m1.edge.example")]),
            DOMAIN,
            false,
        )
        .unwrap();
        assert_eq!(h.machine, "m1");
        assert_eq!(h.port, 5173);
        assert_eq!(h.workspace.as_deref(), Some("workspace-7"));
        let h = hop(
            &headers(&[("host", "3000--Node-2.EDGE.example.:8443")]),
            DOMAIN,
            false,
        )
        .unwrap();
        assert_eq!(
            (h.machine.as_str(), h.port, h.workspace),
            ("node-2", 3000, None)
        );
        // The machine is what follows the last `--`.
        let h = hop(
            &headers(&[("host", "ws--a-3000--m9.edge.example")]),
            DOMAIN,
            false,
        );
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
            false,
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
            false,
        );
        assert!(h.is_ok());
    }

    #[test]
    fn errors() {
        let e = |pairs: &[(&str, &str)]| hop(&headers(pairs), DOMAIN, false).unwrap_err();
        assert_eq!(e(&[("host", "example.com")]), RouteError::MissingMachine);
        assert_eq!(
            e(&[("host", "a.b--m.edge.example")]),
            RouteError::MissingMachine
        );
        assert_eq!(
            e(&[
                ("x-cmux-machine-internal", "bad_name"),
                ("x-cmux-port-internal", "1")
            ]),
            RouteError::BadMachine("bad_name".into())
        );
        assert_eq!(
            e(&[("host", "3000--m-.edge.example")]),
            RouteError::BadMachine("m-".into())
        );
        let long = "m".repeat(64);
        assert!(matches!(
            e(&[("x-cmux-machine-internal", &long)]),
            RouteError::BadMachine(_)
        ));
        assert_eq!(
            e(&[("x-cmux-machine-internal", "m1")]),
            RouteError::MissingPort
        );
        assert!(matches!(
            e(&[("host", "99999--m1.edge.example")]),
            RouteError::BadPort(_)
        ));
        assert!(matches!(
            e(&[("host", "workspace-99999-3000--m1.edge.example")]),
            RouteError::BadWorkspace { .. }
        ));
    }
}
