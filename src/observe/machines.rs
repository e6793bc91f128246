//! Edge mode's per-machine request counter, with labels capped like the per-target
//! ones: a client naming random machines cannot grow memory without limit.

use prometheus::{IntCounterVec, Opts, Registry};
use std::collections::HashSet;
use std::sync::Mutex;

/// The label of requests to a name DNS does not know (answered `machine_unknown`): such
/// a name is no machine, and a client sending random names would fill the labels.
pub const UNKNOWN_MACHINE_LABEL: &str = "unknown";
/// The error code those requests end with (the error table's).
pub const MACHINE_UNKNOWN: &str = "machine_unknown";

/// Distinct machines counted by name before the rest count under `other`.
pub const MAX_MACHINE_LABELS: usize = 1000;

/// `cmux_machine_requests_total{machine, status}`.
pub struct PerMachine {
    requests: IntCounterVec,
    seen: Mutex<HashSet<String>>,
}

impl PerMachine {
    pub fn new(registry: &Registry) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "cmux_machine_requests_total",
                "Edge mode: finished requests and tunnels by machine and status class (at most 1000 machines; the rest under \"other\").",
            ),
            &["machine", "status"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("unique metric");
        PerMachine {
            requests,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// Counts one request to `machine` with this status class.
    pub fn count(&self, machine: &str, class: &str) {
        let known = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.contains(machine)
                || (seen.len() < MAX_MACHINE_LABELS && seen.insert(machine.to_string()))
        };
        let label = if known { machine } else { "other" };
        self.requests.with_label_values(&[label, class]).inc();
    }
}
