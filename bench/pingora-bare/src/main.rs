//! pingora-bare: the benchmark's measure of what pingora itself can do (issue 20).
//!
//! A `ProxyHttp` whose `upstream_peer` reads `X-Cmux-Port-Internal` and returns
//! `127.0.0.1:PORT`, and nothing else: no forwarding headers, no hop-by-hop clean-up, no
//! access log, metrics or error pages. Built by the workspace's release profile with the
//! same pingora features and allocator as cmux-proxy, so `cmux-proxy ÷ pingora-bare` is
//! the cost of cmux-proxy's own hooks.
//!
//! Usage: `pingora-bare --conf FILE --listen ADDR`; FILE is a pingora YAML conf (threads,
//! pid_file, upgrade_sock), the same one bench/run.sh gives cmux-proxy.

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use std::process::exit;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The routing header the benchmark (and cmux-proxy) uses.
const PORT_HEADER: &str = "x-cmux-port-internal";

struct Bare;

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let port = session
            .req_header()
            .headers
            .get(PORT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u16>().ok())
            .ok_or_else(|| Error::explain(HTTPStatus(400), "missing or bad port header"))?;
        Ok(Box::new(HttpPeer::new(
            ("127.0.0.1", port),
            false,
            String::new(),
        )))
    }
}

fn usage() -> ! {
    eprintln!("usage: pingora-bare --conf FILE --listen ADDR");
    exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut conf_path, mut listen) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--conf" | "-c" => conf_path = it.next().cloned(),
            "--listen" => listen = it.next().cloned(),
            _ => usage(),
        }
    }
    let (Some(conf_path), Some(listen)) = (conf_path, listen) else {
        usage()
    };
    let conf = match ServerConf::load_from_yaml(&conf_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pingora-bare: {conf_path}: {e}");
            exit(2)
        }
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = http_proxy_service(&server.configuration, Bare);
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
