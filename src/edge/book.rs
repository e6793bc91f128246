//! What the edge last learned about each machine, for the admin listener's
//! `GET /machines`. A view of the DNS answers, not a cache: every request still asks the
//! resolver, whose cache decides when DNS is asked again.

use super::discovery::{Found, NotFound};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

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

/// One machine's last answer, as [`MachineBook::noted`] gives it.
pub struct Noted {
    pub machine: String,
    pub answer: Result<Found, NotFound>,
    /// When the answer last changed.
    pub since: SystemTime,
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

    /// Every machine's last answer and since when it says so, sorted by name (the
    /// admin listener formats them).
    pub fn noted(&self) -> Vec<Noted> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut noted: Vec<Noted> = seen
            .iter()
            .map(|(machine, s)| Noted {
                machine: machine.clone(),
                answer: s.answer.clone(),
                since: s.at,
            })
            .collect();
        noted.sort_by(|a, b| a.machine.cmp(&b.machine));
        noted
    }
}
