//! Merging: a flag wins over its environment variable (clap combines those two), which
//! wins over the conf's `cmux_proxy:` section, which wins over the built-in default.
//! Every value is checked here, so that a bad one stops start-up with one clear line.
//! Edge mode's settings are merged in [`edge`].

mod edge;

use super::cli::Cli;
use super::conf::ConfSection;
use super::defaults::*;
use super::startup_error::SettingError;
use crate::access::{parse_list, Cidr};
use crate::observe::access_log::LogTarget;
use crate::observe::{AccessLogSettings, MetricsSettings};
use crate::routing::{
    listen_covers, HostOverrideDefault, HostPattern, Mode, PortRange, RouteRules, TargetPolicy,
    WaitPolicy,
};
use crate::state::{
    AccessSettings, AdminSettings, RedirectSettings, Settings, Timeouts, TunnelSettings,
};
use edge::edge_settings;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// An optional timeout in milliseconds, where absent and 0 both mean "none".
fn optional_ms(ms: Option<u64>) -> Option<Duration> {
    ms.filter(|ms| *ms > 0).map(Duration::from_millis)
}

/// A timeout in milliseconds that must not be 0.
fn required_ms(name: &'static str, ms: u64) -> Result<Duration, SettingError> {
    if ms == 0 {
        return Err(SettingError::NotPositive(name));
    }
    Ok(Duration::from_millis(ms))
}

/// Merges flag/env values (already combined by clap) with the conf section and defaults.
pub fn merge(cli: &Cli, section: ConfSection) -> Result<Settings, SettingError> {
    let access = access_settings(cli, &section)?;
    let targets = target_policy(&section)?;
    let edge = edge_settings(cli, &section)?;
    let listen = listen_addresses(cli, section.listen)?;
    let upstream_host_name = cli
        .upstream_host
        .clone()
        .or(section.upstream_host)
        .unwrap_or_else(|| DEFAULT_UPSTREAM_HOST.to_string());
    let connect_timeout_ms = cli.connect_timeout_ms.or(section.connect_timeout_ms);
    let head_timeout_ms = section.request_head_timeout_ms;
    let max_wait_for_port_ms = section
        .max_wait_for_port_ms
        .unwrap_or(DEFAULT_MAX_WAIT_FOR_PORT_MS);
    let wait_for_port_ms = cli
        .wait_for_port_ms
        .or(section.wait_for_port_ms)
        .unwrap_or(DEFAULT_WAIT_FOR_PORT_MS)
        .min(max_wait_for_port_ms);
    let admin = cli.admin_listen.clone().or(section.admin_listen.clone());
    let admin_explicit = admin.is_some();
    let access_log = cli.access_log.as_deref().or(section.access_log.as_deref());
    let host_override = cli
        .host_override
        .as_deref()
        .or(section.host_override.as_deref());
    // Values are checked in the order written: with several bad values, the first one
    // here is reported.
    let upstream_host = resolve_host(&upstream_host_name)?;
    let timeouts = Timeouts {
        connect: required_ms(
            "connect_timeout_ms",
            connect_timeout_ms.unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
        )?,
        request_head: required_ms(
            "request_head_timeout_ms",
            head_timeout_ms.unwrap_or(DEFAULT_REQUEST_HEAD_TIMEOUT_MS),
        )?,
        upstream_read: optional_ms(section.upstream_read_timeout_ms),
    };
    let tunnel = TunnelSettings {
        idle_timeout: optional_ms(section.tunnel_idle_timeout_ms),
        send_buffer: tunnel_send_buffer(section.tunnel_send_buffer_bytes)?,
    };
    let admin = AdminSettings {
        listen: admin_address(admin, &listen)?,
        explicit: admin_explicit,
    };
    let routing = RouteRules {
        mode: match &edge {
            Some(edge) => Mode::Edge {
                domain: edge.edge_domain.clone(),
            },
            None => Mode::Node,
        },
        upstream_host,
        wait: WaitPolicy {
            default: Duration::from_millis(wait_for_port_ms),
            max: Duration::from_millis(max_wait_for_port_ms),
        },
        targets,
        host_override: host_override_default(host_override)?,
        h2c_ports: port_ranges("h2c_ports", &section.h2c_ports)?,
        public_hosts: host_patterns(list_or(&cli.public_hosts, &section.public_hosts))?,
    };
    Ok(Settings {
        routing,
        upstream_host_name,
        timeouts,
        tunnel,
        admin,
        access,
        listen,
        access_log: AccessLogSettings {
            target: LogTarget::parse(access_log.unwrap_or("stderr")),
            format: section.access_log_format.unwrap_or_default(),
            keep_query: section.access_log_query.unwrap_or(false),
        },
        metrics: MetricsSettings {
            per_target: section.metrics_per_target.unwrap_or(false),
        },
        redirects: RedirectSettings {
            rewrite_loopback: section.rewrite_loopback_redirects.unwrap_or(true),
        },
        edge,
    })
}

