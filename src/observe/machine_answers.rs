//! `GET /machines` on an edge: what DNS last said about each machine, as the edge's
//! [`MachineBook`] noted it, in JSON.

use super::log_line::rfc3339_utc;
use crate::edge::book::Noted;
use crate::edge::{MachineBook, NotFound};
use serde_json::{json, Value};
use std::time::Instant;

/// The book as JSON, machines sorted by name.
pub fn machines_json(book: &MachineBook) -> Value {
    let now = Instant::now();
    let machines: Vec<Value> = book.noted().iter().map(|n| machine(n, now)).collect();
    json!({ "machines": machines })
}

fn machine(noted: &Noted, now: Instant) -> Value {
    let name = &noted.machine;
    let changed = rfc3339_utc(noted.since);
    match &noted.answer {
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
}
