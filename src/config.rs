//! Settings: command-line flags, environment variables and the YAML conf, merged.
//!
//! Precedence is flag, then environment, then the conf's `cmux_proxy:` section, then the
//! built-in default. The same YAML file carries pingora's own keys (`threads`,
//! `pid_file`, ...), which pingora reads; our section is parsed here with unknown keys
//! refused, so a typo stops start-up instead of being ignored.

use crate::access_log::{LogFormat, LogTarget};
use clap::Parser;
use pingora::server::configuration::{Opt, ServerConf};
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Listen addresses used when nothing else says otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080,127.0.0.1:8080";
pub const DEFAULT_UPSTREAM_HOST: &str = "127.0.0.1";
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_REQUEST_HEAD_TIMEOUT_MS: u64 = 30_000;
/// A dev server restart (Vite, Next, nodemon) usually re-opens its port within a second
/// or two; waiting up to 2 s turns those into a slow answer instead of a 502, while a
/// port nobody will open still fails quickly.
pub const DEFAULT_WAIT_FOR_PORT_MS: u64 = 2_000;
pub const DEFAULT_MAX_WAIT_FOR_PORT_MS: u64 = 30_000;
/// pingora's default retry cap (16) would cut a wait-for-port budget short; the budget
/// itself bounds the retries.
pub const MIN_MAX_RETRIES: usize = 1_000;
/// Grace periods for a dev machine: pingora's own default is 300 s.
pub const DEFAULT_GRACE_PERIOD_SECONDS: u64 = 5;
pub const DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9091";
pub const DEFAULT_PID_FILE: &str = "/tmp/cmux-proxy.pid";
pub const DEFAULT_UPGRADE_SOCK: &str = "/tmp/cmux-proxy-upgrade.sock";
/// SO_SNDBUF of a CONNECT tunnel's socket to a loopback target. Left to autotuning, the
/// kernel grows it to 4 MiB and megabytes queue between the proxy and the target; capped,
/// the bytes in flight stay cache-sized. Measured with a 1 GiB upload through one tunnel
/// on a 2-core VM: 0.35-0.49x direct uncapped, 1.02-1.17x at 256 KiB (128 KiB:
/// 0.92-1.09x; 1 MiB: no gain); proxy CPU per MB 177-242 µs -> 93-102 µs.
pub const DEFAULT_TUNNEL_SEND_BUFFER_BYTES: usize = 256 * 1024;
/// Above this a send buffer size is surely a typo (the kernel caps it at
/// `net.core.wmem_max` anyway).
const MAX_TUNNEL_SEND_BUFFER_BYTES: usize = 1 << 30;

/// Command line. pingora's own flags (`-c`, `-d`, `-u`, `-t`) are flattened in.
#[derive(Parser, Debug)]
#[command(
    name = "cmux-proxy",
    version,
    about = "Header-routed reverse proxy for side-by-side coding workspaces"
)]
pub struct Cli {
    /// Address to listen on, IP:PORT; repeatable or comma-separated
    /// [default: 0.0.0.0:8080,127.0.0.1:8080]
    #[arg(long = "listen", env = "CMUX_LISTEN", value_delimiter = ',')]
    pub listen: Vec<String>,

    /// Upstream host for requests that name no workspace (a name or an IP literal)
    /// [default: 127.0.0.1]
    #[arg(long, env = "CMUX_UPSTREAM_HOST")]
    pub upstream_host: Option<String>,

    /// Upstream connect timeout in milliseconds [default: 5000]
    #[arg(long, env = "CMUX_CONNECT_TIMEOUT_MS")]
    pub connect_timeout_ms: Option<u64>,

    /// How long to keep retrying a target that refuses connections, in milliseconds
    /// (0: answer 502 at once) [default: 2000]
    #[arg(long, env = "CMUX_WAIT_FOR_PORT_MS")]
    pub wait_for_port_ms: Option<u64>,

    /// Admin listener (health, metrics, ports), IP:PORT or "off" [default: 127.0.0.1:9091]
    #[arg(long, env = "CMUX_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,

    /// Access log: "stderr", "off" or a file path [default: stderr]
    #[arg(long, env = "CMUX_ACCESS_LOG")]
    pub access_log: Option<String>,

    #[command(flatten)]
    pub pingora: Opt,
}

