//! The registry of open tunnels (WebSocket sessions and CONNECT tunnels).
//!
//! It counts them, and on shutdown it is what closes the CONNECT tunnels at the deadline
//! and says how many were still open: a tunnel can stay open for hours, so without a
//! deadline a stopping proxy would either hang or cut them silently.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// The two kinds of tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    WebSocket,
    Connect,
}

impl TunnelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::WebSocket => "websocket",
            TunnelKind::Connect => "connect",
        }
    }
}

/// Counts of open tunnels and the shutdown deadline signal.
pub struct Tunnels {
    websocket: AtomicI64,
    connect: AtomicI64,
    /// Tunnels closed because of the deadline.
    closed_at_deadline: AtomicU64,
    deadline: watch::Sender<bool>,
}

impl Default for Tunnels {
    fn default() -> Self {
        Tunnels {
            websocket: AtomicI64::new(0),
            connect: AtomicI64::new(0),
            closed_at_deadline: AtomicU64::new(0),
            deadline: watch::channel(false).0,
        }
    }
}

impl Tunnels {
    fn counter(&self, kind: TunnelKind) -> &AtomicI64 {
        match kind {
            TunnelKind::WebSocket => &self.websocket,
            TunnelKind::Connect => &self.connect,
        }
    }

    /// Registers an open tunnel until the guard is dropped.
    pub fn open(self: &Arc<Self>, kind: TunnelKind) -> TunnelGuard {
        self.counter(kind).fetch_add(1, Ordering::Relaxed);
        TunnelGuard {
            tunnels: self.clone(),
            kind,
        }
    }

    /// Open tunnels of one kind.
    pub fn open_count(&self, kind: TunnelKind) -> i64 {
        self.counter(kind).load(Ordering::Relaxed)
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
        let websocket = self.open_count(TunnelKind::WebSocket).max(0);
        let connect = self.open_count(TunnelKind::Connect).max(0);
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
    kind: TunnelKind,
}

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        self.tunnels
            .counter(self.kind)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn guards_count_and_deadline_fires() {
        let t = Arc::new(Tunnels::default());
        let a = t.open(TunnelKind::Connect);
        let b = t.open(TunnelKind::WebSocket);
        assert_eq!(t.open_count(TunnelKind::Connect), 1);
        drop(a);
        assert_eq!(t.open_count(TunnelKind::Connect), 0);
        assert_eq!(t.open_count(TunnelKind::WebSocket), 1);
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
