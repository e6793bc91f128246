//! Start-up's reading of the settings: the conf file named by `-c`, merged with the
//! command line and the environment.

use super::cli::Cli;
use super::conf::{parse_conf_text, with_dev_defaults, ConfSection};
use super::merge::merge;
use super::startup_error::StartupError;
use crate::state::Settings;
use pingora::server::configuration::ServerConf;

/// Everything start-up needs: our settings and pingora's conf.
pub struct Loaded {
    pub settings: Settings,
    pub server_conf: ServerConf,
}

/// Reads the conf named by `-c` (if any) and merges it with the command line.
pub fn load(cli: &Cli) -> Result<Loaded, StartupError> {
    let (server_conf, section) = match &cli.conf {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|error| StartupError::ConfUnreadable {
                    path: path.clone(),
                    error,
                })?;
            parse_conf_text(&text).map_err(|error| StartupError::Conf {
                path: path.clone(),
                error,
            })?
        }
        None => (
            ServerConf::new().expect("pingora's built-in conf parses"),
            ConfSection::default(),
        ),
    };
    if server_conf.daemon_wait_for_ready {
        return Err(StartupError::DaemonWaitForReady);
    }
    let server_conf = with_dev_defaults(server_conf);
    let settings = merge(cli, section)?;
    Ok(Loaded {
        settings,
        server_conf,
    })
}
