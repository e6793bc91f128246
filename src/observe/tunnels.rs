//! The registry of open tunnels (WebSocket sessions and CONNECT tunnels).
//!
//! It counts them, and on shutdown it is what closes the CONNECT tunnels at the deadline
//! and says how many were still open: a tunnel can stay open for hours, so without a
//! deadline a stopping proxy would either hang or cut them silently.

use super::kinds::RequestKind;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Counts of open tunnels by kind and the shutdown deadline signal.
pub struct Tunnels {
    open: [AtomicI64; 3],
    /// Tunnels closed because of the deadline.
    closed_at_deadline: AtomicU64,
    deadline: watch::Sender<bool>,
}

impl Default for Tunnels {
    fn default() -> Self {
        Tunnels {
            open: Default::default(),
            closed_at_deadline: AtomicU64::new(0),
            deadline: watch::channel(false).0,
        }
    }
}

impl Tunnels {
    /// Registers an open tunnel until the guard is dropped.
    pub fn open(self: &Arc<Self>, kind: RequestKind) -> TunnelGuard {
        self.open[kind.index()].fetch_add(1, Ordering::Relaxed);
        TunnelGuard {
            tunnels: self.clone(),
            kind,
        }
    }

    /// Open tunnels of one kind.
    pub fn open_count(&self, kind: RequestKind) -> i64 {
        self.open[kind.index()].load(Ordering::Relaxed)
    }

    /// Resolves when the shutdown deadline has come.
    pub async fn deadline_reached(&self) {
        let mut rx = self.deadline.subscribe();
        let _ = rx.wait_for(|reached| *reached).await;
    }

    /// Whether the shutdown deadline has come.
    pub fn is_past_deadline(&self) -> bool {
        *self.deadline.borrow()
    }

    /// Signals the deadline: CONNECT tunnels close themselves; WebSocket sessions, which
    /// pingora owns, end when the process exits right after. Logs how many were open.
    pub fn close_all(&self) {
        let websocket = self.open_count(RequestKind::WebSocket).max(0);
        let connect = self.open_count(RequestKind::Connect).max(0);
        self.closed_at_deadline
            .fetch_add((websocket + connect) as u64, Ordering::Relaxed);
        log::info!(
            "shutdown deadline: closing {} open tunnel(s) ({connect} connect, {websocket} websocket)",
            websocket + connect
        );
        self.deadline.send_replace(true);
    }
}

/// Keeps a tunnel counted while it lives.
pub struct TunnelGuard {
    tunnels: Arc<Tunnels>,
    kind: RequestKind,
}

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        self.tunnels.open[self.kind.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn guards_count_and_deadline_fires() {
        let t = Arc::new(Tunnels::default());
        let a = t.open(RequestKind::Connect);
        let b = t.open(RequestKind::WebSocket);
        assert_eq!(t.open_count(RequestKind::Connect), 1);
        drop(a);
        assert_eq!(t.open_count(RequestKind::Connect), 0);
        assert_eq!(t.open_count(RequestKind::WebSocket), 1);
        let waiter = {
            let t = t.clone();
            tokio::spawn(async move { t.deadline_reached().await })
        };
        t.close_all();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(t.is_past_deadline());
        drop(b);
    }
}
