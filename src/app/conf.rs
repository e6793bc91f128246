//! The YAML conf: pingora's own keys (`threads`, `pid_file`, ...), which pingora reads,
//! and our `cmux_proxy:` section, parsed here with unknown keys refused, so that a typo
//! stops start-up instead of being ignored.

use super::defaults::*;

use crate::observe::log_line::LogFormat;
use pingora::server::configuration::ServerConf;
use serde::Deserialize;

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
    pub auth_tokens: Option<Vec<String>>,
    pub auth_token_file: Option<String>,
    pub trusted_clients: Option<Vec<String>>,
    pub allow_clients: Option<Vec<String>>,
    pub allow_default_upstream: Option<bool>,
    pub allowed_ports: Option<Vec<String>>,
    pub denied_ports: Option<Vec<String>>,
    pub max_connections: Option<usize>,
    pub max_connections_per_client: Option<usize>,
    pub host_override: Option<String>,
    pub rewrite_loopback_redirects: Option<bool>,
    pub h2c_ports: Option<Vec<String>>,
    pub public_hosts: Option<Vec<String>>,
    /// `node` (the default) or `edge`; the other keys below are edge mode's.
    pub mode: Option<String>,
    pub edge_domain: Option<String>,
    pub machine_dns_suffix: Option<String>,
    pub machine_port: Option<u16>,
    pub dns_servers: Option<Vec<String>>,
    pub dns_min_ttl_ms: Option<u64>,
    pub dns_max_ttl_ms: Option<u64>,
    pub dns_negative_ttl_ms: Option<u64>,
    pub node_token: Option<String>,
}

/// Why a conf text was refused; every message says where and what.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// serde_yaml's message says what is wrong, where (`at line L column C`) and under
    /// which key; printed on one line.
    #[error("{}", .0.to_string().replace('\n', " "))]
    Yaml(serde_yaml::Error),
    /// pingora's own check of its keys refused them, saying why.
    #[error("{0}")]
    Pingora(String),
    /// A top-level key that neither pingora nor this proxy knows, with its line when
    /// found and the known key it is likely a typo of.
    #[error("unknown key `{name}`{}: {}", at_line(*.line), hint(.suggestion.as_deref()))]
    UnknownKey {
        name: String,
        line: Option<usize>,
        suggestion: Option<String>,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map_or(String::new(), |n| format!(" at line {n} column 1"))
}

fn hint(suggestion: Option<&str>) -> String {
    match suggestion {
        Some(k) => format!("did you mean `{k}`?"),
        None => format!("pingora's server keys and `{SECTION}` are allowed"),
    }
}

/// The whole YAML file as far as we read it: only our section.
#[derive(Debug, Default, Deserialize)]
struct ConfFile {
    #[serde(default)]
    cmux_proxy: Option<ConfSection>,
}

/// Parses one YAML text into pingora's conf and our section. Every error names the
/// line and column and says what is wrong; a top-level key that neither pingora nor
/// this proxy knows is refused, like an unknown key in our section.
pub fn parse_conf_text(text: &str) -> Result<(ServerConf, ConfSection), ConfError> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(ConfError::Yaml)?;
    if let serde_yaml::Value::Mapping(top) = &doc {
        check_top_level_keys(top, text)?;
    }
    // pingora's keys, with serde_yaml's own message (pingora's would quote the whole
    // file and drop the line), then pingora's own checks.
    let server_conf: ServerConf = serde_yaml::from_str(text).map_err(ConfError::Yaml)?;
    let server_conf = server_conf.validate().map_err(|e| {
        let why = e.context.as_ref().map(|c| c.to_string());
        ConfError::Pingora(why.unwrap_or_else(|| e.to_string()))
    })?;
    let file: ConfFile = serde_yaml::from_str(text).map_err(ConfError::Yaml)?;
    Ok((server_conf, file.cmux_proxy.unwrap_or_default()))
}

/// Our section's name and pingora's keys, as pingora writes its default conf.
fn known_keys() -> Vec<String> {
    let mut keys = vec![SECTION.to_string()];
    if let Ok(serde_yaml::Value::Mapping(defaults)) = serde_yaml::to_value(ServerConf::default()) {
        keys.extend(
            defaults
                .keys()
                .filter_map(|k| k.as_str().map(str::to_string)),
        );
    }
    keys
}

const SECTION: &str = "cmux_proxy";

fn check_top_level_keys(top: &serde_yaml::Mapping, text: &str) -> Result<(), ConfError> {
    let known = known_keys();
    for key in top.keys() {
        let name = match key.as_str() {
            Some(name) if known.iter().any(|k| k == name) => continue,
            Some(name) => name.to_string(),
            None => format!("{key:?}"),
        };
        let line = text
            .lines()
            .position(|l| {
                l.starts_with(name.as_str()) && l[name.len()..].trim_start().starts_with(':')
            })
            .map(|n| n + 1);
        let suggestion = closest(&name, &known).map(str::to_string);
        return Err(ConfError::UnknownKey {
            name,
            line,
            suggestion,
        });
    }
    Ok(())
}

/// The known key nearest to `name`, if it is a likely typo (at most 2 edits away).
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// Replaces pingora defaults that suit a fleet of servers but not a dev machine.
pub fn with_dev_defaults(mut conf: ServerConf) -> ServerConf {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
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
        assert!(e.to_string().contains("lisen"), "{e}");
        assert!(!e.to_string().contains('\n'));
        assert_eq!(
            e.to_string().matches("cmux_proxy").count(),
            1,
            "one prefix: {e}"
        );
        assert!(e.to_string().contains("line 3 column 3"), "{e}");
    }

    #[test]
    fn pingora_key_errors_name_line_column_and_reason() {
        let e = parse_conf_text("version: 1\nthreads: two\n").err().unwrap();
        assert!(
            e.to_string()
                .contains("threads: invalid type: string \"two\""),
            "{e}"
        );
        assert!(e.to_string().contains("line 2 column 10"), "{e}");
        let e = parse_conf_text("version: 1\n  threads: 2\n").err().unwrap();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_conf_text("version: 1\nmax_blocking_threads: 0\n")
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("max_blocking_threads must be greater than zero"),
            "{e}"
        );
    }

    #[test]
    fn unknown_top_level_keys_are_refused_with_a_suggestion() {
        let e = parse_conf_text("version: 1\nthread: 2\n").err().unwrap();
        assert_eq!(
            e.to_string(),
            "unknown key `thread` at line 2 column 1: did you mean `threads`?"
        );
        let e = parse_conf_text("version: 1\nfrobnicate: 2\n")
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("unknown key `frobnicate` at line 2"),
            "{e}"
        );
        assert!(parse_conf_text("version: 1\nthreads: 2\ncmux_proxy: {}\n").is_ok());
    }
}
