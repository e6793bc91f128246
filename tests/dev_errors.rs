//! Errors that help a developer: waiting for a restarting port, explaining a refused
//! port, the three body forms, loop detection and the slow-client guard.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Starts an upstream on `addr` after `delay`, from a background task.
fn listen_later(addr: SocketAddr, delay: Duration) -> tokio::task::JoinHandle<Upstream> {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        Upstream::start_at(addr).await
    })
}

fn unused_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn waits_for_a_port_that_opens_within_the_default_budget() {
    let proxy = Proxy::start(&[]);
    let addr = unused_addr();
    let later = listen_later(addr, Duration::from_millis(800));
    let start = Instant::now();
    let (status, _, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", addr.port()),
            &proxy.url("/download/10"),
        ])
    });
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, pattern(10));
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "{:?}",
        start.elapsed()
    );
    drop(later);
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_header_overrides_a_zero_default_for_http_websocket_and_connect() {
    let proxy = Proxy::start(&["--wait-for-port-ms", "0"]);

    // HTTP
    let addr = unused_addr();
    let later = listen_later(addr, Duration::from_millis(800));
    let port = format!("X-Cmux-Port-Internal: {}", addr.port());
    let (status, _, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &port,
            "-H",
            "X-Cmux-Wait-Ms: 2000",
            &proxy.url("/echo"),
        ])
    });
    assert_eq!(status, 200);
    drop(later);

    // WebSocket handshake
    let addr = unused_addr();
    let later = listen_later(addr, Duration::from_millis(800));
    let (status, head, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", addr.port()),
            "-H",
            "X-Cmux-Wait-Ms: 2000",
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "--max-time",
            "4",
            &proxy.url("/ws"),
        ])
    });
    assert_eq!(status, 101, "{head}");
    drop(later);

    // CONNECT, with early data sent while the proxy waits.
    let echo_addr = unused_addr();
    let later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let l = tokio::net::TcpListener::bind(echo_addr).await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
        let _ = w.shutdown().await;
    });
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        format!(
            "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\nX-Cmux-Wait-Ms: 2000\r\n\r\nfirst|",
            echo_addr.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write_all(b"second").await.unwrap();
    let head = read_head(&mut s).await;
    assert_eq!(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    s.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut s).await, b"first|second");
    later.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_wait_fails_at_once() {
    let proxy = Proxy::start(&[]);
    let start = Instant::now();
    let (status, _, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", free_port()),
            "-H",
            "X-Cmux-Wait-Ms: 0",
            &proxy.url("/"),
        ])
    });
    assert_eq!(status, 502);
    // Well under the 2 s default budget (curl's own start-up is in this figure).
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let (status, _, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            "X-Cmux-Port-Internal: 1",
            "-H",
            "X-Cmux-Wait-Ms: soon",
            &proxy.url("/"),
        ])
    });
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("X-Cmux-Wait-Ms"));
}

