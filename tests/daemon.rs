//! Daemon mode, graceful upgrade and shutdown, driven the way an operator does it: through
//! `scripts/cmux-proxyctl` (start, reload, stop, status) on a temporary conf.
//!
//! Every test has its own directory, port, pid file and upgrade socket, so they run in
//! parallel. Every wait is bounded, and every process a test starts is killed by pid when
//! the test ends, pass or fail (see [`Daemon`]'s `Drop`).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CTL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cmux-proxyctl");

/// pingora keeps accepting on the old process for this long after SIGQUIT.
const PINGORA_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Processes

/// The pid of a live process (not a zombie: nobody may reap a daemon's exit here).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(") ").next().unwrap_or("").chars().next();
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Waits up to `limit` for `f` to hold; returns the time it took.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs a command to completion within `limit`, killing it if it takes longer.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    // The pipes are read by wait_with_output on another thread; this one enforces the
    // time limit.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            signal(pid, "KILL");
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

// ---------------------------------------------------------------------------------------
// A daemon under test

/// One proxy instance's temporary world: conf, pid file, upgrade socket, error log, port.
/// Dropping it kills, by pid, every cmux-proxy process it saw or that its pid files name.
struct Daemon {
    dir: PathBuf,
    conf: PathBuf,
    pid_file: PathBuf,
    port: u16,
    /// The admin listener's port.
    admin: u16,
    seen: Mutex<Vec<u32>>,
}