/// Our section of the YAML conf (`cmux_proxy:`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfSection {
    pub listen: Option<Vec<String>>,
    pub upstream_host: Option<String>,
    pub connect_timeout_ms: Option<u64>,
    pub request_head_timeout_ms: Option<u64>,
    pub wait_for_port_ms: Option<u64>,
    pub max_wait_for_port_ms: Option<u64>,
    pub tunnel_idle_timeout_ms: Option<u64>,
    pub upstream_read_timeout_ms: Option<u64>,
    pub tunnel_send_buffer_bytes: Option<usize>,
    pub admin_listen: Option<String>,
    pub access_log: Option<String>,
    pub access_log_format: Option<LogFormat>,
    pub access_log_query: Option<bool>,
    pub metrics_per_target: Option<bool>,
}

/// The whole YAML file as far as we read it: only our section.
#[derive(Debug, Default, Deserialize)]
struct ConfFile {
    #[serde(default)]
    cmux_proxy: Option<ConfSection>,
}

/// The proxy's settings after merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: Vec<SocketAddr>,
    /// `--upstream-host` as given, for messages.
    pub upstream_host_name: String,
    /// `--upstream-host` resolved once at start-up.
    pub upstream_host: IpAddr,
    pub connect_timeout: Duration,
    /// Longest time a client may take to send a request head (and, on a new connection,
    /// its first bytes).
    pub request_head_timeout: Duration,
    /// Default wait for a refusing target to start listening.
    pub wait_for_port: Duration,
    /// Cap on the wait a request may ask for with `X-Cmux-Wait-Ms`.
    pub max_wait_for_port: Duration,
    /// Idle timeout of tunnels; `None` (the default) keeps quiet tunnels open.
    pub tunnel_idle_timeout: Option<Duration>,
    /// Longest silence from a target before or during its response (not upgrades);
    /// `None` (the default) waits as long as the client does.
    pub upstream_read_timeout: Option<Duration>,
    /// SO_SNDBUF for a CONNECT tunnel's socket to a loopback target; `None` leaves it to
    /// the kernel's autotuning.
    pub tunnel_send_buffer: Option<usize>,
    /// Where the admin endpoints listen; `None` turns them off.
    pub admin_listen: Option<SocketAddr>,
    pub access_log: LogTarget,
    pub access_log_format: LogFormat,
    /// Whether access log lines keep the query string (it may carry secrets).
    pub access_log_query: bool,
    /// Whether metrics carry `workspace` and `port` labels (capped).
    pub metrics_per_target: bool,
}

/// A start-up error: printed as one line, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// An optional timeout in milliseconds, where absent and 0 both mean "none".
fn optional_ms(ms: Option<u64>) -> Option<Duration> {
    ms.filter(|ms| *ms > 0).map(Duration::from_millis)
}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Everything start-up needs: our settings and pingora's conf.
pub struct Loaded {
    pub settings: Settings,
    pub server_conf: ServerConf,
}

/// Reads the conf named by `-c` (if any) and merges it with the command line.
pub fn load(cli: &Cli) -> Result<Loaded, ConfigError> {
    let (server_conf, section) = match &cli.pingora.conf {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .or_else(|e| err(format!("cannot read conf file {path}: {e}")))?;
            parse_conf_text(&text).map_err(|e| ConfigError(format!("conf file {path}: {e}")))?
        }
        None => (
            ServerConf::new().expect("pingora's built-in conf parses"),
            ConfSection::default(),
        ),
    };
    if server_conf.daemon_wait_for_ready {
        // pingora's bootstrap runs before the fork here, so the readiness signal would
        // never reach the launcher, which would give up while the daemon runs on.
        return err("daemon_wait_for_ready is not supported: use scripts/cmux-proxyctl, which waits for readiness itself");
    }
    let server_conf = with_dev_defaults(server_conf);
    let settings = merge(cli, section)?;
    Ok(Loaded {
        settings,
        server_conf,
    })
}

/// Parses one YAML text into pingora's conf and our section.
pub fn parse_conf_text(text: &str) -> Result<(ServerConf, ConfSection), ConfigError> {
    let server_conf = ServerConf::from_yaml(text).or_else(|e| {
        // pingora's message quotes the whole file; keep only its first line.
        let full = e.to_string();
        let first = full.lines().next().unwrap_or("invalid YAML").to_string();
        err(format!("pingora settings: {first}"))
    })?;
    let file: ConfFile = serde_yaml::from_str(text)
        .or_else(|e| err(format!("section cmux_proxy: {e}").replace('\n', " ")))?;
    Ok((server_conf, file.cmux_proxy.unwrap_or_default()))
}