/// Open file descriptors of a process (sockets included).
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_during_the_wait_frees_its_task() {
    let proxy = Proxy::start(&[]);
    let pid = proxy.child.id();
    // Settle first: the readiness probe's connection may still be open for a moment.
    let mut baseline = open_fds(pid);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = open_fds(pid);
        if now == baseline {
            break;
        }
        baseline = now.min(baseline);
    }
    let port = free_port();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\nX-Cmux-Port-Internal: {port}\r\nX-Cmux-Wait-Ms: 20000\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        clients.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(pid) < baseline + 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        open_fds(pid) >= baseline + 20,
        "the clients are waiting: {} fds, {baseline} before",
        open_fds(pid)
    );
    drop(clients);
    // Within a couple of backoff periods every waiting task has noticed and closed.
    let deadline = Instant::now() + Duration::from_secs(3);
    while open_fds(pid) > baseline && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        open_fds(pid) <= baseline,
        "{} fds open, {baseline} before",
        open_fds(pid)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_workspace_port_explains_servers_outside_the_workspace() {
    let proxy = Proxy::start(&["--wait-for-port-ms", "0"]);
    // A dev server bound to [::1] and one bound to 127.0.0.1, both outside workspace-41.
    let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
    let port = v6.local_addr().unwrap().port();
    let v4 = std::net::TcpListener::bind(("127.0.0.1", port)).ok();
    for accept in ["text/plain", "application/json", "text/html"] {
        let (status, head, body) = tokio::task::block_in_place(|| {
            curl_full(&[
                "-H",
                &format!("X-Cmux-Port-Internal: {port}"),
                "-H",
                "X-Cmux-Workspace-Internal: workspace-41",
                "-H",
                &format!("Accept: {accept}"),
                &proxy.url("/"),
            ])
        });
        assert_eq!(status, 502);
        let text = String::from_utf8_lossy(&body).to_string();
        let target = format!("127.18.0.41:{port}");
        match accept {
            "application/json" => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["code"], "port_closed");
                assert_eq!(v["target"], target.as_str());
                assert_eq!(v["workspace"], "workspace-41");
                let listeners: Vec<String> = v["listeners"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string())
                    .collect();
                assert!(
                    listeners.contains(&format!("[::1]:{port}")),
                    "{listeners:?}"
                );
                if v4.is_some() {
                    assert!(
                        listeners.contains(&format!("127.0.0.1:{port}")),
                        "{listeners:?}"
                    );
                }
                assert!(v["hint"]
                    .as_str()
                    .unwrap()
                    .contains("outside the workspace"));
            }
            "text/html" => {
                assert!(header_values(&head, "content-type")[0].starts_with("text/html"));
                assert!(text.contains("http-equiv=\"refresh\""), "{text}");
                assert!(text.contains(&target), "{text}");
                assert!(!text.contains("<script"), "self-contained: {text}");
            }
            _ => {
                assert_eq!(text.lines().count(), 1, "{text}");
                assert!(
                    text.contains(&format!("nothing listens on {target} (workspace-41)")),
                    "{text}"
                );
                assert!(text.contains("a server listens on "), "{text}");
                assert!(text.contains(&format!("[::1]:{port}")), "{text}");
                assert!(text.contains("outside the workspace"), "{text}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_that_would_loop_get_508() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    // The proxy's own port as the target.
    for headers in [
        vec![format!("X-Cmux-Port-Internal: {}", proxy.addr.port())],
        vec![format!("Host: workspace-1-{}.localhost", proxy.addr.port())],
    ] {
        let mut args: Vec<String> = Vec::new();
        for h in headers {
            args.extend(["-H".to_string(), h]);
        }
        args.extend(["-H".to_string(), "Accept: application/json".to_string()]);
        args.push(proxy.url("/"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, _, body) = tokio::task::block_in_place(|| curl_full(&args));
        if status == 508 {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["code"], "loop_detected");
        } else {
            // workspace-1 is 127.18.0.1, which the proxy (on 127.0.0.1) does not cover.
            assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
        }
    }
    let (status, _, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", proxy.addr.port()),
            &proxy.url("/"),
        ])
    });
    assert_eq!(status, 508);
    // A request that already passed through this proxy carries its Via mark.
    let (_, _, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", up.port()),
            &proxy.url("/echo"),
        ])
    });
    let echoed = String::from_utf8_lossy(&body).to_string();
    // Header names are case-insensitive: the proxy writes `Via`, the echo keeps it as sent.
    let via = echoed
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(": ")?;
            name.eq_ignore_ascii_case("via").then_some(value)
        })
        .expect("Via forwarded upstream")
        .to_string();
    assert!(via.contains("cmux-proxy-"), "{via}");
    let (status, _, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", up.port()),
            "-H",
            &format!("Via: {via}"),
            &proxy.url("/echo"),
        ])
    });
    assert_eq!(status, 508);
    // Another proxy's Via entry is not a loop.
    let (status, _, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", up.port()),
            "-H",
            "Via: 1.1 cmux-proxy-00000000, 1.1 nginx",
            &proxy.url("/echo"),
        ])
    });
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_client_is_cut_at_the_head_timeout_while_others_are_served() {
    let up = Upstream::start().await;
    let dir = tempdir();
    let conf = dir.join("conf.yaml");
    std::fs::write(
        &conf,
        "version: 1\ncmux_proxy:\n  request_head_timeout_ms: 1000\n",
    )
    .unwrap();
    let proxy = Proxy::start(&["-c", conf.to_str().unwrap()]);
    let mut slow = TcpStream::connect(proxy.addr).await.unwrap();
    let start = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let trickle = tokio::spawn(async move {
        // One header byte every 200 ms: each read is quick, the head never ends.
        for _ in 0..40 {
            if slow.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });
    // Meanwhile a normal client is served.
    let (status, _, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", up.port()),
            &proxy.url("/echo"),
        ])
    });
    assert_eq!(status, 200);
    let mut slow = trickle.await.unwrap();
    let reply = String::from_utf8_lossy(&read_until_close(&mut slow).await).to_string();
    assert!(reply.starts_with("HTTP/1.1 408 "), "{reply:?}");
    assert!(
        start.elapsed() < Duration::from_secs(9),
        "{:?}",
        start.elapsed()
    );
}
