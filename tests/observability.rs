//! Access log, metrics and the admin endpoints, observed from outside like an operator.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// One GET to the admin listener.
fn admin_get(proxy: &Proxy, path: &str) -> (u16, String, String) {
    let (status, head, body) = curl_full(&[&proxy.admin_url(path)]);
    (status, head, String::from_utf8_lossy(&body).to_string())
}

/// A small Prometheus text parser: `name{labels}` to value; panics on a malformed line.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let kind = rest.split_whitespace().nth(1).expect("type");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{line}");
        }
        out.insert(series.to_string(), value);
    }
    out
}

fn metric(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

fn conf_file(text: &str) -> String {
    let dir = tempdir();
    let path = dir.join("conf.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().to_string()
}

/// Reads the log file until it has `n` lines (bounded).
fn wait_for_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn access_log_lines_for_http_websocket_and_connect() {
    let up = Upstream::start_on("127.18.0.5".parse().unwrap()).await;
    let echo = tcp_echo().await;
    let dir = tempdir();
    let log_path = dir.join("access.log");
    let conf = conf_file(
        "version: 1\ncmux_proxy:\n  access_log_format: json\n  request_head_timeout_ms: 500\n",
    );
    let proxy = Proxy::start(&["-c", &conf, "--access-log", log_path.to_str().unwrap()]);

    // HTTP, with a query that must not be logged.
    let (status, _, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", up.port()),
            "-H",
            "X-Cmux-Workspace-Internal: workspace-5",
            &proxy.url("/download/1234?token=secret"),
        ])
    });
    assert_eq!(status, 200);

    // A WebSocket session.
    let mut req = format!("ws://{}/chat", proxy.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Cmux-Port-Internal", up.port().parse().unwrap());
    req.headers_mut()
        .insert("X-Cmux-Workspace-Internal", "workspace-5".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text("hello".into())).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    ws.close(None).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    drop(ws);

    // A CONNECT tunnel.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        format!(
            "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\n\r\n0123456789",
            echo.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"));
    s.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut s).await, b"0123456789");

    // A head that never ends is cut at the head timeout, and logged too.
    let mut slow = TcpStream::connect(proxy.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let reply = read_until_close(&mut slow).await;
    assert!(reply.starts_with(b"HTTP/1.1 408 "));

    let lines = tokio::task::block_in_place(|| wait_for_lines(&log_path, 4));
    assert_eq!(lines.len(), 4, "{lines:?}");
    let entries: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_kind = |kind: &str| {
        entries
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} line in {lines:?}"))
    };
    let http = by_kind("http");
    assert_eq!(http["method"], "GET");
    assert_eq!(http["path"], "/download/1234");
    assert_eq!(http["status"], 200);
    assert_eq!(http["bytes_out"], 1234);
    assert_eq!(http["workspace"], "workspace-5");
    assert_eq!(http["target"], up.addr.to_string());
    assert!(http["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(http["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(http["time"].as_str().unwrap().ends_with('Z'));
    assert!(!lines[0].contains("secret") && !lines.iter().any(|l| l.contains("secret")));
    let ws = by_kind("websocket");
    assert_eq!(ws["status"], 101);
    assert_eq!(ws["path"], "/chat");
    let connect = by_kind("connect");
    assert_eq!(connect["method"], "CONNECT");
    assert_eq!(connect["status"], 200);
    assert_eq!(connect["bytes_in"], 10);
    assert_eq!(connect["bytes_out"], 10);
    assert_eq!(connect["target"], echo.to_string());
    let timed_out = entries
        .iter()
        .find(|e| e["error"] == "head_timeout")
        .expect("a head_timeout line");
    assert_eq!(timed_out["status"], 408);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_a_known_sequence() {
    let up = Upstream::start().await;
    let echo = tcp_echo().await;
    let proxy = Proxy::start(&["--wait-for-port-ms", "0"]);
    let (status, head, body) = tokio::task::block_in_place(|| admin_get(&proxy, "/metrics"));
    assert_eq!(status, 200);
    assert!(header_values(&head, "content-type")[0].starts_with("text/plain; version=0.0.4"));
    let before = parse_prometheus(&body);

    let port = format!("X-Cmux-Port-Internal: {}", up.port());
    for _ in 0..3 {
        let (s, _, _) =
            tokio::task::block_in_place(|| curl_full(&["-H", &port, &proxy.url("/download/100")]));
        assert_eq!(s, 200);
    }
    let (s, _, _) = tokio::task::block_in_place(|| curl_full(&[&proxy.url("/")]));
    assert_eq!(s, 400);
    let closed = format!("X-Cmux-Port-Internal: {}", free_port());
    let (s, _, _) = tokio::task::block_in_place(|| curl_full(&["-H", &closed, &proxy.url("/")]));
    assert_eq!(s, 502);
    let mut t = TcpStream::connect(proxy.addr).await.unwrap();
    t.write_all(
        format!(
            "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\n\r\nabc",
            echo.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    read_head(&mut t).await;
    let mut back = [0u8; 3];
    t.read_exact(&mut back).await.unwrap();
    // A tunnel that is still open shows in the gauge.
    let open = tokio::task::block_in_place(|| parse_prometheus(&admin_get(&proxy, "/metrics").2));
    assert_eq!(metric(&open, "cmux_open_tunnels{kind=\"connect\"}"), 1.0);
    t.shutdown().await.unwrap();
    read_to_end(&mut t).await;

    // The tunnel's end is counted once the proxy has seen it close: poll (bounded) until
    // the gauge is back to 0 and the tunnel is counted, then compare.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let m = tokio::task::block_in_place(|| parse_prometheus(&admin_get(&proxy, "/metrics").2));
        let connect_done = metric(&m, "cmux_requests_total{kind=\"connect\",status=\"2xx\"}")
            - metric(
                &before,
                "cmux_requests_total{kind=\"connect\",status=\"2xx\"}",
            );
        if metric(&m, "cmux_open_tunnels{kind=\"connect\"}") == 0.0 && connect_done >= 1.0 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the tunnel's end was not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let delta = |series: &str| metric(&after, series) - metric(&before, series);
    assert_eq!(
        delta("cmux_requests_total{kind=\"http\",status=\"2xx\"}"),
        3.0
    );
    assert_eq!(
        delta("cmux_requests_total{kind=\"http\",status=\"4xx\"}"),
        1.0
    );
    assert_eq!(
        delta("cmux_requests_total{kind=\"http\",status=\"5xx\"}"),
        1.0
    );
    assert_eq!(
        delta("cmux_requests_total{kind=\"connect\",status=\"2xx\"}"),
        1.0
    );
    assert_eq!(
        delta("cmux_upstream_connect_failures_total{reason=\"refused\"}"),
        1.0
    );
    assert_eq!(
        delta("cmux_request_duration_seconds_count{kind=\"http\"}"),
        5.0
    );
    assert_eq!(metric(&after, "cmux_open_tunnels{kind=\"connect\"}"), 0.0);
    assert!(delta("cmux_bytes_total{direction=\"out\"}") >= 303.0);
    assert!(delta("cmux_connections_accepted_total") >= 6.0);
    assert!(after.contains_key("cmux_connections_active"));
}

#[tokio::test(flavor = "multi_thread")]
async fn per_target_labels_are_capped_under_a_port_scan() {
    let conf =
        conf_file("version: 1\ncmux_proxy:\n  metrics_per_target: true\n  wait_for_port_ms: 0\n");
    let proxy = std::sync::Arc::new(Proxy::start(&["-c", &conf]));
    // 5,000 distinct ports on an address where nothing listens: each is refused at once.
    let mut tasks = Vec::new();
    for worker in 0..50u16 {
        let proxy = proxy.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100u16 {
                let port = worker * 100 + i + 1;
                let mut s = TcpStream::connect(proxy.addr).await.unwrap();
                s.write_all(
                    format!(
                        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {port}\r\nX-Cmux-Workspace-Internal: workspace-65534\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
                let head = read_head(&mut s).await;
                assert!(head.starts_with("HTTP/1.1 502"), "{head}");
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("scan in time")
            .unwrap();
    }
    let m = tokio::task::block_in_place(|| parse_prometheus(&admin_get(&proxy, "/metrics").2));
    let series: Vec<&String> = m
        .keys()
        .filter(|k| k.starts_with("cmux_target_requests_total{"))
        .collect();
    assert_eq!(series.len(), 1001, "1000 label sets plus \"other\"");
    assert_eq!(
        metric(
            &m,
            "cmux_target_requests_total{port=\"other\",workspace=\"other\"}"
        ),
        4000.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_turns_503_during_graceful_shutdown() {
    let conf =
        conf_file("version: 1\ngrace_period_seconds: 2\ngraceful_shutdown_timeout_seconds: 1\n");
    let mut proxy = Proxy::start(&["-c", &conf]);
    // A request in flight (the upstream answers after 1 s) keeps the proxy draining: an
    // idle one exits at once.
    let upstream = Upstream::start().await;
    let mut slow = TcpStream::connect(proxy.addr).await.unwrap();
    let slow_req = format!(
        "GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {}\r\nConnection: close\r\n\r\n",
        upstream.port()
    );
    slow.write_all(slow_req.as_bytes()).await.unwrap();
    upstream.wait_requests(1).await;
    // Keep-alive connections to the admin listener, each opened and used before the
    // signal. pingora closes a keep-alive connection after an answer once shutdown has
    // begun, so each is asked at most once after the signal.
    let ask = b"GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n";
    async fn healthz(s: &mut TcpStream, ask: &[u8]) -> (String, Vec<u8>) {
        if s.write_all(ask).await.is_err() {
            return (String::new(), Vec::new());
        }
        let head = read_head(s).await;
        let len: usize = header_values(&head, "content-length")
            .first()
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        let _ = s.read_exact(&mut body).await;
        (head, body)
    }
    let mut admin = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(proxy.admin).await.unwrap();
        let (head, body) = healthz(&mut s, ask).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"ok\n");
        admin.push(s);
    }

    let pid = proxy.child.id();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    // Shutdown has begun once the proxy's listener is closed (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(proxy.addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the listener still accepts 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Then /healthz says 503 on a connection opened before the signal (the next one is
    // asked only if the shutdown's flag came a moment after the listener's close).
    let mut answers = Vec::new();
    for s in &mut admin {
        let (head, body) = healthz(s, ask).await;
        let done = head.starts_with("HTTP/1.1 503");
        answers.push(head);
        if done {
            assert_eq!(body, b"shutting down\n");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        answers
            .last()
            .is_some_and(|h| h.starts_with("HTTP/1.1 503")),
        "{answers:?}"
    );
    // The request in flight still completes.
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("slow done"),
        "{answer}"
    );
    // And the process still exits 0 after its grace period.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = proxy.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_ports_and_version() {
    let ws3 = std::net::TcpListener::bind("127.18.0.3:0").unwrap();
    let ws4 = std::net::TcpListener::bind("127.18.0.4:0").unwrap();
    let p3 = ws3.local_addr().unwrap().port();
    let p4 = ws4.local_addr().unwrap().port();
    let proxy = Proxy::start(&[]);
    let (status, head, body) =
        tokio::task::block_in_place(|| admin_get(&proxy, "/workspaces/workspace-3/ports"));
    assert_eq!(status, 200);
    assert_eq!(
        header_values(&head, "content-type"),
        vec!["application/json"]
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["address"], "127.18.0.3");
    let ports: Vec<u64> = v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert!(ports.contains(&u64::from(p3)), "{body}");
    assert!(!ports.contains(&u64::from(p4)), "{body}");
    let mine = v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == p3)
        .unwrap();
    assert_eq!(mine["pid"], std::process::id());

    let (status, _, body) = tokio::task::block_in_place(|| admin_get(&proxy, "/ports"));
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ws = v["workspaces"].as_array().unwrap();
    assert!(ws.iter().any(|w| w["workspace"] == "workspace-4"), "{body}");

    let (status, _, body) =
        tokio::task::block_in_place(|| admin_get(&proxy, "/workspaces/workspace-0/ports"));
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = tokio::task::block_in_place(|| admin_get(&proxy, "/version"));
    assert_eq!(status, 200);
    assert_eq!(body, format!("cmux-proxy {}\n", env!("CARGO_PKG_VERSION")));
    drop((ws3, ws4));
}

/// `SIGHUP` reopens the access log file, as logrotate needs: after the file is moved away
/// and the signal sent, lines go to a new file at the old path.
#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_is_reopened_on_sighup() {
    let up = Upstream::start().await;
    let dir = tempdir();
    let log = dir.join("access.log");
    let rotated = dir.join("access.log.1");
    let proxy = Proxy::start(&["--access-log", log.to_str().unwrap()]);
    let port = format!("X-Cmux-Port-Internal: {}", up.port());
    let get = |n: usize| {
        let (status, _, _) = curl_full(&["-H", &port, &proxy.url(&format!("/line-{n}"))]);
        assert_eq!(status, 404, "the upstream's own 404");
    };
    tokio::task::block_in_place(|| get(0));
    assert_eq!(
        tokio::task::block_in_place(|| wait_for_lines(&log, 1)).len(),
        1
    );
    std::fs::rename(&log, &rotated).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &proxy.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    // The signal is handled asynchronously: requests until a line lands in the new file.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 1;
    while std::fs::read_to_string(&log).map_or(true, |t| t.is_empty()) {
        assert!(Instant::now() < deadline, "no new access log after SIGHUP");
        tokio::task::block_in_place(|| get(n));
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&log).unwrap();
    assert!(old.contains("\"GET /line-0\""), "{old}");
    assert!(!new.contains("\"GET /line-0\""), "{new}");
    let last = format!("\"GET /line-{}\"", n - 1);
    assert!(
        new.contains(&last),
        "the last request is in the new file: {new}"
    );
    assert_eq!(
        old.lines().count() + new.lines().count(),
        n,
        "every line in one of the two files\nold:\n{old}\nnew:\n{new}"
    );
}

/// A log destination that takes nothing (a pipe nobody reads, as a stalled disk) drops
/// lines and counts them in `cmux_access_log_dropped_total`; requests are not held up.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_access_log_drops_lines_and_counts_them() {
    use std::os::unix::fs::OpenOptionsExt;
    let up = Upstream::start().await;
    let dir = tempdir();
    let fifo = dir.join("access.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // A reader that never reads: the proxy can open the pipe, and it fills up (64 KiB).
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let proxy = std::sync::Arc::new(Proxy::start(&["--access-log", fifo.to_str().unwrap()]));
    let dropped = |m: &HashMap<String, f64>| metric(m, "cmux_access_log_dropped_total");
    let before = tokio::task::block_in_place(|| parse_prometheus(&admin_get(&proxy, "/metrics").2));
    assert!(before.contains_key("cmux_access_log_dropped_total"));
    assert_eq!(dropped(&before), 0.0);

    // 20,000 requests on 8 keep-alive connections: more lines than the pipe (about 500)
    // and the writer's queue (16,384) hold. Each must be answered, promptly.
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..8 {
        let (proxy, port) = (proxy.clone(), up.port());
        clients.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(proxy.addr).await.unwrap();
            for i in 0..2500 {
                let req = format!(
                    "GET /download/1?c={c}&i={i} HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {port}\r\n\r\n"
                );
                s.write_all(req.as_bytes()).await.unwrap();
                let head = read_head(&mut s).await;
                assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
                let mut body = [0u8; 1];
                s.read_exact(&mut body).await.unwrap();
            }
        }));
    }
    for c in clients {
        tokio::time::timeout(Duration::from_secs(120), c)
            .await
            .expect("requests are not held up by the log")
            .unwrap();
    }
    let took = started.elapsed();
    let after = tokio::task::block_in_place(|| parse_prometheus(&admin_get(&proxy, "/metrics").2));
    println!(
        "stalled access log: 20000 requests in {took:?}, {} lines dropped",
        dropped(&after)
    );
    assert!(
        dropped(&after) >= 20_000.0 - 16_384.0 - 1_000.0,
        "{} dropped",
        dropped(&after)
    );
}
