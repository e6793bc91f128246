//! The admin listener's `/ports` and `/workspaces/{name}/ports`: which ports each
//! workspace has open, and which process holds them.

use crate::error::ProxyError;
use crate::host::{self, Listener, Owner};
use crate::routing::{is_workspace_ip, workspace_address, workspace_number};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// A status and a JSON body.
pub type JsonAnswer = (u16, serde_json::Value);

/// `/workspaces/{name}/ports` gives `name`.
pub fn workspace_from_path(path: &str) -> Option<&str> {
    path.strip_prefix("/workspaces/")?.strip_suffix("/ports")
}

/// The open ports of one workspace.
pub fn one_workspace(name: &str) -> JsonAnswer {
    let ip = match workspace_address(name) {
        Ok(ip) => IpAddr::V4(ip),
        Err(e) => {
            let row = ProxyError::from(e).describe();
            let body = json!({"code": row.code, "message": row.message, "hint": row.hint});
            return (400, body);
        }
    };
    let listeners: Vec<Listener> = host::listening()
        .into_iter()
        .filter(|l| l.addr.ip() == ip)
        .collect();
    let owners = host::socket_owners();
    let ports = port_entries(&listeners, &owners);
    let body = json!({ "workspace": name, "address": ip.to_string(), "ports": ports });
    (200, body)
}

/// The open ports of every workspace address that has one.
pub fn all_workspaces() -> JsonAnswer {
    let owners = host::socket_owners();
    let mut by_ip: BTreeMap<IpAddr, Vec<Listener>> = BTreeMap::new();
    for l in host::listening() {
        if is_workspace_ip(l.addr.ip()) {
            by_ip.entry(l.addr.ip()).or_default().push(l);
        }
    }
    let workspaces: Vec<serde_json::Value> = by_ip
        .iter()
        .map(|(ip, listeners)| {
            json!({
                "address": ip.to_string(),
                "workspace": workspace_number(*ip).map(|n| format!("workspace-{n}")),
                "ports": port_entries(listeners, &owners),
            })
        })
        .collect();
    (200, json!({ "workspaces": workspaces }))
}

fn port_entries(listeners: &[Listener], owners: &HashMap<u64, Owner>) -> Vec<serde_json::Value> {
    let mut seen: BTreeMap<u16, &Listener> = BTreeMap::new();
    for l in listeners {
        seen.entry(l.addr.port()).or_insert(l);
    }
    seen.values()
        .map(|l| {
            let owner = owners.get(&l.inode);
            json!({
                "port": l.addr.port(),
                "listen": l.addr.to_string(),
                "pid": owner.map(|o| o.pid),
                "command": owner.map(|o| o.command.clone()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_paths() {
        assert_eq!(
            workspace_from_path("/workspaces/workspace-3/ports"),
            Some("workspace-3")
        );
        assert_eq!(workspace_from_path("/workspaces/ports"), None);
        assert_eq!(workspace_from_path("/ports"), None);
    }
}
