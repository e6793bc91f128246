//! Edge mode's settings, merged like the others (flag, then environment, then conf,
//! then default); `mode` itself (node, the default, or edge) decides whether there are
//! any.

use crate::app::cli::Cli;
use crate::app::conf::ConfSection;
use crate::app::startup_error::SettingError;
use crate::edge::settings::*;
use std::net::SocketAddr;
use std::time::Duration;

/// Edge settings when `mode` is `edge`; `None` for `node`. An edge key given in node
/// mode is refused, so that a conf meant for an edge never quietly runs as a node.
pub fn edge_settings(
    cli: &Cli,
    section: &ConfSection,
) -> Result<Option<EdgeSettings>, SettingError> {
    let mode = cli
        .mode
        .as_deref()
        .or(section.mode.as_deref())
        .unwrap_or("node");
    let edge_domain = cli.edge_domain.clone().or(section.edge_domain.clone());
    let suffix = cli
        .machine_dns_suffix
        .clone()
        .or(section.machine_dns_suffix.clone());
    let servers = if cli.dns_servers.is_empty() {
        section.dns_servers.clone().unwrap_or_default()
    } else {
        cli.dns_servers.clone()
    };
    let node_token = cli.node_token.clone().or(section.node_token.clone());
    match mode.trim() {
        "node" => {
            if suffix.is_some() || edge_domain.is_some() || node_token.is_some() {
                return Err(SettingError::EdgeKeysInNodeMode);
            }
            return Ok(None);
        }
        "edge" => {}
        other => return Err(SettingError::Mode(other.to_string())),
    }
    let Some(suffix) = suffix.filter(|s| !s.trim_matches('.').is_empty()) else {
        return Err(SettingError::NoMachineDnsSuffix);
    };
    let ttl = |name: &'static str, ms: Option<u64>, default: Duration| match ms {
        Some(0) => Err(SettingError::NotPositive(name)),
        Some(ms) => Ok(Duration::from_millis(ms)),
        None => Ok(default),
    };
    let dns_min_ttl = ttl(
        "dns_min_ttl_ms",
        section.dns_min_ttl_ms,
        DEFAULT_DNS_MIN_TTL,
    )?;
    let dns_max_ttl = ttl(
        "dns_max_ttl_ms",
        section.dns_max_ttl_ms,
        DEFAULT_DNS_MAX_TTL,
    )?;
    if dns_min_ttl > dns_max_ttl {
        return Err(SettingError::DnsTtlOrder);
    }
    Ok(Some(EdgeSettings {
        edge_domain: edge_domain
            .map(|d| d.trim_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty()),
        machine_dns_suffix: suffix.trim_matches('.').to_string(),
        machine_port: match section.machine_port {
            Some(0) => return Err(SettingError::NotPositive("machine_port")),
            Some(p) => p,
            None => DEFAULT_MACHINE_PORT,
        },
        dns_servers: dns_servers(&servers)?,
        dns_min_ttl,
        dns_max_ttl,
        dns_negative_ttl: ttl(
            "dns_negative_ttl_ms",
            section.dns_negative_ttl_ms,
            DEFAULT_DNS_NEGATIVE_TTL,
        )?,
        node_token: node_token.filter(|t| !t.is_empty()),
    }))
}

fn dns_servers(raw: &[String]) -> Result<Vec<SocketAddr>, SettingError> {
    raw.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| SettingError::DnsServer(s.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::cli::parse_args as cli;

    #[test]
    fn node_by_default_and_edge_keys_need_edge_mode() {
        assert_eq!(edge_settings(&cli(&[]), &ConfSection::default()), Ok(None));
        let e = edge_settings(
            &cli(&["--machine-dns-suffix", "m.test"]),
            &ConfSection::default(),
        );
        assert!(e.unwrap_err().to_string().contains("mode: edge only"));
        let e = edge_settings(&cli(&["--mode", "hub"]), &ConfSection::default());
        assert!(e.unwrap_err().to_string().contains("invalid mode \"hub\""));
        let e = edge_settings(&cli(&["--mode", "edge"]), &ConfSection::default());
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("needs machine_dns_suffix"));
    }

    #[test]
    fn edge_settings_merge() {
        let section = ConfSection {
            mode: Some("edge".into()),
            machine_dns_suffix: Some("machines.test.".into()),
            dns_servers: Some(vec!["127.0.0.1:5353".into()]),
            dns_max_ttl_ms: Some(10_000),
            ..Default::default()
        };
        let s = edge_settings(&cli(&["--edge-domain", "Edge.Example"]), &section)
            .unwrap()
            .unwrap();
        assert_eq!(s.machine_dns_suffix, "machines.test");
        assert_eq!(s.edge_domain.as_deref(), Some("edge.example"));
        assert_eq!(s.machine_port, 8080);
        assert_eq!(s.dns_servers, vec!["127.0.0.1:5353".parse().unwrap()]);
        assert_eq!(s.dns_max_ttl, Duration::from_secs(10));
        assert_eq!(s.dns_min_ttl, DEFAULT_DNS_MIN_TTL);
        let e = edge_settings(&cli(&["--dns-servers", "localhost"]), &section);
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("invalid DNS server \"localhost\""));
    }
}
