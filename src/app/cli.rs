//! The command line. Each flag can also come from the environment (`CMUX_*`) or the
//! conf's `cmux_proxy:` section; `merge.rs` says which wins.

use clap::Parser;
use pingora::server::configuration::Opt;

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

    /// The Host sent to targets of requests without X-Cmux-Host-Override: "keep" (the
    /// client's) or "localhost" (localhost:<target port>) [default: keep]
    #[arg(long, env = "CMUX_HOST_OVERRIDE")]
    pub host_override: Option<String>,

    /// Access log: "stderr", "off" or a file path [default: stderr]
    #[arg(long, env = "CMUX_ACCESS_LOG")]
    pub access_log: Option<String>,

    /// A file of tokens, one per line: every request must then carry one (re-read on
    /// SIGHUP) [default: none]
    #[arg(long, env = "CMUX_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<String>,

    /// Client addresses allowed to connect, CIDR, comma-separated [default: any]
    #[arg(long, env = "CMUX_ALLOW_CLIENTS", value_delimiter = ',')]
    pub allow_clients: Vec<String>,

    /// Client addresses let in without a token, CIDR, comma-separated [default: none]
    #[arg(long, env = "CMUX_TRUSTED_CLIENTS", value_delimiter = ',')]
    pub trusted_clients: Vec<String>,

    /// Host names besides localhost, *.localhost and the proxy's addresses that requests
    /// may carry (DNS rebinding guard): NAME or *.DOMAIN, comma-separated [default: none]
    #[arg(long, env = "CMUX_PUBLIC_HOSTS", value_delimiter = ',')]
    pub public_hosts: Vec<String>,

    /// "node" (serve this machine's workspaces) or "edge" (forward each request to the
    /// cmux-proxy of the machine that holds the workspace) [default: node]
    #[arg(long, env = "CMUX_MODE")]
    pub mode: Option<String>,

    /// Edge mode: the domain of `<workspace>-<port>--<machine>.<domain>` hosts
    #[arg(long, env = "CMUX_EDGE_DOMAIN")]
    pub edge_domain: Option<String>,

    /// Edge mode: machine M is looked up in DNS as M.<suffix>
    #[arg(long, env = "CMUX_MACHINE_DNS_SUFFIX")]
    pub machine_dns_suffix: Option<String>,

    /// Edge mode: DNS servers, IP:PORT, comma-separated [default: the system's]
    #[arg(long, env = "CMUX_DNS_SERVERS", value_delimiter = ',')]
    pub dns_servers: Vec<String>,

    /// Edge mode: the token sent to node proxies (X-Cmux-Token) [default: none]
    #[arg(long, env = "CMUX_NODE_TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,

    /// The YAML conf file: pingora's server keys (threads, pid_file, error_log, ...) and
    /// this proxy's `cmux_proxy:` section
    #[arg(short = 'c', long = "conf")]
    pub conf: Option<String>,

    /// Run in the background: detach from the terminal, write the conf's pid_file and
    /// log to its error_log
    #[arg(short = 'd', long)]
    pub daemon: bool,

    /// Take over the listening sockets of the instance that is running now (graceful
    /// upgrade: start this, then send the old one SIGQUIT; no connection is refused)
    #[arg(short = 'u', long)]
    pub upgrade: bool,

    /// Check the conf and the flags, print what would listen, and exit (0: valid,
    /// 2: invalid)
    #[arg(short = 't', long)]
    pub test: bool,

    /// Ignored: accepted because test harnesses pass it to every binary they run
    #[arg(long, hide = true)]
    pub nocapture: bool,
}

impl Cli {
    /// pingora's options as given, without the conf path: the conf was already read
    /// once and is handed to pingora whole.
    pub fn pingora_opt(&self) -> Opt {
        Opt {
            upgrade: self.upgrade,
            daemon: self.daemon,
            nocapture: self.nocapture,
            test: self.test,
            conf: None,
        }
    }
}

/// The command line without its `CMUX_*` variables. clap reads an argument's variable
/// when the command is built, so clearing them here keeps an exported
/// `CMUX_AUTH_TOKEN_FILE` (or any other) in the developer's shell out of the tests.
#[cfg(test)]
fn command_without_env() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_args(|arg| arg.env(None))
}

/// The command line `cmux-proxy ARGS...`, parsed as the binary parses it but without
/// the environment: for tests.
#[cfg(test)]
pub fn parse_args(args: &[&str]) -> Cli {
    use clap::FromArgMatches;
    let all = std::iter::once("cmux-proxy").chain(args.iter().copied());
    let matches = command_without_env().try_get_matches_from(all).unwrap();
    Cli::from_arg_matches(&matches).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pingora_flags_still_parse() {
        let c = parse_args(&["-d", "-u", "-c", "/x.yaml", "-t"]);
        assert!(c.daemon && c.upgrade && c.test);
        assert_eq!(c.conf.as_deref(), Some("/x.yaml"));
    }

    #[test]
    fn tests_parse_without_the_environment() {
        use clap::CommandFactory;
        let from_env = |c: &clap::Command| c.get_arguments().any(|a| a.get_env().is_some());
        assert!(
            from_env(&Cli::command()),
            "the binary reads CMUX_* variables"
        );
        assert!(!from_env(&command_without_env()), "tests must not");
        let c = parse_args(&[]);
        assert!(c.listen.is_empty() && c.auth_token_file.is_none() && c.mode.is_none());
    }

    #[test]
    fn help_is_in_our_words() {
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("Take over the listening sockets"), "{help}");
        assert!(help.contains("Run in the background"), "{help}");
        assert!(
            !help.contains("base set of command line arguments"),
            "{help}"
        );
        assert!(!help.contains("upgrading service"), "{help}");
    }
}