impl Daemon {
    /// A conf with short grace periods and one worker thread on a free loopback port; the
    /// admin listener gets a free port too (its default, 9091, is shared by every test).
    fn new(grace: u64, shutdown_timeout: u64) -> Daemon {
        let dir = tempdir();
        let port = free_port();
        let admin = free_port();
        let pid_file = dir.join("proxy.pid");
        let conf = dir.join("cmux-proxy.yaml");
        let text = format!(
            "---\nversion: 1\nthreads: 1\n\
             pid_file: {pid}\nerror_log: {log}\nupgrade_sock: {sock}\n\
             grace_period_seconds: {grace}\ngraceful_shutdown_timeout_seconds: {shutdown_timeout}\n\
             cmux_proxy:\n  listen: [\"127.0.0.1:{port}\"]\n  connect_timeout_ms: 2000\n\
             \x20 admin_listen: \"127.0.0.1:{admin}\"\n",
            pid = pid_file.display(),
            log = dir.join("error.log").display(),
            sock = dir.join("upgrade.sock").display(),
        );
        std::fs::write(&conf, text).unwrap();
        Daemon {
            dir,
            conf,
            pid_file,
            port,
            admin,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `cmux-proxyctl ARGS -c CONF` with the binary under test; at most 40 s.
    fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(CTL);
        without_cmux_env(&mut cmd)
            .args(args)
            .arg("-c")
            .arg(&self.conf)
            .env("CMUX_PROXY_BIN", PROXY_BIN)
            .env("RUST_LOG", "info");
        let out = run_bounded(cmd, Duration::from_secs(40));
        self.note_pids();
        out
    }

    /// Like [`Daemon::ctl`], asserting success; returns stdout.
    fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "cmux-proxyctl {args:?} failed ({}):\nstdout: {}\nstderr: {}\nerror log: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            self.error_log()
        );
        text(&out.stdout)
    }

    /// The pid in the pid file, if it names a live process.
    fn pid(&self) -> Option<u32> {
        read_pid(&self.pid_file).filter(|&p| alive(p))
    }

    /// Remembers every pid the pid files name, to kill them all at the end.
    fn note_pids(&self) {
        let mut seen = self.seen.lock().unwrap();
        for file in [self.pid_file.clone(), self.dir.join("proxy.pid.old")] {
            if let Some(pid) = read_pid(&file) {
                if !seen.contains(&pid) {
                    seen.push(pid);
                }
            }
        }
    }

    /// The proxy in the foreground (no `-d`) with this conf, its log in
    /// `foreground.log`; returns once it listens.
    fn run_foreground(&self) -> Child {
        let mut child = without_cmux_env(&mut Command::new(PROXY_BIN))
            .arg("-c")
            .arg(&self.conf)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("foreground.log")).unwrap())
            .spawn()
            .unwrap();
        self.seen.lock().unwrap().push(child.id());
        wait_serving(&mut child, &[self.addr().parse().unwrap()], "cmux-proxy");
        child
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.note_pids();
        for &pid in self.seen.lock().unwrap().iter() {
            // Only a live process whose name says cmux-proxy: never a recycled pid.
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if alive(pid) && comm.trim() == "cmux-proxy" {
                signal(pid, "KILL");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// Clients: a new connection for every request and every tunnel

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A minimal HTTP upstream that answers every request with its request line, in a single
/// write. `common::Upstream` writes head and body separately without TCP_NODELAY, so each
/// of its responses waits ~40 ms for a delayed ACK; this one lets a sequential client
/// make thousands of requests per second, which is what exercises the socket handover.
async fn fast_upstream() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = text(&head).lines().next().unwrap_or("").to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{line}",
                    line.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

/// One HTTP request on a new connection to an upstream's `/echo`; checks the status and
/// that the body carries this request's line (both upstreams echo it).
async fn http_once(proxy: &str, upstream_port: u16, n: u64) -> Result<(), String> {
    let path = format!("/echo?n={n}&end");
    let work = async {
        let resp = get_closing(proxy, &path, upstream_port).await?;
        if !resp.starts_with("HTTP/1.1 200 ") {
            return Err(format!("bad response: {:?}", resp.lines().next()));
        }
        if !resp.contains(&format!("GET {path}")) {
            return Err(format!(
                "body without the request line ({} bytes)",
                resp.len()
            ));
        }
        Ok(())
    };
    tokio::time::timeout(IO_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// One `Connection: close` GET through the proxy on a new connection; the whole
/// response as text.
async fn get_closing(proxy: &str, path: &str, upstream_port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect(proxy)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {upstream_port}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)
        .await
        .map_err(|e| format!("read after {} bytes: {e}", resp.len()))?;
    Ok(text(&resp))
}

/// One CONNECT tunnel on a new connection to the TCP echo server: bytes there and back,
/// then a half-close answered by the echo's own half-close.
async fn tunnel_once(proxy: &str, echo_port: u16, n: u64) -> Result<(), String> {
    let work = async {
        let mut s = TcpStream::connect(proxy)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let head = format!("CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {echo_port}\r\n\r\n");
        s.write_all(head.as_bytes())
            .await
            .map_err(|e| format!("write head: {e}"))?;
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(1) => got.push(byte[0]),
                Ok(_) => return Err(format!("closed during head after {:?}", text(&got))),
                Err(e) => return Err(format!("read head: {e}")),
            }
        }
        if !got.starts_with(b"HTTP/1.1 200 ") {
            return Err(format!("bad head: {:?}", text(&got)));
        }
        let payload = format!("tunnel {n} payload {}\n", "x".repeat(200));
        s.write_all(payload.as_bytes())
            .await
            .map_err(|e| format!("write payload: {e}"))?;
        let mut back = vec![0u8; payload.len()];
        s.read_exact(&mut back)
            .await
            .map_err(|e| format!("read echo: {e}"))?;
        if back != payload.as_bytes() {
            return Err("echo differs".into());
        }
        s.shutdown().await.map_err(|e| format!("shutdown: {e}"))?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .await
            .map_err(|e| format!("read EOF: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("{} unexpected bytes after the echo", rest.len()));
        }
        Ok(())
    };
    tokio::time::timeout(IO_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// Counts of one client loop, with the first failures kept for the report.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, result: Result<(), String>, at: Duration) {
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut failures = self.failures.lock().unwrap();
                if failures.len() < 20 {
                    failures.push(format!("at {:.3}s: {e}", at.as_secs_f64()));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests

/// The acceptance test: two reloads in a row under a client that opens a new
/// connection for every request and every tunnel; nothing may fail, each reload must
/// change the pid, and each old process must be gone once its grace period is over. A
/// slow request sent before reload 1 is still in flight at its signal, and ends with 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reloads_under_load_lose_nothing() {
    let upstream = Upstream::start().await;
    let fast = fast_upstream().await;
    let echo = tcp_echo().await;
    let grace = 2;
    let shutdown_timeout = 2;
    let daemon = Arc::new(Daemon::new(grace, shutdown_timeout));
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["start"]))
        .await
        .unwrap();
    let pid1 = daemon.pid().expect("pid after start");

    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let http = Arc::new(Tally::default());
    let tunnels = Arc::new(Tally::default());
    let mut loops = Vec::new();
    // Three HTTP loops and one tunnel loop, each strictly sequential. Two HTTP loops use
    // the fast upstream (many short connections); the third uses the common fixture,
    // whose ~40 ms responses keep requests in flight while the processes change.
    for (i, port) in [fast, fast, upstream.addr.port()].into_iter().enumerate() {
        let i = i as u64;
        let (stop, tally, proxy) = (stop.clone(), http.clone(), daemon.addr());
        loops.push(tokio::spawn(async move {
            let mut n = i << 32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                tally.record(http_once(&proxy, port, n).await, t0.elapsed());
            }
        }));
    }
    {
        let (stop, tally, proxy) = (stop.clone(), tunnels.clone(), daemon.addr());
        loops.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                tally.record(tunnel_once(&proxy, echo.port(), n).await, t0.elapsed());
            }
        }));
    }

    // One request deliberately in flight at reload 1: its upstream answers 6 s after it
    // arrived, long after the reload's SIGQUIT and within 5 s + grace of it, so the old
    // process must finish it. It has reached the upstream before the reload begins.
    let slow_upstream = Upstream::start().await;
    let in_flight = request_in_flight(daemon.addr(), slow_upstream.addr.port(), "/slow?ms=6000");
    slow_upstream.wait_requests(1).await;

    // Reload 1 at ~2 s, without waiting for the old process (checked below instead), so
    // that reload 2 at ~6 s overlaps its predecessor's drain.
    tokio::time::sleep_until((t0 + Duration::from_secs(2)).into()).await;
    let reload1_at = t0.elapsed();
    let d = daemon.clone();
    let out1 = tokio::task::spawn_blocking(move || d.ctl_ok(&["reload", "--no-wait"]))
        .await
        .unwrap();
    let pid2 = daemon.pid().expect("pid after reload 1");
    assert_ne!(pid1, pid2, "reload 1 did not change the pid: {out1}");
    assert!(
        !in_flight.is_finished(),
        "the slow request ended before reload 1 had signalled the old process"
    );
    // pid 1 must exit 5 s (pingora's close timeout) + grace + at most the shutdown
    // timeout after SIGQUIT, which was sent before `reload` returned.
    let retire_limit = PINGORA_CLOSE_TIMEOUT + Duration::from_secs(grace + shutdown_timeout + 2);
    let pid1_exit = tokio::task::spawn_blocking(move || wait_until(retire_limit, || !alive(pid1)));

    // Reload 2 at ~6 s; this time the script itself waits for the old process to exit.
    tokio::time::sleep_until((t0 + Duration::from_secs(6)).into()).await;
    let reload2_at = t0.elapsed();
    let d = daemon.clone();
    let out2 = tokio::task::spawn_blocking(move || d.ctl_ok(&["reload"]))
        .await
        .unwrap();
    let reload2_done = t0.elapsed();
    let pid3 = daemon.pid().expect("pid after reload 2");
    assert_ne!(pid2, pid3, "reload 2 did not change the pid: {out2}");
    assert!(
        !alive(pid2),
        "reload 2 returned with pid {pid2} alive: {out2}"
    );
    assert!(
        out2.contains(&format!("old pid {pid2} exited")),
        "reload 2 output: {out2}"
    );

    let pid1_gone_after = pid1_exit.await.unwrap();
    assert!(
        pid1_gone_after.is_some(),
        "old pid {pid1} still alive {retire_limit:?} after reload 1"
    );
    let resp = in_flight
        .await
        .unwrap()
        .expect("the request in flight across reload 1 completes");
    assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");
    assert!(resp.ends_with("slow done"), "{resp}");

    // Keep the clients going for at least 10 s and past the last old process's exit.
    let end = std::cmp::max(
        Duration::from_secs(10),
        reload2_done + Duration::from_secs(1),
    );
    tokio::time::sleep_until((t0 + end).into()).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        tokio::time::timeout(Duration::from_secs(10), l)
            .await
            .expect("client loop stops")
            .unwrap();
    }
    let elapsed = t0.elapsed();

    let d = daemon.clone();
    let stopped = tokio::task::spawn_blocking(move || d.ctl_ok(&["stop"]))
        .await
        .unwrap();
    assert!(!alive(pid3), "pid {pid3} alive after stop: {stopped}");

    let (h_ok, h_failed) = (
        http.ok.load(Ordering::Relaxed),
        http.failed.load(Ordering::Relaxed),
    );
    let (t_ok, t_failed) = (
        tunnels.ok.load(Ordering::Relaxed),
        tunnels.failed.load(Ordering::Relaxed),
    );
    println!(
        "upgrade under load: {:.1}s of traffic, reloads at {:.1}s (pid {pid1} -> {pid2}) and {:.1}s (pid {pid2} -> {pid3}); \
         pid {pid1} exited {:.1}s after reload 1 returned, reload 2 took {:.1}s including pid {pid2}'s exit",
        elapsed.as_secs_f64(),
        reload1_at.as_secs_f64(),
        reload2_at.as_secs_f64(),
        pid1_gone_after.unwrap().as_secs_f64(),
        (reload2_done - reload2_at).as_secs_f64(),
    );
    println!(
        "upgrade under load: HTTP requests {} ok / {h_failed} failed; CONNECT tunnels {} ok / {t_failed} failed",
        h_ok, t_ok
    );
    let failures: Vec<String> = http
        .failures
        .lock()
        .unwrap()
        .iter()
        .map(|f| format!("http {f}"))
        .chain(
            tunnels
                .failures
                .lock()
                .unwrap()
                .iter()
                .map(|f| format!("tunnel {f}")),
        )
        .collect();
    for f in &failures {
        println!("  failure: {f}");
    }
    assert!(
        h_ok > 100 && t_ok > 100,
        "too little traffic to mean anything"
    );
    assert_eq!(
        h_failed + t_failed,
        0,
        "failures across reloads: {failures:#?}"
    );
}