/// Replaces pingora defaults that suit a fleet of servers but not a dev machine.
fn with_dev_defaults(mut conf: ServerConf) -> ServerConf {
    conf.grace_period_seconds
        .get_or_insert(DEFAULT_GRACE_PERIOD_SECONDS);
    conf.graceful_shutdown_timeout_seconds
        .get_or_insert(DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS);
    conf.max_retries = conf.max_retries.max(MIN_MAX_RETRIES);
    let pingora_defaults = ServerConf::default();
    if conf.pid_file == pingora_defaults.pid_file {
        conf.pid_file = DEFAULT_PID_FILE.to_string();
    }
    if conf.upgrade_sock == pingora_defaults.upgrade_sock {
        conf.upgrade_sock = DEFAULT_UPGRADE_SOCK.to_string();
    }
    conf
}

/// Merges flag/env values (already combined by clap) with the conf section and defaults.
pub fn merge(cli: &Cli, section: ConfSection) -> Result<Settings, ConfigError> {
    let listen_raw: Vec<String> = if !cli.listen.is_empty() {
        cli.listen.clone()
    } else if let Some(list) = section.listen {
        list
    } else {
        DEFAULT_LISTEN.split(',').map(str::to_string).collect()
    };
    let listen = parse_listen(&listen_raw)?;

    let upstream_host_name = cli
        .upstream_host
        .clone()
        .or(section.upstream_host)
        .unwrap_or_else(|| DEFAULT_UPSTREAM_HOST.to_string());
    let upstream_host = resolve_host(&upstream_host_name)?;

    let connect_timeout_ms = cli
        .connect_timeout_ms
        .or(section.connect_timeout_ms)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS);
    if connect_timeout_ms == 0 {
        return err("connect_timeout_ms must be greater than 0");
    }
    let request_head_timeout_ms = section
        .request_head_timeout_ms
        .unwrap_or(DEFAULT_REQUEST_HEAD_TIMEOUT_MS);
    if request_head_timeout_ms == 0 {
        return err("request_head_timeout_ms must be greater than 0");
    }

    let max_wait_for_port_ms = section
        .max_wait_for_port_ms
        .unwrap_or(DEFAULT_MAX_WAIT_FOR_PORT_MS);
    let wait_for_port_ms = cli
        .wait_for_port_ms
        .or(section.wait_for_port_ms)
        .unwrap_or(DEFAULT_WAIT_FOR_PORT_MS)
        .min(max_wait_for_port_ms);
    let tunnel_idle_timeout = optional_ms(section.tunnel_idle_timeout_ms);
    let upstream_read_timeout = optional_ms(section.upstream_read_timeout_ms);
    let tunnel_send_buffer = match section
        .tunnel_send_buffer_bytes
        .unwrap_or(DEFAULT_TUNNEL_SEND_BUFFER_BYTES)
    {
        0 => None,
        bytes if bytes > MAX_TUNNEL_SEND_BUFFER_BYTES => {
            return err(format!(
                "tunnel_send_buffer_bytes must be at most {MAX_TUNNEL_SEND_BUFFER_BYTES} \
                 (0 leaves it to the kernel)"
            ))
        }
        bytes => Some(bytes),
    };

    let admin_raw = cli
        .admin_listen
        .clone()
        .or(section.admin_listen)
        .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_string());
    let admin_listen = match admin_raw.trim() {
        "off" | "" => None,
        addr => Some(addr.parse::<SocketAddr>().or_else(|_| {
            err(format!(
                "invalid admin listen address {addr:?}: expected IP:PORT or \"off\""
            ))
        })?),
    };
    if let Some(admin) = admin_listen {
        if listen.iter().any(|l| {
            l.port() == admin.port()
                && (l.ip() == admin.ip() || l.ip().is_unspecified() || admin.ip().is_unspecified())
        }) {
            return err(format!(
                "admin listen address {admin} overlaps a proxy listen address"
            ));
        }
    }
    let access_log = LogTarget::parse(
        cli.access_log
            .as_deref()
            .or(section.access_log.as_deref())
            .unwrap_or("stderr"),
    );

    Ok(Settings {
        admin_listen,
        access_log,
        access_log_format: section.access_log_format.unwrap_or_default(),
        access_log_query: section.access_log_query.unwrap_or(false),
        metrics_per_target: section.metrics_per_target.unwrap_or(false),
        listen,
        upstream_host_name,
        upstream_host,
        connect_timeout: Duration::from_millis(connect_timeout_ms),
        request_head_timeout: Duration::from_millis(request_head_timeout_ms),
        wait_for_port: Duration::from_millis(wait_for_port_ms),
        max_wait_for_port: Duration::from_millis(max_wait_for_port_ms),
        tunnel_idle_timeout,
        upstream_read_timeout,
        tunnel_send_buffer,
    })
}

