//! Edge-mode fixtures: a real DNS server (dnsmasq on loopback, answering only its own
//! records, never forwarding), node proxies on their own loopback addresses, edges, and
//! a small upstream that says which node it sits behind.

use crate::common::{free_port, Proxy};
use std::net::{IpAddr, SocketAddr, TcpListener as StdListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const SUFFIX: &str = "machines.test";
pub const EDGE_DOMAIN: &str = "edge.test";
pub const NODE_TOKEN: &str = "node-secret-19";

/// dnsmasq, killed on drop. Its A records live in a hosts file re-read on SIGHUP.
pub struct Dns {
    child: Child,
    pub addr: SocketAddr,
    hosts: PathBuf,
}

fn dnsmasq_bin() -> &'static str {
    if std::path::Path::new("/usr/sbin/dnsmasq").exists() {
        "/usr/sbin/dnsmasq"
    } else {
        "dnsmasq"
    }
}

/// A UDP and TCP port that were both free on 127.0.0.1 a moment ago.
fn free_dns_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if StdListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Asks `server` for the A record of `name` over UDP; whether it answered at all.
fn answers(server: SocketAddr, name: &str) -> bool {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(200)));
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut buf = [0u8; 512];
    socket.send_to(&query, server).is_ok() && socket.recv(&mut buf).is_ok()
}

impl Dns {
    /// Starts dnsmasq with these A records (name without the suffix, address), SRV
    /// records (machine, target machine, port), and this TTL in seconds.
    pub fn start(a: &[(&str, IpAddr)], srv: &[(&str, &str, u16)], ttl: u32) -> Dns {
        let dir = crate::common::tempdir();
        let hosts = dir.join("hosts");
        write_hosts(&hosts, a);
        for _ in 0..5 {
            let port = free_dns_port();
            let mut cmd = Command::new(dnsmasq_bin());
            cmd.args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--conf-file=/dev/null",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--user=root",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--local=/{SUFFIX}/"))
            .arg(format!("--addn-hosts={}", hosts.display()))
            .arg(format!("--local-ttl={ttl}"))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
            for (machine, target, srv_port) in srv {
                cmd.arg(format!(
                    "--srv-host=_cmux._tcp.{machine}.{SUFFIX},{target}.{SUFFIX},{srv_port}"
                ));
            }
            let mut child = cmd
                .spawn()
                .expect("start dnsmasq (installed by `make test-deps`)");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if answers(addr, &format!("probe.{SUFFIX}")) {
                    return Dns { child, addr, hosts };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("dnsmasq did not start");
    }

    /// Replaces the A records and has dnsmasq re-read them (SIGHUP).
    pub fn set_records(&self, a: &[(&str, IpAddr)]) {
        write_hosts(&self.hosts, a);
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn write_hosts(path: &PathBuf, a: &[(&str, IpAddr)]) {
    let text: String = a
        .iter()
        .map(|(machine, ip)| format!("{ip} {machine}.{SUFFIX}\n"))
        .collect();
    std::fs::write(path, text).unwrap();
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on every one of `ips` a moment ago (nodes of one test share it, as
/// machines share `machine_port`).
pub fn port_free_on(ips: &[IpAddr]) -> u16 {
    for _ in 0..50 {
        let port = free_port();
        if ips.iter().all(|ip| StdListener::bind((*ip, port)).is_ok()) {
            return port;
        }
    }
    panic!("no port free on all of {ips:?}");
}

/// A node proxy on `ip:port` whose default upstream host is `upstream_host`, requiring
/// the node token from every client.
pub fn node(ip: IpAddr, port: u16, upstream_host: IpAddr) -> Proxy {
    let dir = crate::common::tempdir();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{NODE_TOKEN}\n")).unwrap();
    Proxy::start_at(
        SocketAddr::new(ip, port),
        &[
            "--upstream-host",
            &upstream_host.to_string(),
            "--auth-token-file",
            tokens.to_str().unwrap(),
        ],
    )
}

/// An edge on a free loopback port, asking `dns`, with a connect timeout of 1 s.
pub fn edge(dns: &Dns, machine_port: u16, extra: &[&str]) -> Proxy {
    edge_with_connect_timeout(dns, machine_port, 1000, extra)
}

/// [`edge`] with a connect timeout of `connect_timeout_ms`.
pub fn edge_with_connect_timeout(
    dns: &Dns,
    machine_port: u16,
    connect_timeout_ms: u64,
    extra: &[&str],
) -> Proxy {
    let conf = crate::common::tempdir().join("edge.yaml");
    std::fs::write(
        &conf,
        format!("version: 1\ncmux_proxy:\n  machine_port: {machine_port}\n"),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut args = vec![
        "-c".to_string(),
        conf.to_str().unwrap().to_string(),
        "--mode".into(),
        "edge".into(),
        "--machine-dns-suffix".into(),
        SUFFIX.into(),
        "--edge-domain".into(),
        EDGE_DOMAIN.into(),
        "--dns-servers".into(),
        dns.addr.to_string(),
        "--node-token".into(),
        NODE_TOKEN.into(),
        "--connect-timeout-ms".into(),
        connect_timeout_ms.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proxy::start_at(addr, &args)
}

/// An HTTP/1.1 server on `ip:0` that answers every request with its `name`, a newline
/// and the request head it got (keep-alive); returns its port.
pub async fn ident(ip: IpAddr, name: &'static str) -> u16 {
    ident_on(SocketAddr::new(ip, 0), name).await
}

/// `ident` on a given address.
pub async fn ident_on(addr: SocketAddr, name: &'static str) -> u16 {
    let listener = TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end);
                    let body = format!("{name}\n{head}");
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}
