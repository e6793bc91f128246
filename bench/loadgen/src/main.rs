//! cmux-loadgen: the servers and load clients of cmux-proxy's benchmark (`bench/run.sh`).
//!
//! Servers (print `listening ADDR` once bound):
//!   ws-echo-server  --listen ADDR      WebSocket echo (a plain GET gets a small 200)
//!   tcp-sink-server --listen ADDR      length-framed bulk sink/source (see servers.rs)
//!   tcp-echo-server --listen ADDR      echoes raw bytes
//! Clients (`--port P` adds `X-Cmux-Port-Internal: P`, i.e. goes through a proxy):
//!   ws-pingpong  --addr ADDR [--port P] [--conns 10] [--size 32] [--secs 5] [--warmup 0.5] [--via-connect]
//!   connect-bulk --addr ADDR [--connect-port P] [--bytes 1073741824] [--download] [--chunk 1048576]
//!   idle-ws      --addr ADDR [--port P] [--conns 10000] [--concurrency 64] [--hold 120] [--ready-file F] [--via-connect]
//!   (--via-connect: the WebSocket runs inside a CONNECT tunnel to P instead of an upgrade)
//!   http-rate    --addr ADDR [--port P] [--path /small] [--rate 1000] [--secs 10] [--warmup 1] [--conns 20] [--timeline]
//!                fixed-rate (open-loop) requests: latency percentiles at a set load
//! Reference:
//!   tcp-relay --listen ADDR --to ADDR [--mode copy|splice] [--buf 65536] [--sndbuf 262144]
//!             bare TCP forwarder (--sndbuf: SO_SNDBUF toward --to, 0 = the kernel's)
//! Helpers:
//!   free-ports N                       prints N distinct free loopback ports
//!   summarize --raw F [--meta F] [--markdown F] [--readme F] [--svg F]

mod chart;
mod clients;
mod relay;
mod servers;
mod summarize;
mod ws;

use std::collections::HashMap;
use std::process::ExitCode;

/// End of an HTTP head (index just past `\r\n\r\n`).
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// First value of header `name` (lower-case) in an HTTP head.
pub fn header_value(head: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    text.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

struct Opts {
    map: HashMap<String, String>,
    flags: Vec<String>,
    positional: Vec<String>,
}

impl Opts {
    fn parse(args: &[String]) -> Opts {
        let mut o = Opts {
            map: HashMap::new(),
            flags: Vec::new(),
            positional: Vec::new(),
        };
        let mut i = 0;
        while i < args.len() {
            if let Some(k) = args[i].strip_prefix("--") {
                if let Some((k, v)) = k.split_once('=') {
                    o.map.insert(k.into(), v.into());
                } else if i + 1 < args.len() && !args[i + 1].starts_with("--") {
                    o.map.insert(k.into(), args[i + 1].clone());
                    i += 1;
                } else {
                    o.flags.push(k.into());
                }
            } else {
                o.positional.push(args[i].clone());
            }
            i += 1;
        }
        o
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }
    fn req(&self, k: &str) -> Result<&str, String> {
        self.get(k).ok_or_else(|| format!("missing --{k}"))
    }
    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("bad --{k}: {v}")),
        }
    }
    fn opt_num<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, String> {
        self.get(k)
            .map(|v| v.parse().map_err(|_| format!("bad --{k}: {v}")))
            .transpose()
    }
    fn flag(&self, k: &str) -> bool {
        self.flags.iter().any(|f| f == k)
    }
}

fn free_ports(n: usize) -> std::io::Result<()> {
    // Hold every socket until all are chosen so the N ports are distinct.
    let socks: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let ports: Vec<String> = socks
        .iter()
        .map(|s| s.local_addr().map(|a| a.port().to_string()))
        .collect::<Result<_, _>>()?;
    println!("{}", ports.join(" "));
    Ok(())
}

fn run(cmd: &str, o: &Opts) -> Result<(), String> {
    let io = |r: std::io::Result<()>| r.map_err(|e| format!("{cmd}: {e}"));
    match cmd {
        "ws-echo-server" | "tcp-sink-server" | "tcp-echo-server" => io(servers::run_server(
            cmd,
            o.get("listen").unwrap_or("127.0.0.1:0"),
        )),
        "ws-pingpong" => io(clients::ws_pingpong(
            o.req("addr")?,
            o.opt_num("port")?,
            o.num("conns", 10)?,
            o.num("size", 32)?,
            o.num("secs", 5.0)?,
            o.num("warmup", 0.5)?,
            o.flag("via-connect"),
        )),
        "connect-bulk" => io(clients::connect_bulk(
            o.req("addr")?,
            o.opt_num("connect-port")?,
            o.num("bytes", 1u64 << 30)?,
            o.flag("download"),
            o.num("chunk", 1usize << 20)?,
        )),
        "idle-ws" => io(clients::idle_ws(
            o.req("addr")?,
            o.opt_num("port")?,
            o.num("conns", 10_000)?,
            o.num("concurrency", 64)?,
            o.num("hold", 120.0)?,
            o.get("ready-file"),
            o.flag("via-connect"),
        )),
        "http-rate" => io(clients::http_rate(&clients::RateOpts {
            addr: o.req("addr")?,
            port: o.opt_num("port")?,
            path: o.get("path").unwrap_or("/small"),
            rate: o.num("rate", 1000.0)?,
            secs: o.num("secs", 10.0)?,
            warmup: o.num("warmup", 1.0)?,
            conns: o.num("conns", 20)?,
            timeline: o.flag("timeline"),
        })),
        "tcp-relay" => io(relay::run(
            o.get("listen").unwrap_or("127.0.0.1:0"),
            o.req("to")?,
            o.get("mode").unwrap_or("copy"),
            o.num("buf", 64 * 1024)?,
            o.num(
                "sndbuf",
                cmux_proxy::app::defaults::DEFAULT_TUNNEL_SEND_BUFFER_BYTES,
            )?,
        )),
        "free-ports" => {
            let n = o
                .positional
                .first()
                .map(|s| s.parse().unwrap_or(1))
                .unwrap_or(1);
            io(free_ports(n))
        }
        "summarize" => io(summarize::summarize(
            o.req("raw")?,
            &summarize::Outputs {
                meta: o.get("meta"),
                markdown: o.get("markdown"),
                readme: o.get("readme"),
                svg: o.get("svg"),
            },
        )),
        _ => Err(format!(
            "unknown subcommand {cmd:?}; see the top of bench/loadgen/src/main.rs"
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("usage: cmux-loadgen SUBCOMMAND [--opts]; see bench/README.md");
        return ExitCode::from(2);
    };
    let opts = Opts::parse(&args[1..]);
    match run(cmd, &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cmux-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
