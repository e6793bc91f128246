//! From a request's routing values to its target, by the contract's rules.

use super::address::workspace_address;
use super::error::RouteError;
use super::parse::{parse_port, split_localhost_host, Agreed};
use super::target::Target;
use std::net::{IpAddr, SocketAddr};

/// The routing inputs of one request, borrowed from its head: the value its copies of the
/// port header agree on (a value that is not UTF-8 shows as
/// U+FFFD), the same for the workspace header, and the Host.
#[derive(Debug, Clone)]
pub struct RouteRequest<'a> {
    pub port: Agreed<'a>,
    pub workspace: Agreed<'a>,
    pub host: Option<&'a str>,
}

/// Resolves a request to its target. `default_host` is `--upstream-host`, already
/// resolved to an address at start-up. The headers win over a
/// `<workspace>-<port>.localhost` Host, each for its own part.
pub fn resolve(req: RouteRequest<'_>, default_host: IpAddr) -> Result<Target, RouteError> {
    let from_host = req.host.and_then(split_localhost_host);
    let port_raw = match req.port {
        Err((a, b)) => return Err(RouteError::ConflictingPorts(a, b)),
        Ok(Some(raw)) => raw,
        Ok(None) => match from_host {
            Some((_, raw)) => raw,
            None => return Err(RouteError::MissingPort),
        },
    };
    let port = parse_port(port_raw).ok_or_else(|| RouteError::BadPort(port_raw.to_string()))?;
    let workspace = match req.workspace {
        Err((a, b)) => return Err(RouteError::ConflictingWorkspaces(a, b)),
        Ok(Some(name)) => Some(name),
        Ok(None) => from_host.map(|(ws, _)| ws),
    };
    let ip = match workspace {
        Some(name) => IpAddr::V4(workspace_address(name)?),
        None => default_host,
    };
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        workspace: workspace.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::parse::single_value;
    use std::net::Ipv4Addr;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn route(port: &[&str], ws: &[&str], host: Option<&str>) -> Result<Target, RouteError> {
        resolve(
            RouteRequest {
                port: single_value(port.iter().copied()),
                workspace: single_value(ws.iter().copied()),
                host,
            },
            LOCAL,
        )
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