/// `cmux-proxy -t -c CONF`, bounded.
fn check_conf(conf: &Path) -> Output {
    let mut cmd = Command::new(PROXY_BIN);
    without_cmux_env(&mut cmd).args(["-t", "-c"]).arg(conf);
    run_bounded(cmd, Duration::from_secs(15))
}

/// `-t` accepts a good conf and refuses a broken one with its reason. `start` and
/// `reload` run the same check first: on a broken conf, reload leaves the running
/// instance alone and start starts nothing.
#[test]
fn broken_conf_is_refused_by_check_reload_and_start() {
    let daemon = Daemon::new(1, 1);
    let out = check_conf(&daemon.conf);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let want = format!("configuration OK (listen {})", daemon.addr());
    assert!(text(&out.stdout).contains(&want), "{}", text(&out.stdout));
    daemon.ctl_ok(&["start"]);
    let pid = daemon.pid().expect("running");

    // A typo in our section.
    let good = std::fs::read_to_string(&daemon.conf).unwrap();
    let broken = good.replace("connect_timeout_ms", "conect_timeout_ms");
    std::fs::write(&daemon.conf, &broken).unwrap();
    let out = check_conf(&daemon.conf);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("conect_timeout_ms"), "{err}");

    let out = daemon.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("configuration check failed, nothing changed")
            && err.contains("conect_timeout_ms"),
        "{err}"
    );
    assert_eq!(
        daemon.pid(),
        Some(pid),
        "reload on a broken conf replaced pid {pid}"
    );

    // stop needs only the pid file, so it works whatever the conf's other keys say.
    daemon.ctl_ok(&["stop"]);
    let out = daemon.ctl(&["start"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("conect_timeout_ms"));
    assert!(!daemon.pid_file.exists(), "a pid file appeared");
    assert!(
        std::net::TcpStream::connect(daemon.addr()).is_err(),
        "something listens on {}",
        daemon.addr()
    );
    assert_eq!(daemon.ctl(&["status"]).status.code(), Some(3));
}

