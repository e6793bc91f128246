//! The admin listener: health, metrics, version, and which ports each workspace has
//! open. A separate pingora service on its own address (default 127.0.0.1:9091), so it
//! is handed over on a graceful upgrade like the main listener.

use super::kinds::RequestKind;
use super::machine_answers::machines_json;
use super::metrics::Metrics;
use super::ports;
use super::tunnels::Tunnels;
use crate::edge::MachineBook;
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const TEXT: &str = "text/plain; charset=utf-8";

/// Answers the admin endpoints.
pub struct AdminApp {
    pub metrics: Arc<Metrics>,
    pub tunnels: Arc<Tunnels>,
    /// Set once shutdown (or an upgrade hand-over) has begun.
    pub draining: Arc<AtomicBool>,
    /// Edge mode: the machines DNS was asked about (`GET /machines`).
    pub machines: Option<Arc<MachineBook>>,
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

fn json_response((status, value): ports::JsonAnswer) -> Response<Vec<u8>> {
    respond(status, "application/json", value.to_string() + "\n")
}

impl AdminApp {
    fn health(&self) -> Response<Vec<u8>> {
        if self.draining.load(Ordering::Relaxed) {
            respond(503, TEXT, "shutting down\n")
        } else {
            respond(200, TEXT, "ok\n")
        }
    }

    fn metrics(&self) -> Response<Vec<u8>> {
        for kind in [RequestKind::WebSocket, RequestKind::Connect] {
            self.metrics
                .open_tunnels
                .with_label_values(&[kind.as_str()])
                .set(self.tunnels.open_count(kind));
        }
        let content_type = "text/plain; version=0.0.4; charset=utf-8";
        respond(200, content_type, self.metrics.render())
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return respond(405, TEXT, "only GET\n");
        }
        match req.uri.path() {
            "/healthz" => self.health(),
            "/metrics" => self.metrics(),
            "/version" => respond(200, TEXT, format!("cmux-proxy {VERSION}\n")),
            "/ports" => json_response(ports::all_workspaces()),
            "/machines" => match &self.machines {
                Some(book) => json_response((200, machines_json(book))),
                None => respond(
                    404,
                    TEXT,
                    "not an edge: /machines is served in mode: edge\n",
                ),
            },
            path => match ports::workspace_from_path(path) {
                Some(name) => json_response(ports::one_workspace(name)),
                None => respond(404, TEXT, "not found\n"),
            },
        }
    }
}
