//! The Host allow list, the guard against DNS rebinding. A page on `rebind.attacker.test`
//! whose name the attacker points at the proxy's address is same-origin with the proxy:
//! it could send the steering headers without a preflight, and read the answers. A
//! browser always sends the page's name as `Host`, so the proxy answers only the names
//! it is known by: loopback addresses, `localhost` and `*.localhost` (which browsers
//! resolve to loopback themselves), its own addresses, the configured `public_hosts`,
//! and on an edge its `edge_domain`. Checked once per request with no allocation.

use super::parse::trim_blank;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One entry of `public_hosts`: a name, or `*.` and a domain for every name under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// The name itself (lower case, no trailing dot).
    Exact(String),
    /// Every name that ends in `.<domain>` (the domain itself not included).
    Subdomains(String),
}

impl HostPattern {
    /// `app.example.com` or `*.preview.example.com` (no port: any port is allowed).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = trim_blank(raw).to_ascii_lowercase();
        let text = text.strip_suffix('.').unwrap_or(&text);
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, text),
        };
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(format!(
                "invalid host name {raw:?}: expected a name such as app.example.com or *.preview.example.com"
            ));
        }
        Ok(match wildcard {
            true => HostPattern::Subdomains(name.to_string()),
            false => HostPattern::Exact(name.to_string()),
        })
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            HostPattern::Exact(exact) => name.eq_ignore_ascii_case(exact),
            HostPattern::Subdomains(domain) => is_subdomain(name, domain),
        }
    }
}

/// Whether `name` ends in `.<domain>`, ASCII case ignored.
fn is_subdomain(name: &str, domain: &str) -> bool {
    name.len() > domain.len() + 1
        && name.is_char_boundary(name.len() - domain.len() - 1)
        && name.as_bytes()[name.len() - domain.len() - 1] == b'.'
        && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain)
}

/// The names and addresses a request's `Host` may have.
#[derive(Debug, Clone, Default)]
pub struct HostAllowList {
    public: Vec<HostPattern>,
    /// The proxy's own addresses: its listeners' and, with a wildcard listener, the
    /// machine's interface addresses (canonical).
    own: Vec<IpAddr>,
    /// An edge's `edge_domain` (lower case): it and every name under it.
    edge_domain: Option<String>,
}

impl HostAllowList {
    pub fn new(public: Vec<HostPattern>, own: Vec<IpAddr>, edge_domain: Option<&str>) -> Self {
        HostAllowList {
            public,
            own: own.into_iter().map(|ip| ip.to_canonical()).collect(),
            edge_domain: edge_domain.map(|d| d.trim_matches('.').to_ascii_lowercase()),
        }
    }

    /// Whether a request with this `Host` (`name[:port]`, `[v6][:port]`) is answered.
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = host_name(trim_blank(host)) else {
            return false;
        };
        if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            return v6
                .parse::<Ipv6Addr>()
                .is_ok_and(|ip| self.ip_allowed(IpAddr::V6(ip)));
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        // An IPv4 address not of this machine may still be listed in public_hosts.
        if name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| self.ip_allowed(IpAddr::V4(ip)))
        {
            return true;
        }
        name.eq_ignore_ascii_case("localhost")
            || is_subdomain(name, "localhost")
            || self.public.iter().any(|p| p.matches(name))
            || self
                .edge_domain
                .as_deref()
                .is_some_and(|d| name.eq_ignore_ascii_case(d) || is_subdomain(name, d))
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_loopback() || self.own.contains(&ip)
    }
}

/// The name part of a `Host` value: without its `:port`, brackets kept on an IPv6
/// address. `None` when the value cannot be a host.
fn host_name(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        let end = host.find(']')?;
        let rest = &host[end + 1..];
        let port_ok = rest.is_empty()
            || rest
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        return port_ok.then_some(&host[..=end]);
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host,
    };
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> HostAllowList {
        HostAllowList::new(
            vec![
                HostPattern::parse("*.Preview.Example.com").unwrap(),
                HostPattern::parse("app.example.com.").unwrap(),
                HostPattern::parse("203.0.113.5").unwrap(),
            ],
            vec!["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()],
            Some("edge.example"),
        )
    }

    #[test]
    fn allowed_names_and_addresses() {
        let l = list();
        for host in [
            "127.0.0.1",
            "127.18.0.7:8080",
            " 127.0.0.1:8080 ",
            "[::1]",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:80",
            "10.0.0.5:8080",
            "[fd00::5]",
            "localhost",
            "LOCALHOST:5173",
            "localhost.",
            "workspace-7-5173.localhost:8080",
            "a.b.localhost.",
            "x.preview.example.com",
            "A.B.PREVIEW.example.com:443",
            "app.example.com",
            "App.Example.Com.:80",
            "edge.example",
            "ws-3000--m1.edge.example:8443",
            "203.0.113.5:8080",
        ] {
            assert!(l.allows(host), "{host}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        let l = list();
        for host in [
            "",
            "rebind.attacker.test",
            "rebind.attacker.test:8080",
            "localhost.attacker.test",
            "attackerlocalhost",
            "preview.example.com",
            "x.preview.example.com.evil",
            "evilpreview.example.com",
            "www.app.example.com",
            "app.example.com.evil",
            "10.0.0.6",
            "192.168.1.1:80",
            "[fd00::6]",
            "[::1",
            "[::1]x",
            "::1",
            "localhost:abc",
            "1.2.3.4.localhost.evil",
            "xedge.example",
        ] {
            assert!(!l.allows(host), "{host:?}");
        }
        assert!(!HostAllowList::default().allows("app.example.com"));
    }

    #[test]
    fn patterns() {
        assert_eq!(
            HostPattern::parse(" *.A.test. "),
            Ok(HostPattern::Subdomains("a.test".into()))
        );
        assert_eq!(
            HostPattern::parse("b.test"),
            Ok(HostPattern::Exact("b.test".into()))
        );
        for bad in [
            "", "*", "*.", "a..b", "a.*.b", "a:80", "http://a", "a/b", "*a.b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
