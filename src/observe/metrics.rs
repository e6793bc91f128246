//! Prometheus metrics, rendered by the admin endpoint's `/metrics`.
//!
//! Labels are bounded: `kind` and `status` classes are fixed sets, and the opt-in
//! per-target labels (`workspace`, `port`) are capped so that a port scan through the
//! proxy cannot grow memory without limit.

use super::connect_failure::ConnectFailure;
use super::entry::Entry;
use super::kinds::{EndReason, RequestKind};
use super::machines::{PerMachine, MACHINE_UNKNOWN, UNKNOWN_MACHINE_LABEL};
use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashSet;
use std::sync::Mutex;

/// Distinct (workspace, port) label sets kept before the rest count under `other`.
pub const MAX_TARGET_LABEL_SETS: usize = 1000;

/// Buckets of the request duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// Status classes, as label values, indexed by `status / 100` (0 and out of range:
/// `none`).
const CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// The refusals of the proxy's policies, counted by code (as in the access log).
const REFUSALS: [&str; 6] = [
    "unauthorized",
    "client_forbidden",
    "target_forbidden",
    "overloaded",
    "loop_detected",
    "host_not_allowed",
];

/// The metrics' settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Whether finished requests are also counted by `workspace` and `port` (capped;
    /// `metrics_per_target`).
    pub per_target: bool,
}

/// Label children resolved once at start-up: recording a request is then a few atomic
/// additions, with no label hashing or registry lock on the hot path.
struct Resolved {
    requests: [[IntCounter; 6]; 3],
    duration: [Histogram; 3],
    bytes_in: IntCounter,
    bytes_out: IntCounter,
}

/// Every metric the proxy exports.
pub struct Metrics {
    resolved: Resolved,
    registry: Registry,
    pub connect_failures: IntCounterVec,
    pub open_tunnels: IntGaugeVec,
    pub wait_retries: IntCounter,
    pub connections_accepted: IntCounter,
    pub connections_active: IntGauge,
    pub access_log_dropped: IntCounter,
    refusals: IntCounterVec,
    per_target: Option<PerTarget>,
    per_machine: Option<PerMachine>,
}

/// The opt-in, capped per-target request counter.
struct PerTarget {
    requests: IntCounterVec,
    seen: Mutex<HashSet<(String, u16)>>,
}

/// Registers a metric and hands it back.
fn registered<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    registered(registry, IntCounter::new(name, help).expect("valid metric"))
}

/// The request counters, duration histogram and byte counters, and their children.
fn traffic(registry: &Registry) -> Resolved {
    let requests = counter_vec(
        registry,
        "cmux_requests_total",
        "Finished requests and tunnels, by kind (http, websocket, connect) and status class.",
        &["kind", "status"],
    );
    let duration_opts = HistogramOpts::new(
        "cmux_request_duration_seconds",
        "Time from request head to the end of the response or tunnel, by kind.",
    )
    .buckets(DURATION_BUCKETS.to_vec());
    let duration = registered(
        registry,
        HistogramVec::new(duration_opts, &["kind"]).expect("valid metric"),
    );
    let bytes = counter_vec(
        registry,
        "cmux_bytes_total",
        "Body and tunnel bytes, by direction: in (from clients), out (to clients).",
        &["direction"],
    );
    Resolved {
        requests: RequestKind::ALL
            .map(|k| CLASSES.map(|c| requests.with_label_values(&[k.as_str(), c]))),
        duration: RequestKind::ALL.map(|k| duration.with_label_values(&[k.as_str()])),
        bytes_in: bytes.with_label_values(&["in"]),
        bytes_out: bytes.with_label_values(&["out"]),
    }
}

/// The open tunnels by kind, and the open client connections.
fn gauges(registry: &Registry) -> (IntGaugeVec, IntGauge) {
    let open_tunnels = registered(
        registry,
        IntGaugeVec::new(
            Opts::new(
                "cmux_open_tunnels",
                "Open tunnels, by kind (websocket, connect).",
            ),
            &["kind"],
        )
        .expect("valid metric"),
    );
    for kind in [RequestKind::WebSocket, RequestKind::Connect] {
        open_tunnels.with_label_values(&[kind.as_str()]).set(0);
    }
    let connections_active = registered(
        registry,
        IntGauge::new("cmux_connections_active", "Client connections open now.")
            .expect("valid metric"),
    );
    (open_tunnels, connections_active)
}

/// The refusals counter, every code present from the start.
fn refusals(registry: &Registry) -> IntCounterVec {
    let refusals = counter_vec(
        registry,
        "cmux_refusals_total",
        "Requests and connections refused by the proxy's policies, by code (unauthorized, client_forbidden, target_forbidden, overloaded, loop_detected, host_not_allowed).",
        &["code"],
    );
    for code in REFUSALS {
        refusals.with_label_values(&[code]);
    }
    refusals
}

