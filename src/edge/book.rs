//! What the edge last learned about each machine, for the admin listener's
//! `GET /machines`. A view of the DNS answers, not a cache: every request still asks the
//! resolver, whose cache decides when DNS is asked again.
//!
//! A name that never resolved (a typo, a client trying random names) is listed only for
//! a while after it was last asked ([`MachineBook::new`]), then forgotten, so that the
//! list shows machines, not every name a client ever sent.

use super::discovery::{Found, NotFound};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// How many negative TTLs a name that never resolved stays listed after it was last
/// asked: with the default negative TTL (5 s), a minute.
pub const UNRESOLVED_KEPT_TTLS: u32 = 12;

/// Machines kept in the view; past this, new names are not listed (a client trying
/// random names cannot grow it without bound).
pub const MAX_MACHINES: usize = 1000;

struct Seen {
    answer: Result<Found, NotFound>,
    at: SystemTime,
    /// Whether DNS ever gave an address for it.
    resolved: bool,
    last_asked: Instant,
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
pub struct MachineBook {
    seen: Mutex<HashMap<String, Seen>>,
    /// How long a name that never resolved stays listed after it was last asked.
    unresolved_kept_for: Duration,
}

impl MachineBook {
    /// A book that forgets names that never resolved [`UNRESOLVED_KEPT_TTLS`] negative
    /// TTLs after they were last asked.
    pub fn new(negative_ttl: Duration) -> Self {
        MachineBook {
            seen: Mutex::default(),
            unresolved_kept_for: negative_ttl * UNRESOLVED_KEPT_TTLS,
        }
    }

    /// Drops the names that never resolved and were not asked for a while.
    fn forget_unresolved(&self, seen: &mut HashMap<String, Seen>) {
        seen.retain(|_, s| s.resolved || s.last_asked.elapsed() <= self.unresolved_kept_for);
    }

    /// Notes the latest answer for `machine`.
    pub fn note(&self, machine: &str, answer: &Result<Found, NotFound>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = seen.get_mut(machine) {
            if !same_answer(&last.answer, answer) {
                last.at = SystemTime::now();
            }
            last.answer = answer.clone();
            last.resolved |= answer.is_ok();
            last.last_asked = Instant::now();
            return;
        }
        if seen.len() >= MAX_MACHINES {
            self.forget_unresolved(&mut seen);
        }
        if seen.len() < MAX_MACHINES {
            let seen_now = Seen {
                answer: answer.clone(),
                at: SystemTime::now(),
                resolved: answer.is_ok(),
                last_asked: Instant::now(),
            };
            seen.insert(machine.to_string(), seen_now);
        }
    }

    /// Every machine's last answer and since when it says so, sorted by name (the
    /// admin listener formats them).
    pub fn noted(&self) -> Vec<Noted> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        self.forget_unresolved(&mut seen);
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
