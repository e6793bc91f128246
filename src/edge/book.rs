//! What the edge last learned about each machine, for the admin listener's
//! `GET /machines`. A view of the DNS answers, not a cache: every request still asks the
//! resolver, whose cache decides when DNS is asked again.

use super::discovery::{Found, NotFound};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

/// Machines kept in the view; past this, new names are not listed (a client trying
/// random names cannot grow it without bound).
pub const MAX_MACHINES: usize = 1000;

struct Seen {
    answer: Result<Found, NotFound>,
    at: SystemTime,
}

/// Whether two answers say the same, whatever their expiry: `since` is when the answer
/// last changed, not when it was last refreshed.
fn same_answer(a: &Result<Found, NotFound>, b: &Result<Found, NotFound>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a.addr == b.addr && a.all == b.all && a.source == b.source,
        (a, b) => a == b,
    }
}

/// The last answer per machine.
#[derive(Default)]
pub struct MachineBook {
    seen: Mutex<HashMap<String, Seen>>,
}

impl MachineBook {
    /// Notes the latest answer for `machine`.
    pub fn note(&self, machine: &str, answer: &Result<Found, NotFound>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = seen.get_mut(machine) {
            if !same_answer(&last.answer, answer) {
                last.at = SystemTime::now();
            }
            last.answer = answer.clone();
            return;
        }
        if seen.len() < MAX_MACHINES {
            let at = SystemTime::now();
            let answer = answer.clone();
            seen.insert(machine.to_string(), Seen { answer, at });
        }
    }

    /// The view as JSON, machines sorted by name.
    pub fn to_json(&self) -> Value {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut names: Vec<&String> = seen.keys().collect();
        names.sort();
        let machines: Vec<Value> = names
            .into_iter()
            .map(|name| {
                let s = &seen[name];
                let changed = crate::observe::log_line::rfc3339_utc(s.at);
                match &s.answer {
                    Ok(found) => json!({
                        "machine": name,
                        "address": found.addr.to_string(),
                        "addresses": found.all.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
                        "source": found.source.as_str(),
                        "ttl_left_ms": found.valid_until.saturating_duration_since(now).as_millis() as u64,
                        "since": changed,
                    }),
                    Err(NotFound::Unknown(name_asked)) => json!({
                        "machine": name,
                        "error": "machine_unknown",
                        "detail": format!("no DNS record for {name_asked}"),
                        "since": changed,
                    }),
                    Err(NotFound::LookupFailed(why)) => json!({
                        "machine": name,
                        "error": "dns_failed",
                        "detail": why,
                        "since": changed,
                    }),
                }
            })
            .collect();
        json!({ "machines": machines })
    }
}
