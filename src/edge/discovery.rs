//! Finding a machine's proxy through DNS: an SRV record `_cmux._tcp.<machine>.<suffix>`
//! when there is one (its target and port), else the A/AAAA records of
//! `<machine>.<suffix>` and the configured machine port.
//!
//! hickory-resolver does the DNS and the caching: answers live for their TTL, clamped to
//! the floor and ceiling of the settings, and "no such name" for the negative TTL. So a
//! changed record is followed once the old answer expires, with no restart, and a
//! request costs a cache look-up, not a query.

use super::settings::EdgeSettings;
use super::EdgeError;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How a machine's address was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Srv,
    Address,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Srv => "srv",
            Source::Address => "a",
        }
    }
}

/// A machine's proxy, as DNS says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub addr: SocketAddr,
    /// Every address the records gave (the first is used).
    pub all: Vec<IpAddr>,
    pub source: Source,
    /// When the cached answer expires.
    pub valid_until: Instant,
}

/// Why a machine's proxy was not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotFound {
    /// DNS has no record for the machine: `machine_unknown`.
    Unknown(String),
    /// DNS did not answer (timeout, server failure): the reason.
    LookupFailed(String),
}

/// The DNS side of an edge.
pub struct Discovery {
    resolver: TokioResolver,
    suffix: String,
    port: u16,
    /// A whole look-up (SRV, then addresses) never takes longer than this.
    deadline: Duration,
}

/// The resolver's options: the TTL bounds, and a query timeout within the deadline.
fn options(settings: &EdgeSettings, deadline: Duration) -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    opts.positive_min_ttl = Some(settings.dns_min_ttl);
    opts.positive_max_ttl = Some(settings.dns_max_ttl);
    opts.negative_min_ttl = Some(settings.dns_negative_ttl);
    opts.negative_max_ttl = Some(settings.dns_negative_ttl);
    // Names are absolute: no search domains, no /etc/hosts.
    opts.ndots = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.timeout = (deadline / 2).max(Duration::from_millis(100));
    opts.attempts = 1;
    opts.cache_size = 4096;
    opts
}

fn config(servers: &[SocketAddr]) -> ResolverConfig {
    let name_servers = servers
        .iter()
        .map(|s| {
            let mut udp = ConnectionConfig::udp();
            udp.port = s.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = s.port();
            NameServerConfig::new(s.ip(), true, vec![udp, tcp])
        })
        .collect();
    ResolverConfig::from_name_servers(name_servers)
}

impl Discovery {
    /// A resolver for `settings.dns_servers`, or the system's when there are none.
    /// `deadline` is the connect timeout: no look-up waits longer.
    pub fn new(settings: &EdgeSettings, deadline: Duration) -> Result<Self, EdgeError> {
        let provider = TokioRuntimeProvider::default();
        let builder = if settings.dns_servers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| EdgeError::SystemDns(e.to_string()))?
        } else {
            TokioResolver::builder_with_config(config(&settings.dns_servers), provider)
        };
        let resolver = builder
            .with_options(options(settings, deadline))
            .build()
            .map_err(|e| EdgeError::Resolver(e.to_string()))?;
        Ok(Discovery {
            resolver,
            suffix: settings.machine_dns_suffix.trim_matches('.').to_string(),
            port: settings.machine_port,
            deadline,
        })
    }

    /// The fully qualified name of a machine.
    pub fn name_of(&self, machine: &str) -> String {
        format!("{machine}.{}.", self.suffix)
    }

    /// Finds a machine's proxy, within the deadline.
    pub async fn find(&self, machine: &str) -> Result<Found, NotFound> {
        match tokio::time::timeout(self.deadline, self.find_now(machine)).await {
            Ok(found) => found,
            Err(_) => Err(NotFound::LookupFailed(format!(
                "no DNS answer for {} within {} ms",
                self.name_of(machine),
                self.deadline.as_millis()
            ))),
        }
    }

    async fn find_now(&self, machine: &str) -> Result<Found, NotFound> {
        let name = self.name_of(machine);
        let srv_name = format!("_cmux._tcp.{name}");
        match self.resolver.srv_lookup(srv_name.as_str()).await {
            Ok(lookup) => {
                let srv = lookup.answers().iter().find_map(|r| match &r.data {
                    RData::SRV(srv) => Some((srv.target.to_string(), srv.port)),
                    _ => None,
                });
                if let Some((target, port)) = srv {
                    let until = lookup.valid_until();
                    let mut found = self.addresses(&target, port, Source::Srv).await?;
                    found.valid_until = found.valid_until.min(until);
                    return Ok(found);
                }
            }
            Err(e) if no_record(&e) => {}
            Err(e) => return Err(NotFound::LookupFailed(format!("SRV {srv_name}: {e}"))),
        }
        self.addresses(&name, self.port, Source::Address).await
    }

    async fn addresses(&self, name: &str, port: u16, source: Source) -> Result<Found, NotFound> {
        match self.resolver.lookup_ip(name).await {
            Ok(lookup) => {
                let all: Vec<IpAddr> = lookup.iter().collect();
                match all.first() {
                    Some(ip) => Ok(Found {
                        addr: SocketAddr::new(*ip, port),
                        source,
                        valid_until: lookup.valid_until(),
                        all,
                    }),
                    None => Err(NotFound::Unknown(name.to_string())),
                }
            }
            Err(e) if no_record(&e) => Err(NotFound::Unknown(name.to_string())),
            Err(e) => Err(NotFound::LookupFailed(format!("{name}: {e}"))),
        }
    }
}

/// "No such name" or "no record of this type": the name is not a machine.
fn no_record(e: &NetError) -> bool {
    e.is_nx_domain() || e.is_no_records_found()
}
