//! The admin listener: health, metrics, version, and which ports each workspace has
//! open. A separate pingora service on its own address (default 127.0.0.1:9091), so it
//! is handed over on a graceful upgrade like the main listener.

use crate::metrics::Metrics;
use crate::route;
use crate::sockets::{self, Listener};
use crate::tunnels::{TunnelKind, Tunnels};
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Answers the admin endpoints.
pub struct AdminApp {
    pub metrics: Arc<Metrics>,
    pub tunnels: Arc<Tunnels>,
    /// Set once shutdown (or an upgrade hand-over) has begun.
    pub draining: Arc<AtomicBool>,
}

fn respond(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response<Vec<u8>> {
    let body = body.into();
    Response::builder()
        .status(status)
        .header("Content-Type", content_type)
        .header("Content-Length", body.len())
        .header("Cache-Control", "no-store")
        .body(body)
        .expect("valid response")
}

fn json_response(status: u16, value: serde_json::Value) -> Response<Vec<u8>> {
    respond(status, "application/json", value.to_string() + "\n")
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return respond(405, "text/plain; charset=utf-8", "only GET\n");
        }
        let path = req.uri.path().to_string();
        match path.as_str() {
            "/healthz" => {
                if self.draining.load(Ordering::Relaxed) {
                    respond(503, "text/plain; charset=utf-8", "shutting down\n")
                } else {
                    respond(200, "text/plain; charset=utf-8", "ok\n")
                }
            }
            "/metrics" => {
                for kind in [TunnelKind::WebSocket, TunnelKind::Connect] {
                    self.metrics
                        .open_tunnels
                        .with_label_values(&[kind.as_str()])
                        .set(self.tunnels.open_count(kind));
                }
                respond(
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics.render(),
                )
            }
            "/version" => respond(
                200,
                "text/plain; charset=utf-8",
                format!("cmux-proxy {VERSION}\n"),
            ),
            "/ports" => json_response(200, all_workspace_ports()),
            _ => match workspace_from_path(&path) {
                Some(name) => workspace_ports(name),
                None => respond(404, "text/plain; charset=utf-8", "not found\n"),
            },
        }
    }
}

/// `/workspaces/{name}/ports` gives `name`.
fn workspace_from_path(path: &str) -> Option<&str> {
    path.strip_prefix("/workspaces/")?.strip_suffix("/ports")
}

fn workspace_ports(name: &str) -> Response<Vec<u8>> {
    let ip = match route::workspace_address(name) {
        Ok(ip) => IpAddr::V4(ip),
        Err(e) => {
            return json_response(
                400,
                json!({"code": e.code(), "message": e.to_string(), "hint": e.hint()}),
            )
        }
    };
    let listeners: Vec<Listener> = sockets::listening()
        .into_iter()
        .filter(|l| l.addr.ip() == ip)
        .collect();
    let owners = socket_owners();
    json_response(
        200,
        json!({
            "workspace": name,
            "address": ip.to_string(),
            "ports": port_entries(&listeners, &owners),
        }),
    )
}

fn all_workspace_ports() -> serde_json::Value {
    let owners = socket_owners();
    let mut by_ip: BTreeMap<IpAddr, Vec<Listener>> = BTreeMap::new();
    for l in sockets::listening() {
        if sockets::is_workspace_ip(l.addr.ip()) {
            by_ip.entry(l.addr.ip()).or_default().push(l);
        }
    }
    let workspaces: Vec<serde_json::Value> = by_ip
        .iter()
        .map(|(ip, listeners)| {
            json!({
                "address": ip.to_string(),
                "workspace": sockets::workspace_number(*ip).map(|n| format!("workspace-{n}")),
                "ports": port_entries(listeners, &owners),
            })
        })
        .collect();
    json!({ "workspaces": workspaces })
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
                "listen": SocketAddr::to_string(&l.addr),
                "pid": owner.map(|o| o.pid),
                "command": owner.map(|o| o.command.clone()),
            })
        })
        .collect()
}

/// The process that holds a socket.
struct Owner {
    pid: u32,
    command: String,
}

/// Socket inode to owning process, from `/proc/*/fd` (processes we may not inspect are
/// skipped, so their sockets show no owner).
fn socket_owners() -> HashMap<u64, Owner> {
    let mut owners = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return owners;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let inode = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(inode) = inode {
                owners.entry(inode).or_insert_with(|| Owner {
                    pid,
                    command: std::fs::read_to_string(entry.path().join("comm"))
                        .map(|c| c.trim().to_string())
                        .unwrap_or_default(),
                });
            }
        }
    }
    owners
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
