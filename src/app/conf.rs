//! The YAML conf: pingora's own keys (`threads`, `pid_file`, ...), which pingora reads,
//! and our `cmux_proxy:` section, parsed here with unknown keys refused, so that a typo
//! stops start-up instead of being ignored.

use super::settings::*;
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
}

/// The whole YAML file as far as we read it: only our section.
#[derive(Debug, Default, Deserialize)]
struct ConfFile {
    #[serde(default)]
    cmux_proxy: Option<ConfSection>,
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
        assert!(e.0.contains("lisen"), "{e}");
        assert!(!e.0.contains('\n'));
    }
}