/// A flag's list if given, else the conf's.
fn list_or(flag: &[String], conf: &Option<Vec<String>>) -> Vec<String> {
    if flag.is_empty() {
        conf.clone().unwrap_or_default()
    } else {
        flag.to_vec()
    }
}

fn clients(name: &'static str, items: Vec<String>) -> Result<Vec<Cidr>, SettingError> {
    parse_list(&items).map_err(|reason| SettingError::BadItem { name, reason })
}

fn port_ranges(
    name: &'static str,
    items: &Option<Vec<String>>,
) -> Result<Vec<PortRange>, SettingError> {
    let items = items.iter().flatten().flat_map(|s| s.split(','));
    let items = items.filter(|s| !s.trim().is_empty());
    items
        .map(|s| {
            s.parse()
                .map_err(|reason| SettingError::BadItem { name, reason })
        })
        .collect()
}

/// `public_hosts`: each a name or `*.` and a domain.
fn host_patterns(items: Vec<String>) -> Result<Vec<HostPattern>, SettingError> {
    let items = items.iter().filter(|s| !s.trim().is_empty());
    items
        .map(|s| {
            HostPattern::parse(s).map_err(|reason| SettingError::BadItem {
                name: "public_hosts",
                reason,
            })
        })
        .collect()
}

/// Who may come in.
fn access_settings(cli: &Cli, section: &ConfSection) -> Result<AccessSettings, SettingError> {
    let at_least_one = |name: &'static str, n: Option<usize>| match n {
        Some(0) => Err(SettingError::NotPositive(name)),
        n => Ok(n),
    };
    let token_file = cli
        .auth_token_file
        .clone()
        .or(section.auth_token_file.clone());
    Ok(AccessSettings {
        auth_tokens: section.auth_tokens.clone().unwrap_or_default(),
        auth_token_file: token_file.map(Into::into),
        trusted_clients: clients(
            "trusted_clients",
            list_or(&cli.trusted_clients, &section.trusted_clients),
        )?,
        allow_clients: clients(
            "allow_clients",
            list_or(&cli.allow_clients, &section.allow_clients),
        )?,
        max_connections: at_least_one("max_connections", section.max_connections)?,
        max_connections_per_client: at_least_one(
            "max_connections_per_client",
            section.max_connections_per_client,
        )?,
    })
}

/// Which targets requests may name.
fn target_policy(section: &ConfSection) -> Result<TargetPolicy, SettingError> {
    Ok(TargetPolicy {
        allow_default_upstream: section.allow_default_upstream.unwrap_or(true),
        allowed_ports: port_ranges("allowed_ports", &section.allowed_ports)?,
        denied_ports: port_ranges("denied_ports", &section.denied_ports)?,
    })
}

/// `keep` (the default) or `localhost`.
fn host_override_default(raw: Option<&str>) -> Result<HostOverrideDefault, SettingError> {
    match raw {
        None => Ok(HostOverrideDefault::Keep),
        Some(raw) => HostOverrideDefault::parse(raw)
            .ok_or_else(|| SettingError::HostOverride(raw.to_string())),
    }
}

