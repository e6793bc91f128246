//! Connection limits: in all, and per client address. A connection over a limit is
//! answered `503 overloaded` at once and closed; the ones already open keep working.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The limits in force.
pub struct ConnectionLimits {
    pub max_connections: usize,
    per_client: Option<usize>,
    open_per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds a client's place while its connection is open.
#[derive(Debug)]
pub struct ClientSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    pub fn new(max_connections: usize, per_client: Option<usize>) -> Self {
        ConnectionLimits {
            max_connections,
            per_client,
            open_per_client: Arc::default(),
        }
    }

    /// Admits a new connection, `open` being how many are open with it; `Err` says
    /// which limit it is over.
    pub fn admit(&self, client: Option<IpAddr>, open: usize) -> Result<Option<ClientSlot>, String> {
        if open > self.max_connections {
            return Err(format!(
                "{} connections are open (max_connections)",
                self.max_connections
            ));
        }
        let (Some(limit), Some(ip)) = (self.per_client, client) else {
            return Ok(None);
        };
        let ip = ip.to_canonical();
        let mut counts = self
            .open_per_client
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= limit {
            return Err(format!(
                "{ip} has {limit} connections open (max_connections_per_client)"
            ));
        }
        *n += 1;
        Ok(Some(ClientSlot {
            ip,
            open: self.open_per_client.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_all_and_per_client() {
        let l = ConnectionLimits::new(3, Some(1));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let slot = l.admit(Some(a), 1).unwrap();
        assert!(l
            .admit(Some(a), 2)
            .unwrap_err()
            .contains("max_connections_per_client"));
        let _other = l.admit(Some(b), 2).unwrap();
        assert!(l
            .admit(Some(b), 4)
            .unwrap_err()
            .contains("(max_connections)"));
        drop(slot);
        assert!(l.admit(Some(a), 2).is_ok());
    }
}