/// When the new process never gets the sockets (here: the old one was started with a
/// different upgrade socket), the old one still stops accepting 5 s after SIGQUIT; the
/// reload fails, says so, and starts a fresh instance as soon as the port is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handover_fails_the_reload_and_restarts_fresh() {
    let upstream = Upstream::start().await;
    let daemon = Arc::new(Daemon::new(1, 1));
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["start"]))
        .await
        .unwrap();
    let old = daemon.pid().expect("running");

    let conf = std::fs::read_to_string(&daemon.conf).unwrap();
    let elsewhere = conf.replace("upgrade.sock", "elsewhere.sock");
    std::fs::write(&daemon.conf, elsewhere).unwrap();
    let d = daemon.clone();
    let out = tokio::task::spawn_blocking(move || d.ctl(&["reload"]))
        .await
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("did not take the listening sockets over"),
        "{err}"
    );
    assert!(err.contains("recovered by a fresh start"), "{err}");
    let new = daemon.pid().expect("a fresh instance runs");
    assert_ne!(new, old);
    http_once(&daemon.addr(), upstream.addr.port(), 1)
        .await
        .expect("the fresh instance serves");
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["stop"]))
        .await
        .unwrap();
    assert!(!alive(new) && !alive(old));
}

/// A second `start` on the same pid file is refused while the first instance keeps
/// serving; a stale pid file is reported and replaced; status follows LSB codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_a_live_pid_file_and_replaces_a_stale_one() {
    let upstream = Upstream::start().await;
    let daemon = Arc::new(Daemon::new(1, 1));

    // A pid that surely belonged to a process that has exited.
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(&daemon.pid_file, format!("{dead_pid}\n")).unwrap();
    let d = daemon.clone();
    let out = tokio::task::spawn_blocking(move || d.ctl(&["status"]))
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stale pid file: {}",
        text(&out.stdout)
    );

    let d = daemon.clone();
    let started = tokio::task::spawn_blocking(move || d.ctl_ok(&["start"]))
        .await
        .unwrap();
    assert!(
        started.contains(&format!(
            "stale pid file {} (pid {dead_pid} not running), removing",
            daemon.pid_file.display()
        )),
        "{started}"
    );
    let pid = daemon.pid().expect("running");
    assert!(
        started.contains(&format!("started (pid {pid}")),
        "{started}"
    );

    let d = daemon.clone();
    let second = tokio::task::spawn_blocking(move || d.ctl(&["start"]))
        .await
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = text(&second.stderr);
    assert!(
        err.contains(&format!("already running (pid {pid}")),
        "{err}"
    );
    assert_eq!(daemon.pid(), Some(pid), "the pid file changed");

    // The first instance still serves.
    let addr = daemon.addr();
    http_once(&addr, upstream.addr.port(), 1)
        .await
        .expect("request after the refused start");

    let d = daemon.clone();
    let status = tokio::task::spawn_blocking(move || d.ctl(&["status"]))
        .await
        .unwrap();
    assert_eq!(status.status.code(), Some(0));
    assert!(text(&status.stdout).contains(&format!("running (pid {pid}")));

    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["stop"]))
        .await
        .unwrap();
    assert!(!alive(pid));
    assert!(!daemon.pid_file.exists(), "stop leaves no pid file behind");
    let d = daemon.clone();
    let status = tokio::task::spawn_blocking(move || d.ctl(&["status"]))
        .await
        .unwrap();
    assert_eq!(status.status.code(), Some(3));
}