fn listen_addresses(
    cli: &Cli,
    from_conf: Option<Vec<String>>,
) -> Result<Vec<SocketAddr>, SettingError> {
    let raw: Vec<String> = if !cli.listen.is_empty() {
        cli.listen.clone()
    } else if let Some(list) = from_conf {
        list
    } else {
        DEFAULT_LISTEN.split(',').map(str::to_string).collect()
    };
    parse_listen(&raw)
}

/// SO_SNDBUF for tunnel sockets: the default, a size, or 0 for the kernel's autotuning.
fn tunnel_send_buffer(bytes: Option<usize>) -> Result<Option<usize>, SettingError> {
    match bytes.unwrap_or(DEFAULT_TUNNEL_SEND_BUFFER_BYTES) {
        0 => Ok(None),
        bytes if bytes > MAX_TUNNEL_SEND_BUFFER_BYTES => Err(SettingError::SendBufferTooLarge),
        bytes => Ok(Some(bytes)),
    }
}

/// The admin listener's address (`off` or empty: none), which must not overlap a
/// proxy listen address.
fn admin_address(
    raw: Option<String>,
    listen: &[SocketAddr],
) -> Result<Option<SocketAddr>, SettingError> {
    let raw = raw.unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_string());
    let admin = match raw.trim() {
        "off" | "" => return Ok(None),
        addr => addr
            .parse::<SocketAddr>()
            .map_err(|_| SettingError::AdminAddress(addr.to_string()))?,
    };
    if listen
        .iter()
        .any(|l| listen_covers(*l, admin) || listen_covers(admin, *l))
    {
        return Err(SettingError::AdminOverlaps(admin));
    }
    Ok(Some(admin))
}

/// Parses listen addresses (each may itself be comma-separated) and drops those another
/// one already covers: exact duplicates, and any address on a port that a wildcard of
/// the same family also listens on, which could not be bound twice anyway.
pub fn parse_listen(raw: &[String]) -> Result<Vec<SocketAddr>, SettingError> {
    let mut parsed: Vec<SocketAddr> = Vec::new();
    for item in raw.iter().flat_map(|s| s.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let addr: SocketAddr = item
            .parse()
            .map_err(|_| SettingError::ListenAddress(item.to_string()))?;
        if !parsed.contains(&addr) {
            parsed.push(addr);
        }
    }
    if parsed.is_empty() {
        return Err(SettingError::NoListenAddress);
    }
    let covered = |a: &SocketAddr| {
        parsed
            .iter()
            .any(|w| w != a && w.is_ipv4() == a.is_ipv4() && listen_covers(*w, *a))
    };
    Ok(parsed.iter().filter(|a| !covered(a)).copied().collect())
}