impl Metrics {
    pub fn new(per_target: bool) -> Self {
        let registry = Registry::new();
        let (open_tunnels, connections_active) = gauges(&registry);
        Metrics {
            resolved: traffic(&registry),
            connect_failures: counter_vec(
                &registry,
                "cmux_upstream_connect_failures_total",
                "Failed connection attempts to targets, by reason (refused, timeout, other).",
                &["reason"],
            ),
            open_tunnels,
            wait_retries: counter(
                &registry,
                "cmux_wait_for_port_retries_total",
                "Connection attempts repeated while waiting for a refusing port to open.",
            ),
            connections_accepted: counter(
                &registry,
                "cmux_connections_accepted_total",
                "Client connections accepted.",
            ),
            connections_active,
            access_log_dropped: counter(
                &registry,
                "cmux_access_log_dropped_total",
                "Access log lines dropped because the log writer could not keep up.",
            ),
            refusals: refusals(&registry),
            per_target: per_target.then(|| PerTarget {
                requests: counter_vec(
                    &registry,
                    "cmux_target_requests_total",
                    "Finished requests by workspace and port (at most 1000 label sets; the rest under \"other\").",
                    &["workspace", "port"],
                ),
                seen: Mutex::new(HashSet::new()),
            }),
            per_machine: None,
            registry,
        }
    }

    /// Adds the per-machine counter (edge mode).
    pub fn with_machines(mut self) -> Self {
        self.per_machine = Some(PerMachine::new(&self.registry));
        self
    }

    /// Records one finished request or tunnel.
    pub fn finished(&self, e: &Entry<'_>) {
        let class = match e.status {
            100..=599 => usize::from(e.status / 100),
            _ => 0,
        };
        let r = &self.resolved;
        r.requests[e.kind.index()][class].inc();
        r.duration[e.kind.index()].observe(e.duration.as_secs_f64());
        r.bytes_in.inc_by(e.bytes_in);
        r.bytes_out.inc_by(e.bytes_out);
        if let Some(end) = e.end {
            let code = end.as_str();
            if REFUSALS.contains(&code) {
                self.refusals.with_label_values(&[code]).inc();
            }
        }
        if let (Some(per), Some(machine)) = (&self.per_machine, e.machine) {
            // A name DNS does not know is no machine: it gets no label of its own.
            let machine = match e.end {
                Some(EndReason::Answered(MACHINE_UNKNOWN)) => UNKNOWN_MACHINE_LABEL,
                _ => machine,
            };
            per.count(machine, CLASSES[class]);
        }
        if let (Some(per), Some(target)) = (&self.per_target, e.target) {
            per.count(e.workspace.unwrap_or(""), target.port());
        }
    }

    pub fn connect_failed(&self, why: ConnectFailure) {
        self.connect_failures
            .with_label_values(&[why.as_str()])
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(8192);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl PerTarget {
    /// Counts one request to (workspace, port), or under `other` past the cap.
    fn count(&self, workspace: &str, port: u16) {
        let key = (workspace.to_string(), port);
        let known = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.contains(&key) || (seen.len() < MAX_TARGET_LABEL_SETS && seen.insert(key))
        };
        if known {
            self.requests
                .with_label_values(&[workspace, &port.to_string()])
                .inc();
        } else {
            self.requests.with_label_values(&["other", "other"]).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn finished(port: u16) -> Entry<'static> {
        Entry {
            client: None,
            method: "GET",
            path: "/",
            workspace: Some("workspace-1"),
            machine: None,
            target: Some(std::net::SocketAddr::new([127, 18, 0, 1].into(), port)),
            kind: RequestKind::Http,
            status: 200,
            bytes_in: 10,
            bytes_out: 20,
            duration: Duration::from_millis(10),
            end: None,
        }
    }

    #[test]
    fn counts_and_renders() {
        let m = Metrics::new(false);
        m.finished(&finished(3000));
        m.connect_failed(ConnectFailure::Refused);
        let text = m.render();
        assert!(
            text.contains("cmux_requests_total{kind=\"http\",status=\"2xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cmux_bytes_total{direction=\"out\"} 20"),
            "{text}"
        );
        assert!(text.contains("cmux_upstream_connect_failures_total{reason=\"refused\"} 1"));
        assert!(!text.contains("cmux_target_requests_total"));
    }

    #[test]
    fn target_labels_are_capped() {
        let m = Metrics::new(true);
        for port in 1..=5000u16 {
            m.finished(&finished(port));
        }
        m.finished(&finished(1));
        let text = m.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("cmux_target_requests_total{"))
            .count();
        assert_eq!(series, MAX_TARGET_LABEL_SETS + 1);
        assert!(
            text.contains("cmux_target_requests_total{port=\"other\",workspace=\"other\"} 4000"),
            "{text}"
        );
        assert!(text.contains("cmux_target_requests_total{port=\"1\",workspace=\"workspace-1\"} 2"));
    }
}
