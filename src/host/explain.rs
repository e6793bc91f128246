//! What a refused connection means, from what listens on the machine.
//!
//! "nothing listens on 127.18.0.7:5173, but a server listens on [::1]:5173, outside the
//! workspace" is the most common dev-server mistake, so a 502 says it.

use super::exposure::Disclosure;
use super::listening::listening_on_port;
use crate::routing::{is_workspace_ip, workspace_number, Target};
use std::net::SocketAddr;

/// What to do when nothing listens on a port at all.
pub const START_OR_WAIT: &str =
    "start the server, or if it is restarting, retry or send X-Cmux-Wait-Ms to wait for it";

/// Why a connection to a target was refused, as facts and a hint for the developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalExplanation {
    /// Other sockets listening on the target's port.
    pub listeners: Vec<SocketAddr>,
    /// One sentence: what to do.
    pub hint: String,
}

/// Explains a refused connection to `target`, naming only the listeners `disclosure`
/// shows. Listing the sockets is blocking work that grows with every socket on the
/// machine, so it runs on the blocking pool, never on a proxy worker thread.
pub async fn explain_refused(target: &Target, disclosure: &Disclosure<'_>) -> RefusalExplanation {
    let port = target.addr.port();
    // The connection was refused before this call: any answer read from now on is as
    // fresh as the refusal.
    let asked = std::time::Instant::now();
    let listeners = tokio::task::spawn_blocking(move || listening_on_port(port, asked))
        .await
        .unwrap_or_default();
    let others = listeners
        .into_iter()
        .filter(|a| *a != target.addr && disclosure.shows(a))
        .collect();
    explain_refusal(target, others)
}

fn listed(addrs: &[&SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Explains a refused connection from the other sockets that listen on the same port.
pub fn explain_refusal(target: &Target, listeners: Vec<SocketAddr>) -> RefusalExplanation {
    let ip = target.addr.ip();
    let outside: Vec<&SocketAddr> = listeners
        .iter()
        .filter(|a| !is_workspace_ip(a.ip()))
        .collect();
    let other_workspaces: Vec<&SocketAddr> = listeners
        .iter()
        .filter(|a| is_workspace_ip(a.ip()) && a.ip() != ip)
        .collect();
    let hint = if listeners.is_empty() {
        format!(
            "nothing listens on port {} on this machine: {START_OR_WAIT}",
            target.addr.port()
        )
    } else if target.workspace.is_some() && !outside.is_empty() {
        format!(
            "a server listens on {}, outside the workspace: start it with the workspace shim or bind it to the workspace address {ip}",
            listed(&outside),
        )
    } else if target.workspace.is_some() {
        format!(
            "a server listens on {}, another workspace's address: check the workspace name",
            listed(&other_workspaces)
        )
    } else if !other_workspaces.is_empty() {
        let names: Vec<String> = other_workspaces
            .iter()
            .map(|a| match workspace_number(a.ip()) {
                Some(n) => format!("{a} (workspace-{n})"),
                None => a.to_string(),
            })
            .collect();
        format!(
            "a server listens on {}: name its workspace with X-Cmux-Workspace-Internal",
            names.join(", ")
        )
    } else {
        format!(
            "a server listens on {}, not on {ip}: point --upstream-host at it or bind the server to {ip}",
            listed(&outside),
        )
    };
    RefusalExplanation { listeners, hint }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_a_server_outside_the_workspace() {
        let target = Target {
            addr: "127.18.0.7:5173".parse().unwrap(),
            workspace: Some("workspace-7".into()),
        };
        let e = explain_refusal(&target, vec!["[::1]:5173".parse().unwrap()]);
        assert!(
            e.hint.contains("[::1]:5173, outside the workspace"),
            "{}",
            e.hint
        );
        assert!(e.hint.contains("127.18.0.7"), "{}", e.hint);
        let e = explain_refusal(&target, vec![]);
        assert!(
            e.hint.starts_with("nothing listens on port 5173"),
            "{}",
            e.hint
        );
        let e = explain_refusal(&target, vec!["127.18.0.8:5173".parse().unwrap()]);
        assert!(e.hint.contains("another workspace"), "{}", e.hint);
    }

    #[test]
    fn explains_a_server_in_a_workspace_for_a_plain_request() {
        let target = Target {
            addr: "127.0.0.1:3000".parse().unwrap(),
            workspace: None,
        };
        let e = explain_refusal(&target, vec!["127.18.0.7:3000".parse().unwrap()]);
        assert!(e.hint.contains("(workspace-7)"), "{}", e.hint);
        assert!(e.hint.contains("X-Cmux-Workspace-Internal"), "{}", e.hint);
    }
}