/// Sends one `/slow` request (the upstream answers after 1 s) and returns its task.
fn slow_request(
    proxy: String,
    upstream_port: u16,
) -> tokio::task::JoinHandle<Result<String, String>> {
    request_in_flight(proxy, upstream_port, "/slow")
}

/// Sends one GET of `path` (a `/slow` one) and returns its task: the whole response.
fn request_in_flight(
    proxy: String,
    upstream_port: u16,
    path: &'static str,
) -> tokio::task::JoinHandle<Result<String, String>> {
    tokio::spawn(async move {
        let work = get_closing(&proxy, path, upstream_port);
        tokio::time::timeout(Duration::from_secs(10), work)
            .await
            .unwrap_or_else(|_| Err("timed out".into()))
    })
}

/// SIGTERM or SIGINT with one request in flight (the upstream answers after 1 s): the
/// request completes with 200 and the process exits 0.
async fn stop_signal_lets_the_request_in_flight_finish(sig: &str) {
    let upstream = Upstream::start().await;
    let daemon = Daemon::new(2, 2);
    let mut child = daemon.run_foreground();

    let request = slow_request(daemon.addr(), upstream.addr.port());
    // Once the request has reached the upstream, ask the proxy to stop.
    upstream.wait_requests(1).await;
    let term_at = Instant::now();
    signal(child.id(), sig);

    let resp = request
        .await
        .unwrap()
        .expect("the request in flight completes");
    assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");
    assert!(resp.ends_with("slow done"), "{resp}");

    let status = tokio::task::spawn_blocking(move || {
        let exited = wait_until(Duration::from_secs(15), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if exited.is_none() {
            let _ = child.kill();
        }
        child.wait().unwrap()
    })
    .await
    .unwrap();
    let log = std::fs::read_to_string(daemon.dir.join("foreground.log")).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
    println!(
        "SIG{sig} with a request in flight: 200 received, exit 0 after {:.1}s",
        term_at.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish_and_exits_0() {
    stop_signal_lets_the_request_in_flight_finish("TERM").await;
}

/// Ctrl-C stops as gently as SIGTERM (pingora's own SIGINT would drop the request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_lets_the_request_in_flight_finish_and_exits_0() {
    stop_signal_lets_the_request_in_flight_finish("INT").await;
}

/// `cmux-proxyctl stop` on a daemon: a request in flight completes, the process and its
/// pid file are gone, and the port is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_stop_drains_a_daemon() {
    let upstream = Upstream::start().await;
    let daemon = Arc::new(Daemon::new(2, 2));
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["start"]))
        .await
        .unwrap();
    let pid = daemon.pid().expect("running");

    let request = slow_request(daemon.addr(), upstream.addr.port());
    upstream.wait_requests(1).await;
    let d = daemon.clone();
    let stopped = tokio::task::spawn_blocking(move || d.ctl_ok(&["stop"]));

    let resp = request
        .await
        .unwrap()
        .expect("the request in flight completes");
    assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");
    let stopped = stopped.await.unwrap();
    assert!(
        stopped.contains(&format!("stopped (pid {pid})")),
        "{stopped}"
    );
    assert!(!alive(pid));
    assert!(!daemon.pid_file.exists());
    assert!(std::net::TcpStream::connect(daemon.addr()).is_err());
}

