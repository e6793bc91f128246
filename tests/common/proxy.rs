//! The proxy under test: the real binary as a child process, started on free loopback
//! ports with a clean environment, and ready only once it owns its listening sockets.

use super::free_port;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PROXY_BIN: &str = env!("CARGO_BIN_EXE_cmux-proxy");

/// Removes every `CMUX_*` variable of the caller's environment from `cmd`: the proxy reads
/// its settings from them (`CMUX_AUTH_TOKEN_FILE` exported in a developer's shell would
/// turn every request into a 401). A test sets what it needs after this.
pub fn without_cmux_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CMUX_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The inodes of the TCP sockets listening on `port` (any address), from `/proc/net`.
fn listening_inodes(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" {
                continue; // not LISTEN
            }
            let local_port = fields[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                if let Ok(inode) = fields[9].parse() {
                    out.push(inode);
                }
            }
        }
    }
    out
}

/// Whether process `pid` holds a socket listening on `addr`'s port: the port answers as
/// that process, not as whatever else took a port that was free a moment before.
pub fn owns_listener(pid: u32, addr: SocketAddr) -> bool {
    let inodes = listening_inodes(addr.port());
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy().to_string();
            inodes
                .iter()
                .any(|inode| target == format!("socket:[{inode}]"))
        })
    })
}

/// Waits (at most 15 s) until `child` listens on every address of `addrs` and accepts a
/// connection there; panics, with `what` and the exit status, if it exits first.
pub fn wait_serving(child: &mut Child, addrs: &[SocketAddr], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before it listened on {addrs:?}: {status}");
        }
        let pid = child.id();
        if addrs.iter().all(|a| {
            owns_listener(pid, *a)
                && std::net::TcpStream::connect_timeout(a, Duration::from_millis(500)).is_ok()
        }) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} (pid {pid}) did not listen on {addrs:?} within 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How a test proxy is run besides its arguments.
#[derive(Clone, Default)]
pub struct ProxyOptions {
    /// Its stderr (the error log) to this file instead of the test's own stderr.
    pub stderr: Option<PathBuf>,
    /// `RUST_LOG`; `error` when not given.
    pub rust_log: Option<String>,
}

/// The proxy binary running as a child process; killed on drop.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener (health, metrics, ports).
    pub admin: SocketAddr,
}

impl Proxy {
    /// Starts the proxy on a free loopback port with extra arguments; the admin
    /// listener gets a free port too, and the access log is off unless `extra` says.
    pub fn start(extra: &[&str]) -> Proxy {
        let port = free_port();
        Proxy::start_at(format!("127.0.0.1:{port}").parse().unwrap(), extra)
    }

    /// Starts the proxy listening on `addr`, as [`Proxy::start`] does.
    pub fn start_at(addr: SocketAddr, extra: &[&str]) -> Proxy {
        Proxy::start_with(addr, extra, ProxyOptions::default())
    }

    /// Starts the proxy listening on `addr` with `options`.
    pub fn start_with(addr: SocketAddr, extra: &[&str], options: ProxyOptions) -> Proxy {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(PROXY_BIN);
        without_cmux_env(&mut cmd)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .args(extra)
            .env("RUST_LOG", options.rust_log.as_deref().unwrap_or("error"))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match &options.stderr {
            Some(path) => cmd.stderr(std::fs::File::create(path).expect("stderr file")),
            None => cmd.stderr(Stdio::inherit()),
        };
        if !extra.contains(&"--access-log") {
            cmd.args(["--access-log", "off"]);
        }
        let child = cmd.spawn().expect("start cmux-proxy");
        let mut proxy = Proxy { child, addr, admin };
        wait_serving(&mut proxy.child, &[addr, admin], "cmux-proxy");
        proxy
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `text` to a file named `name` in a fresh temporary folder.
pub fn write_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = super::tempdir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A proxy started with a conf whose `cmux_proxy:` section is `section`.
pub fn proxy_with_conf(section: &str) -> Proxy {
    let conf = write_file("conf.yaml", &format!("version: 1\ncmux_proxy:\n{section}"));
    Proxy::start(&["-c", conf.to_str().unwrap()])
}

/// A proxy that requires `token`, read from a token file (returned, to edit), with
/// `extra` conf lines and `args` on its command line.
pub fn proxy_with_token_file(
    token: &str,
    extra: &str,
    args: &[&str],
) -> (Proxy, std::path::PathBuf) {
    let tokens = write_file("tokens", &format!("# test\n{token}\n"));
    let conf = write_file(
        "conf.yaml",
        &format!(
            "version: 1\ncmux_proxy:\n  auth_token_file: {}\n{extra}",
            tokens.display()
        ),
    );
    let mut all = vec!["-c", conf.to_str().unwrap()];
    all.extend_from_slice(args);
    (Proxy::start(&all), tokens)
}
