//! Listening sockets from `/proc/net/tcp` and `/proc/net/tcp6`: the fallback where the
//! kernel's `sock_diag` is not available.

use super::Listener;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `st` value of a listening socket in `/proc/net/tcp*`.
const TCP_LISTEN: &str = "0A";

/// All listening TCP sockets from `/proc/net/tcp*`. Unreadable files count as empty.
pub fn listening_from_proc() -> Vec<Listener> {
    let mut out = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            out.extend(parse_proc_net_tcp(&text));
        }
    }
    out
}

/// Parses the text of `/proc/net/tcp` or `/proc/net/tcp6`, keeping listening sockets.
fn parse_proc_net_tcp(text: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != TCP_LISTEN {
                return None;
            }
            let addr = parse_hex_addr(fields[1])?;
            let inode = fields[9].parse().ok()?;
            Some(Listener { addr, inode })
        })
        .collect()
}

/// `0100007F:0BB8` (IPv4) or 32 hex digits `:PORT` (IPv6), as the kernel prints them:
/// each 32-bit word in host byte order (little-endian here).
fn parse_hex_addr(field: &str) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = field.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let ip = match ip_hex.len() {
        8 => {
            let word = u32::from_str_radix(ip_hex, 16).ok()?;
            IpAddr::V4(Ipv4Addr::from(word.to_le_bytes()))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&ip_hex[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE_TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 070012 7F:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   2: 0700127F:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   3: 0100007F:0BB8 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 20 4 30 10 -1
";
    const SAMPLE_TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1435 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000700127F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 998 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_listening_sockets_only() {
        let got = parse_proc_net_tcp(SAMPLE_TCP);
        assert_eq!(
            got,
            vec![
                Listener {
                    addr: "127.0.0.1:3000".parse().unwrap(),
                    inode: 12345
                },
                Listener {
                    addr: "127.18.0.7:5173".parse().unwrap(),
                    inode: 777
                },
            ]
        );
        let got6 = parse_proc_net_tcp(SAMPLE_TCP6);
        assert_eq!(got6[0].addr, "[::1]:5173".parse().unwrap());
        // An IPv4-mapped listener is reported as the IPv4 address.
        assert_eq!(got6[1].addr, "127.18.0.7:80".parse().unwrap());
    }
}