// ---------------------------------------------------------------------------------------
// The access log of a daemon, and prompt stops

impl Daemon {
    /// A daemon whose conf's `cmux_proxy:` section also has `extra` (indented lines).
    fn with_section(grace: u64, extra: &str) -> Daemon {
        let daemon = Daemon::new(grace, 2);
        let mut conf = std::fs::read_to_string(&daemon.conf).unwrap();
        conf.push_str(extra);
        std::fs::write(&daemon.conf, conf).unwrap();
        daemon
    }
}

/// The lines of `path` that contain `needle`, once there are `n` of them (at most 10 s).
fn wait_for_lines(path: &Path, needle: &str, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    wait_until(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        lines = text
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect();
        lines.len() >= n
    });
    lines
}

/// In daemon mode (`-d`, as `cmux-proxyctl start` runs it) the access log is written,
/// to a file and, when it goes to stderr, to the conf's `error_log`: its writer thread
/// is started after pingora forks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_writes_its_access_log_to_a_file_and_to_error_log() {
    let upstream_port = fast_upstream().await;
    let file_log = Arc::new(Daemon::with_section(2, ""));
    let access_log = file_log.dir.join("access.log");
    let extra = format!("  access_log: {}\n", access_log.display());
    let mut conf = std::fs::read_to_string(&file_log.conf).unwrap();
    conf.push_str(&extra);
    std::fs::write(&file_log.conf, conf).unwrap();
    let to_stderr = Arc::new(Daemon::with_section(2, "  access_log: stderr\n"));

    for daemon in [&file_log, &to_stderr] {
        let d = daemon.clone();
        tokio::task::spawn_blocking(move || d.ctl_ok(&["start"]))
            .await
            .unwrap();
        for n in 0..5 {
            http_once(&daemon.addr(), upstream_port, n).await.unwrap();
        }
    }
    let lines = wait_for_lines(&access_log, "\"GET /echo", 5);
    assert_eq!(lines.len(), 5, "access log file: {lines:?}");
    assert!(lines
        .iter()
        .all(|l| l.contains(" http ") && l.contains(" 200 ")));
    let error_log = to_stderr.dir.join("error.log");
    let lines = wait_for_lines(&error_log, "\"GET /echo", 5);
    assert_eq!(lines.len(), 5, "error_log:\n{}", to_stderr.error_log());
    for daemon in [file_log, to_stderr] {
        tokio::task::spawn_blocking(move || daemon.ctl_ok(&["stop"]))
            .await
            .unwrap();
    }
}