/// Resolves `--upstream-host` once, at start-up, so that no request waits on a name
/// lookup. IP literals are used as they are.
fn resolve_host(host: &str) -> Result<IpAddr, SettingError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    match (host, 0u16).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => Ok(a.ip()),
            None => Err(SettingError::UpstreamHostNoAddress(host.to_string())),
        },
        Err(e) => Err(SettingError::UpstreamHostUnresolved {
            host: host.to_string(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::cli::parse_args as cli;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn listen_defaults_collapse_to_the_wildcard() {
        let got = parse_listen(&strings(&[DEFAULT_LISTEN])).unwrap();
        assert_eq!(got, vec!["0.0.0.0:8080".parse().unwrap()]);
    }

    #[test]
    fn listen_dedup_and_split() {
        let got = parse_listen(&strings(&[
            "127.0.0.1:1,127.0.0.1:2",
            "127.0.0.1:1",
            "[::1]:3",
            "0.0.0.0:2",
        ]))
        .unwrap();
        let want: Vec<SocketAddr> = ["127.0.0.1:1", "[::1]:3", "0.0.0.0:2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        let e = parse_listen(&strings(&["localhost:80"])).unwrap_err();
        assert!(e.to_string().contains("\"localhost:80\""), "{e}");
        assert!(parse_listen(&strings(&["127.0.0.1"])).is_err());
        assert!(parse_listen(&strings(&["127.0.0.1:99999"])).is_err());
    }

    #[test]
    fn precedence_flag_conf_default() {
        let section = || ConfSection {
            listen: Some(strings(&["127.0.0.1:9000"])),
            upstream_host: Some("127.0.0.2".into()),
            connect_timeout_ms: Some(1234),
            ..Default::default()
        };
        let s = merge(&cli(&[]), section()).unwrap();
        assert_eq!(s.listen, vec!["127.0.0.1:9000".parse().unwrap()]);
        assert_eq!(
            s.routing.upstream_host,
            "127.0.0.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(s.timeouts.connect, Duration::from_millis(1234));
        let s = merge(
            &cli(&["--listen", "127.0.0.1:1", "--upstream-host", "::1"]),
            section(),
        )
        .unwrap();
        assert_eq!(s.listen, vec!["127.0.0.1:1".parse().unwrap()]);
        assert_eq!(s.routing.upstream_host, "::1".parse::<IpAddr>().unwrap());
        let s = merge(&cli(&[]), ConfSection::default()).unwrap();
        assert_eq!(s.timeouts.connect, Duration::from_millis(5000));
        assert_eq!(s.upstream_host_name, "127.0.0.1");
    }

    #[test]
    fn host_override_precedence_and_values() {
        let conf = || ConfSection {
            host_override: Some("localhost".into()),
            ..Default::default()
        };
        let s = merge(&cli(&[]), ConfSection::default()).unwrap();
        assert_eq!(s.routing.host_override, HostOverrideDefault::Keep);
        assert!(s.redirects.rewrite_loopback);
        let s = merge(&cli(&[]), conf()).unwrap();
        assert_eq!(
            s.routing.host_override,
            HostOverrideDefault::TargetLocalhost
        );
        let s = merge(&cli(&["--host-override", "keep"]), conf()).unwrap();
        assert_eq!(s.routing.host_override, HostOverrideDefault::Keep);
        let e = merge(&cli(&["--host-override", "example.com"]), conf()).unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid host_override \"example.com\""),
            "{e}"
        );
        let off = ConfSection {
            rewrite_loopback_redirects: Some(false),
            ..Default::default()
        };
        assert!(!merge(&cli(&[]), off).unwrap().redirects.rewrite_loopback);
    }

    #[test]
    fn h2c_ports_are_port_ranges() {
        let with = |ports: &[&str]| {
            merge(
                &cli(&[]),
                ConfSection {
                    h2c_ports: Some(strings(ports)),
                    ..Default::default()
                },
            )
        };
        let s = with(&["50051", "9000-9002,7000"]).unwrap();
        let ports: Vec<_> = s.routing.h2c_ports.iter().map(|r| r.0.clone()).collect();
        assert_eq!(ports, vec![50051..=50051, 9000..=9002, 7000..=7000]);
        let e = with(&["grpc"]).unwrap_err();
        assert!(
            e.to_string().starts_with("h2c_ports: invalid port range"),
            "{e}"
        );
        assert!(merge(&cli(&[]), ConfSection::default())
            .unwrap()
            .routing
            .h2c_ports
            .is_empty());
    }

    #[test]
    fn tunnel_send_buffer_default_off_and_bounds() {
        let with = |bytes| {
            merge(
                &cli(&[]),
                ConfSection {
                    tunnel_send_buffer_bytes: bytes,
                    ..Default::default()
                },
            )
        };
        let default = with(None).unwrap().tunnel.send_buffer;
        assert_eq!(default, Some(DEFAULT_TUNNEL_SEND_BUFFER_BYTES));
        assert_eq!(with(Some(0)).unwrap().tunnel.send_buffer, None);
        assert_eq!(with(Some(65536)).unwrap().tunnel.send_buffer, Some(65536));
        let e = with(Some(1 << 31)).unwrap_err();
        assert!(
            e.to_string()
                .contains("tunnel_send_buffer_bytes must be at most"),
            "{e}"
        );
    }
}
