//! Waiting for a port that is not open yet, as when a dev server restarts: the default
//! budget, `X-Cmux-Wait-Ms` for HTTP, WebSocket and CONNECT, a zero wait, and a client
//! that leaves during the wait.

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

/// `X-Cmux-Wait-Ms: 0` fails at once instead of waiting the default budget, here 20 s
/// so that "at once" stands out whatever the machine's load.
#[tokio::test(flavor = "multi_thread")]
async fn zero_wait_fails_at_once() {
    let proxy = Proxy::start(&["--wait-for-port-ms", "20000"]);
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
    // Far under the 20 s default budget (curl's own start-up is in this figure).
    assert!(
        start.elapsed() < Duration::from_secs(10),
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
                "GET / HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {port}\r\nX-Cmux-Wait-Ms: 20000\r\n\r\n"
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