/// An idle proxy stops at once on SIGTERM or SIGINT (about 0.2 s), long before its grace
/// period, here 30 s: the grace period bounds requests still in flight, and there are
/// none. The bound, 10 s, leaves room for a busy machine and is a third of the grace.
#[test]
fn idle_proxy_stops_long_before_its_grace_period_on_sigterm_and_sigint() {
    for sig in ["TERM", "INT"] {
        let daemon = Daemon::new(30, 5);
        let mut child = daemon.run_foreground();
        let sent = Instant::now();
        signal(child.id(), sig);
        let took = wait_until(Duration::from_secs(15), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        let _ = child.kill();
        let status = child.wait().unwrap();
        let took = took.unwrap_or_else(|| panic!("SIG{sig}: still running after 15 s"));
        println!("idle proxy, SIG{sig}: exited after {took:?}");
        assert!(took < Duration::from_secs(10), "SIG{sig}: took {took:?}");
        assert_eq!(status.code(), Some(0), "SIG{sig}");
        assert!(sent.elapsed() < Duration::from_secs(15));
    }
}

/// `cmux-proxyctl stop` of an idle daemon returns at once, and after a reload the idle
/// old process exits as soon as pingora has it stop accepting: pingora keeps the old
/// process accepting for 5 s after the hand-over (its CLOSE_TIMEOUT), so that no
/// connection is refused; the grace period (30 s here) is not waited on top. The bounds
/// leave room for a busy machine and stay far below the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_stop_and_reload_end_without_waiting_the_grace_period() {
    let daemon = Arc::new(Daemon::new(30, 5));
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["start"]))
        .await
        .unwrap();
    let old = daemon.pid().expect("running");

    let d = daemon.clone();
    let reload_started = Instant::now();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["reload"]))
        .await
        .unwrap();
    let gone =
        tokio::task::spawn_blocking(move || wait_until(Duration::from_secs(40), || !alive(old)))
            .await
            .unwrap();
    let after = reload_started.elapsed();
    println!("reload: the old process exited {after:?} after the reload began");
    assert!(gone.is_some(), "the old process still runs");
    assert!(
        after < PINGORA_CLOSE_TIMEOUT + Duration::from_secs(10),
        "old process took {after:?}"
    );

    let d = daemon.clone();
    let stop_started = Instant::now();
    let out = tokio::task::spawn_blocking(move || d.ctl_ok(&["stop"]))
        .await
        .unwrap();
    let took = stop_started.elapsed();
    println!("stop of an idle daemon: {took:?} ({})", out.trim());
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
}

// ---------------------------------------------------------------------------------------
// The admin listener and the token file across a reload

/// One GET on `s` (a keep-alive connection to an admin listener): status line and body.
async fn ask_admin(s: &mut TcpStream, path: &str) -> Result<(String, String), String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let head = tokio::time::timeout(IO_TIMEOUT, read_head(s))
        .await
        .map_err(|_| "no answer".to_string())?;
    if head.is_empty() {
        return Err("closed".into());
    }
    let len: usize = header_values(&head, "content-length")
        .first()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .await
        .map_err(|e| format!("body: {e}"))?;
    Ok((head.lines().next().unwrap_or("").to_string(), text(&body)))
}

/// `/healthz` on a reload: the old process turns to 503 while it drains, before it exits,
/// and the new one answers 200. (It turns when pingora's shutdown of the old process
/// begins, at the end of its 5 s hand-over window: during that window it still says
/// 200; the time is printed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_turns_503_on_the_old_process_during_a_handover() {
    let daemon = Arc::new(Daemon::new(2, 2));
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["start"]))
        .await
        .unwrap();
    let old = daemon.pid().expect("running");
    // Keep-alive connections to the old process's admin listener, each used once before
    // the reload. pingora closes a keep-alive connection after an answer once its
    // shutdown has begun: then the next one is asked.
    let admin = format!("127.0.0.1:{}", daemon.admin);
    let mut to_old = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&admin).await.unwrap();
        let (status, body) = ask_admin(&mut s, "/healthz").await.unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(body, "ok\n");
        to_old.push(s);
    }

    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["reload", "--no-wait"]))
        .await
        .unwrap();
    let signalled = Instant::now();
    let new = daemon.pid().expect("the new process");
    assert_ne!(new, old);
    let limit = PINGORA_CLOSE_TIMEOUT + Duration::from_secs(5);
    let mut k = 0;
    let mut answers = Vec::new();
    loop {
        assert!(
            signalled.elapsed() < limit && k < to_old.len(),
            "no 503 from the old process {limit:?} after SIGQUIT: {answers:?}"
        );
        match ask_admin(&mut to_old[k], "/healthz").await {
            Ok((status, body)) if status.starts_with("HTTP/1.1 503") => {
                assert!(body.contains("shutting down"), "{body}");
                break;
            }
            Ok((status, _)) => {
                assert!(status.starts_with("HTTP/1.1 200"), "{status}");
                answers.push(status);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                answers.push(e);
                k += 1;
            }
        }
    }
    println!(
        "reload: the old process's /healthz turned 503 {:?} after SIGQUIT",
        signalled.elapsed()
    );
    assert!(alive(old), "the old process still drains");
    // Once the old process is gone, every new connection is the new process's: 200.
    let gone =
        tokio::task::spawn_blocking(move || wait_until(Duration::from_secs(20), || !alive(old)))
            .await
            .unwrap();
    assert!(gone.is_some(), "the old process exits");
    let mut to_new = TcpStream::connect(&admin).await.unwrap();
    let (status, _) = ask_admin(&mut to_new, "/healthz").await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["stop"]))
        .await
        .unwrap();
}

