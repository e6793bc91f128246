//! Connection limits: in all, and per client. A connection over a limit is answered
//! `503 overloaded` at once and closed; the ones already open keep working. Each h2c
//! stream beyond a connection's first counts as one more connection, since each takes an
//! upstream socket of its own. IPv6 clients are counted per /64: one host commonly holds
//! a whole /64 and can pick a new address in it for every connection.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The limits in force.
pub struct ConnectionLimits {
    pub max_connections: usize,
    per_client: Option<usize>,
    open_per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// h2c streams open beyond each connection's first.
    extra_streams: Arc<AtomicUsize>,
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

/// Holds the place of one h2c stream beyond its connection's first, while it is served.
#[derive(Debug)]
pub struct StreamSlot {
    _client: Option<ClientSlot>,
    extra: Arc<AtomicUsize>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.extra.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The key a client is counted under: its address, or its /64 for IPv6.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

impl ConnectionLimits {
    pub fn new(max_connections: usize, per_client: Option<usize>) -> Self {
        ConnectionLimits {
            max_connections,
            per_client,
            open_per_client: Arc::default(),
            extra_streams: Arc::default(),
        }
    }

    /// Admits a new connection, `open` being how many are open with it; `Err` says
    /// which limit it is over.
    pub fn admit(&self, client: Option<IpAddr>, open: usize) -> Result<Option<ClientSlot>, String> {
        let open = open + self.extra_streams.load(Ordering::Acquire);
        if open > self.max_connections {
            return Err(format!(
                "{} connections are open (max_connections)",
                self.max_connections
            ));
        }
        let (Some(limit), Some(ip)) = (self.per_client, client) else {
            return Ok(None);
        };
        let key = client_key(ip);
        let mut counts = self
            .open_per_client
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key).or_insert(0);
        if *n >= limit {
            let who = match key {
                IpAddr::V6(_) => format!("{key}/64"),
                IpAddr::V4(_) => key.to_string(),
            };
            return Err(format!(
                "{who} has {limit} connections open (max_connections_per_client)"
            ));
        }
        *n += 1;
        Ok(Some(ClientSlot {
            ip: key,
            open: self.open_per_client.clone(),
        }))
    }

    /// Admits one more concurrent h2c stream on a connection, counted as a connection
    /// (`open` connections are open besides).
    pub fn admit_stream(&self, client: Option<IpAddr>, open: usize) -> Result<StreamSlot, String> {
        let client = self.admit(client, open + 1)?;
        self.extra_streams.fetch_add(1, Ordering::AcqRel);
        Ok(StreamSlot {
            _client: client,
            extra: self.extra_streams.clone(),
        })
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

    #[test]
    fn per_client_limits_group_ipv6_clients_by_64() {
        let l = ConnectionLimits::new(100, Some(1));
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _slot = l.admit(Some(one), 1).unwrap();
        let err = l.admit(Some(same_64), 2).unwrap_err();
        assert!(err.contains("2001:db8:1:2::/64"), "{err}");
        assert!(l.admit(Some(other_64), 2).is_ok());
        // IPv4, and IPv4 mapped into IPv6, stay per address.
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        let _v4 = l.admit(Some(v4), 3).unwrap();
        assert!(l.admit(Some(mapped), 4).is_err());
        assert!(l.admit(Some("127.0.0.3".parse().unwrap()), 4).is_ok());
    }

    #[test]
    fn h2c_streams_count_as_connections() {
        let l = ConnectionLimits::new(2, Some(2));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let _conn = l.admit(Some(a), 1).unwrap();
        let stream = l.admit_stream(Some(a), 1).unwrap();
        assert!(l.admit_stream(Some(a), 1).is_err(), "per client");
        assert!(
            l.admit(Some("127.0.0.3".parse().unwrap()), 2).is_err(),
            "in all"
        );
        drop(stream);
        assert!(l.admit_stream(Some(a), 1).is_ok());
    }
}
