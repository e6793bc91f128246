//! Start-up's reading of the settings: the conf file named by `-c`, merged with the
//! command line and the environment.

use super::cli::Cli;
use super::conf::{parse_conf_text, with_dev_defaults, ConfSection};
use super::merge::merge;
use super::settings::{err, ConfigError, Settings};
use pingora::server::configuration::ServerConf;

/// Everything start-up needs: our settings and pingora's conf.
pub struct Loaded {
    pub settings: Settings,
    pub server_conf: ServerConf,
}

/// Reads the conf named by `-c` (if any) and merges it with the command line.
pub fn load(cli: &Cli) -> Result<Loaded, ConfigError> {
    let (server_conf, section) = match &cli.conf {
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