/// Parses listen addresses (each may itself be comma-separated) and drops those another
/// one already covers: exact duplicates, and any IPv4 address on a port that `0.0.0.0`
/// also listens on (likewise `[::]` for IPv6), which could not be bound twice anyway.
pub fn parse_listen(raw: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut parsed: Vec<SocketAddr> = Vec::new();
    for item in raw.iter().flat_map(|s| s.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let addr: SocketAddr = item.parse().or_else(|_| {
            err(format!(
                "invalid listen address {item:?}: expected IP:PORT, for example 127.0.0.1:8080 or [::1]:8080"
            ))
        })?;
        if !parsed.contains(&addr) {
            parsed.push(addr);
        }
    }
    if parsed.is_empty() {
        return err("no listen address given");
    }
    let covered = |a: &SocketAddr| {
        !a.ip().is_unspecified()
            && parsed.iter().any(|w| {
                w.ip().is_unspecified() && w.port() == a.port() && w.is_ipv4() == a.is_ipv4()
            })
    };
    Ok(parsed.iter().filter(|a| !covered(a)).copied().collect())
}

/// Resolves `--upstream-host` once, at start-up, so that no request waits on a name
/// lookup. IP literals are used as they are.
fn resolve_host(host: &str) -> Result<IpAddr, ConfigError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    match (host, 0u16).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => Ok(a.ip()),
            None => err(format!("upstream host {host:?} has no address")),
        },
        Err(e) => err(format!("cannot resolve upstream host {host:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["cmux-proxy"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

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
        assert!(e.0.contains("\"localhost:80\""), "{e}");
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
        assert_eq!(s.upstream_host, "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(s.connect_timeout, Duration::from_millis(1234));
        let s = merge(
            &cli(&["--listen", "127.0.0.1:1", "--upstream-host", "::1"]),
            section(),
        )
        .unwrap();
        assert_eq!(s.listen, vec!["127.0.0.1:1".parse().unwrap()]);
        assert_eq!(s.upstream_host, "::1".parse::<IpAddr>().unwrap());
        let s = merge(&cli(&[]), ConfSection::default()).unwrap();
        assert_eq!(s.connect_timeout, Duration::from_millis(5000));
        assert_eq!(s.upstream_host_name, "127.0.0.1");
    }

    #[test]
    fn conf_section_refuses_unknown_keys() {
        let (_, section) =
            parse_conf_text("version: 1\nthreads: 2\ncmux_proxy:\n  listen: [\"127.0.0.1:1\"]\n")
                .unwrap();
        assert_eq!(section.listen, Some(strings(&["127.0.0.1:1"])));
        let e = parse_conf_text("version: 1\ncmux_proxy:\n  lisen: []\n")
            .err()
            .unwrap();
        assert!(e.0.contains("lisen"), "{e}");
        assert!(!e.0.contains('\n'));
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
        let default = with(None).unwrap().tunnel_send_buffer;
        assert_eq!(default, Some(DEFAULT_TUNNEL_SEND_BUFFER_BYTES));
        assert_eq!(with(Some(0)).unwrap().tunnel_send_buffer, None);
        assert_eq!(with(Some(65536)).unwrap().tunnel_send_buffer, Some(65536));
        let e = with(Some(1 << 31)).unwrap_err();
        assert!(
            e.0.contains("tunnel_send_buffer_bytes must be at most"),
            "{e}"
        );
    }

    #[test]
    fn pingora_flags_still_parse() {
        let c = cli(&["-d", "-u", "-c", "/x.yaml", "-t"]);
        assert!(c.pingora.daemon && c.pingora.upgrade && c.pingora.test);
        assert_eq!(c.pingora.conf.as_deref(), Some("/x.yaml"));
    }
}