/// The admin listener survives a graceful reload (it is handed over like the proxy's),
/// and the new process reads the token file afresh: a token written to the file before
/// the reload, with no SIGHUP, is in force after it, and the old one is not. A browser
/// cookie issued before the reload keeps working while its token stays in the file, and
/// stops with its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_admin_listener_and_rereads_the_token_file() {
    let upstream = fast_upstream().await;
    let dir = tempdir();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "tok-before-reload-0001\ntok-kept-0003\n").unwrap();
    let daemon = Arc::new(Daemon::with_section(
        2,
        &format!("  auth_token_file: {}\n", tokens.display()),
    ));
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["start"]))
        .await
        .unwrap();
    let old = daemon.pid().expect("running");
    let status_with = |token: &'static str| {
        let proxy = daemon.addr();
        async move {
            let mut s = TcpStream::connect(&proxy).await.unwrap();
            let req = format!(
                "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {upstream}\r\n\
                 X-Cmux-Token: {token}\r\nConnection: close\r\n\r\n"
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let answer = text(&read_until_close(&mut s).await);
            answer.split_whitespace().nth(1).unwrap_or("").to_string()
        }
    };
    // The `cmux_token` cookie a `?cmux_token=` visit gives, and the status a request
    // carrying it gets.
    let cookie_for = |token: &'static str| {
        let proxy = daemon.addr();
        async move {
            let mut s = TcpStream::connect(&proxy).await.unwrap();
            let req = format!(
                "GET /?cmux_token={token} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let answer = text(&read_until_close(&mut s).await);
            let line = answer
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
                .unwrap_or_else(|| panic!("no cookie: {answer}"));
            line["set-cookie:".len()..]
                .split(';')
                .next()
                .unwrap()
                .trim()
                .to_string()
        }
    };
    let status_with_cookie = |cookie: String| {
        let proxy = daemon.addr();
        async move {
            let mut s = TcpStream::connect(&proxy).await.unwrap();
            let req = format!(
                "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {upstream}\r\n\
                 Cookie: {cookie}\r\nConnection: close\r\n\r\n"
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let answer = text(&read_until_close(&mut s).await);
            answer.split_whitespace().nth(1).unwrap_or("").to_string()
        }
    };
    assert_eq!(status_with("tok-before-reload-0001").await, "200");
    assert_eq!(status_with("tok-after-reload-0002").await, "401");
    let kept_cookie = cookie_for("tok-kept-0003").await;
    let dropped_cookie = cookie_for("tok-before-reload-0001").await;
    assert_eq!(status_with_cookie(kept_cookie.clone()).await, "200");
    assert_eq!(status_with_cookie(dropped_cookie.clone()).await, "200");
    let admin = format!("127.0.0.1:{}", daemon.admin);
    let mut before = TcpStream::connect(&admin).await.unwrap();
    let (status, version) = ask_admin(&mut before, "/version").await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    drop(before);

    std::fs::write(&tokens, "tok-after-reload-0002\ntok-kept-0003\n").unwrap();
    let d = daemon.clone();
    let out = tokio::task::spawn_blocking(move || d.ctl_ok(&["reload"]))
        .await
        .unwrap();
    let new = daemon.pid().expect("the new process");
    assert_ne!(new, old, "{out}");
    assert!(!alive(old), "reload waits for the old process: {out}");

    // Only the new process is left: whatever answers is its.
    let mut after = TcpStream::connect(&admin)
        .await
        .expect("the admin listener is there");
    let (status, version_after) = ask_admin(&mut after, "/version").await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(version_after, version);
    let (status, _) = ask_admin(&mut after, "/healthz").await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(status_with("tok-after-reload-0002").await, "200");
    assert_eq!(status_with("tok-before-reload-0001").await, "401");
    assert_eq!(
        status_with_cookie(kept_cookie).await,
        "200",
        "kept across the reload"
    );
    assert_eq!(
        status_with_cookie(dropped_cookie).await,
        "401",
        "gone with its token"
    );
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || d.ctl_ok(&["stop"]))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
