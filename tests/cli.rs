//! Start-up: bad settings stop the proxy with one clear line, never a panic; the open-file
//! limit; the default admin address when something else holds it.

mod common;

use common::*;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary to completion (bounded), with no `CMUX_*` variable of the caller's.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = without_cmux_env(&mut Command::new(PROXY_BIN))
        .args(args)
        .env("CMUX_ADMIN_LISTEN", "off")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("cmux-proxy {args:?} did not exit");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn write_conf(text: &str) -> String {
    let dir = tempdir();
    let path = dir.join("conf.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().to_string()
}

#[test]
fn bad_listen_address_exits_2_with_one_line() {
    let out = run(&["--listen", "localhost:80"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("invalid listen address \"localhost:80\""),
        "{err}"
    );
    // The same through the environment.
    let out = run(&[], &[("CMUX_LISTEN", "127.0.0.1:1,nope")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("\"nope\""));
}

#[test]
fn unknown_key_in_our_section_exits_2() {
    let conf =
        write_conf("version: 1\ncmux_proxy:\n  listen: [\"127.0.0.1:1\"]\n  upstream_hots: x\n");
    let out = run(&["-c", &conf], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("upstream_hots"), "{err}");
}

#[test]
fn test_flag_validates_the_conf() {
    let good = write_conf("version: 1\nthreads: 1\ncmux_proxy:\n  listen: [\"127.0.0.1:18089\"]\n  connect_timeout_ms: 100\n");
    let out = run(&["-t", "-c", &good], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bad = write_conf("version: 1\ncmux_proxy:\n  listen: [\"127.0.0.1\"]\n");
    let out = run(&["-t", "-c", &bad], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("\"127.0.0.1\""));
    let out = run(&["-t", "-c", "/nonexistent/cmux.yaml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/cmux.yaml"));
}

#[test]
fn port_in_use_is_reported_without_a_panic() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let out = run(&["--listen", &addr], &[]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn flags_win_over_environment_over_conf() {
    let flag_port = free_port();
    let conf = write_conf(&format!(
        "version: 1\ncmux_proxy:\n  listen: [\"127.0.0.1:{}\"]\n",
        free_port()
    ));
    let env_listen = format!("127.0.0.1:{}", free_port());
    let flag_listen = format!("127.0.0.1:{flag_port}");
    let out = run(
        &["-t", "-c", &conf, "--listen", &flag_listen],
        &[("CMUX_LISTEN", &env_listen)],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains(&flag_listen), "{text}");
    let out = run(&["-t", "-c", &conf], &[("CMUX_LISTEN", &env_listen)]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains(&env_listen), "{text}");
}

#[test]
fn version_flag() {
    let out = run(&["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("cmux-proxy "));
}

/// Started from a shell whose soft open-file limit is 256, the proxy raises it to the hard
/// limit: 300 open client connections and a request on top is still answered.
#[test]
fn soft_open_file_limit_is_raised_to_the_hard_limit() {
    let own = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard: u64 = own
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    if hard < 1024 {
        skip(&format!(
            "cli: soft_open_file_limit_is_raised_to_the_hard_limit: the hard open-file limit here is {hard}"
        ));
        return;
    }
    // The upstream's tasks run on this runtime, kept alive for the whole test.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let up = runtime.block_on(Upstream::start());
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = without_cmux_env(&mut Command::new("bash"))
        .args([
            "-c",
            "ulimit -Sn 256 && exec \"$0\" \"$@\"",
            PROXY_BIN,
            "--listen",
            &addr,
            "--admin-listen",
            "off",
            "--access-log",
            "off",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_serving(
        &mut child,
        &[addr.parse().unwrap()],
        "cmux-proxy under ulimit -Sn 256",
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    // "Max open files <soft> <hard> files"
    assert_eq!(open_files[3], open_files[4], "{limits}");
    assert_ne!(open_files[3], "256", "{limits}");

    let held: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let (status, _, body) = curl_full(&[
        "-H",
        &format!("X-Cmux-Port-Internal: {}", up.port()),
        &format!("http://{addr}/echo"),
    ]);
    assert_eq!(status, 200);
    assert!(body.starts_with(b"GET /echo"));
    drop(held);
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("open-file limit raised from 256 to"), "{log}");
}

/// Conf errors name the file, the line and column and the reason, for pingora's keys as
/// for ours, in one line with one prefix; an unknown top-level key is refused by `-t` and
/// at start-up alike.
#[test]
fn conf_errors_name_file_line_column_and_reason() {
    let typo = write_conf("version: 1\nthread: 2\n");
    for args in [vec!["-t", "-c", &typo], vec!["-c", &typo]] {
        let out = run(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("conf file {typo}: unknown key `thread` at line 2 column 1: did you mean `threads`?")),
            "{err}"
        );
    }
    let bad_type = write_conf("version: 1\nthreads: two\n");
    let err = stderr(&run(&["-t", "-c", &bad_type], &[]));
    assert!(
        err.contains("threads: invalid type: string \"two\", expected usize at line 2 column 10"),
        "{err}"
    );
    let bad_yaml = write_conf("version: 1\ncmux_proxy:\n  listen: [\"127.0.0.1:1\"\n");
    let err = stderr(&run(&["-t", "-c", &bad_yaml], &[]));
    assert!(err.contains("line 4") || err.contains("line 3"), "{err}");
    assert!(!err.contains("Unable to parse yaml conf"), "{err}");
    let ours = write_conf("version: 1\ncmux_proxy:\n  lisen: []\n");
    let err = stderr(&run(&["-t", "-c", &ours], &[]));
    assert_eq!(err.matches("cmux_proxy").count(), 1, "{err}");
    assert!(
        err.contains("unknown field `lisen`") && err.contains("line 3 column 3"),
        "{err}"
    );
}

/// A second instance with the default admin address runs without its admin listener
/// (with a warning) when something already listens there; an admin address given
/// explicitly and in use still stops start-up.
#[test]
fn a_second_instance_runs_without_the_default_admin_listener() {
    let start = |port: u16, admin: Option<&str>| {
        let mut cmd = Command::new(PROXY_BIN);
        without_cmux_env(&mut cmd)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--access-log",
                "off",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(admin) = admin {
            cmd.args(["--admin-listen", admin]);
        }
        cmd.spawn().unwrap()
    };
    // The default admin address is in use: held by this test, or already by something
    // else on this machine (a first instance, say). No proxy has to win a race for it.
    let _held_default = std::net::TcpListener::bind("127.0.0.1:9091");
    assert!(
        std::net::TcpStream::connect("127.0.0.1:9091").is_ok(),
        "nothing listens on the default admin address 127.0.0.1:9091"
    );
    let port = free_port();
    let mut second = start(port, None);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_serving(&mut second, &[addr], "the second instance");
    assert!(
        second.try_wait().unwrap().is_none(),
        "the second instance runs"
    );
    second.kill().unwrap();
    let out = second.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("(the default) is unavailable") && err.contains("running without it"),
        "{err}"
    );

    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held_addr = held.local_addr().unwrap().to_string();
    let explicit = start(free_port(), Some(&held_addr));
    let out = explicit.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&held_addr));
}
