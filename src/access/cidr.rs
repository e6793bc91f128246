//! Address ranges in CIDR notation (`10.0.0.0/8`, `127.0.0.1`, `::1/128`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    /// `ADDRESS/PREFIX`, or an address alone (a range of one).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let bad = || format!("invalid address range {s:?}: expected ADDRESS or ADDRESS/PREFIX");
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The top `prefix` bits of a 128-bit value.
fn top_bits(value: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        value >> (width - prefix)
    }
}

impl Cidr {
    /// Whether `ip` is in the range. An IPv4-mapped IPv6 address (a client of a `[::]`
    /// listener) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let (net, ip) = (u128::from(u32::from(net)), u128::from(u32::from(ip)));
                top_bits(net, self.prefix, 32) == top_bits(ip, self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                top_bits(u128::from(net), self.prefix, 128)
                    == top_bits(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Parses a list of ranges.
pub fn parse_list(items: &[String]) -> Result<Vec<Cidr>, String> {
    items
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// Whether any range of `list` holds `ip`.
pub fn any_contains(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(range: &str, ip: &str) -> bool {
        range.parse::<Cidr>().unwrap().contains(ip.parse().unwrap())
    }

    #[test]
    fn ranges() {
        assert!(has("127.0.0.0/8", "127.18.0.7"));
        assert!(!has("127.0.0.0/8", "10.0.0.1"));
        assert!(has("127.0.0.2", "127.0.0.2"));
        assert!(!has("127.0.0.2", "127.0.0.3"));
        assert!(has("0.0.0.0/0", "192.0.2.1"));
        assert!(has("::1", "::1"));
        assert!(has("10.0.0.0/8", "::ffff:10.1.2.3"));
        assert!(!has("10.0.0.0/8", "::1"));
        assert!(has("fd00::/8", "fd12::1"));
        for bad in ["", "10.0.0.0/33", "x", "10.0.0.0/", "::1/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_list(&["127.0.0.1, 10.0.0.0/8".into()]).unwrap().len(),
            2
        );
    }
}
