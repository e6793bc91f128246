#![deny(unsafe_code)]

use clap::Parser;
use cmux_proxy::app::{self, limits, server, signals};
use std::process::exit;

/// jemalloc: pingora allocates and frees many small buffers per request. Measured with
/// callgrind: 101.6k instructions per proxied request against 115k with glibc's malloc,
/// at the same memory per idle WebSocket (mimalloc saved as much CPU but held 3.6 times
/// the memory per idle connection). Its options are set at build time, in
/// `.cargo/config.toml`.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `-t`: the conf is valid; say what would listen, and exit.
fn report_valid(loaded: &app::Loaded) -> ! {
    let listen: Vec<String> = loaded
        .settings
        .listen
        .iter()
        .map(|a| a.to_string())
        .collect();
    let mode = match &loaded.settings.edge {
        Some(edge) => format!(", edge for machines under {}", edge.machine_dns_suffix),
        None => String::new(),
    };
    println!(
        "cmux-proxy: configuration OK (listen {}{mode})",
        listen.join(", ")
    );
    exit(0)
}

fn main() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,cmux_proxy=info"),
    )
    .init();

    let cli = app::Cli::parse();
    let mut loaded = match app::load(&cli) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("cmux-proxy: {e}");
            exit(2);
        }
    };
    if cli.test {
        report_valid(&loaded);
    }
    // On an upgrade the sockets come from the running instance, so they are in use.
    if !cli.upgrade {
        if let Err(e) = server::check_listen_addresses(&mut loaded.settings) {
            eprintln!("cmux-proxy: {e}");
            exit(1);
        }
    }
    server::warn_if_open(&loaded.settings);
    match limits::raise_open_file_limit() {
        Ok(Some(raised)) => log::info!(
            "open-file limit raised from {} to {}",
            raised.from,
            raised.to
        ),
        Ok(None) => {}
        Err(e) => log::warn!("could not raise the open-file limit: {e}"),
    }
    match &loaded.settings.edge {
        Some(edge) => log::info!(
            "listening on {:?} as an edge: machine M is M.{} (DNS: {})",
            loaded.settings.listen,
            edge.machine_dns_suffix,
            match edge.dns_servers.is_empty() {
                true => "the system's resolver".to_string(),
                false => format!("{:?}", edge.dns_servers),
            }
        ),
        None => log::info!(
            "listening on {:?}, default upstream host {}",
            loaded.settings.listen,
            loaded.settings.upstream_host_name
        ),
    }
    match server::build(&cli, loaded) {
        Ok(server) => signals::run(server),
        Err(e) => {
            eprintln!("cmux-proxy: {e}");
            exit(1);
        }
    }
}
