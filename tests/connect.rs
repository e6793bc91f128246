//! CONNECT tunnels on the proxy's one listener, with a raw TCP client.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn connect_head(port: &str, extra: &str) -> String {
    format!(
        "CONNECT ignored.example:443 HTTP/1.1\r\nHost: ignored.example:443\r\nX-Cmux-Port-Internal: {port}\r\n{extra}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_with_early_data_and_half_close() {
    let echo = tcp_echo().await;
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    // The head and the first tunnel bytes in one write: the early bytes must not be lost.
    let mut first = connect_head(&echo.port().to_string(), "").into_bytes();
    first.extend_from_slice(b"early-bytes|");
    s.write_all(&first).await.unwrap();
    let head = read_head(&mut s).await;
    assert_eq!(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    s.write_all(b"later-bytes").await.unwrap();
    // Half-close: the echo server sees EOF, echoes what it had and closes its side.
    s.shutdown().await.unwrap();
    let rest = read_to_end(&mut s).await;
    assert_eq!(rest, b"early-bytes|later-bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn four_mib_both_ways_in_order() {
    const SIZE: usize = 4 << 20;
    let echo = tcp_echo().await;
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(connect_head(&echo.port().to_string(), "").as_bytes())
        .await
        .unwrap();
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 200 "));
    let data = pattern(SIZE);
    let (mut r, mut w) = s.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::with_capacity(SIZE);
    tokio::time::timeout(Duration::from_secs(30), r.read_to_end(&mut got))
        .await
        .expect("echo in time")
        .unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), SIZE);
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_after_get_on_one_keepalive_connection() {
    let up = Upstream::start().await;
    let echo = tcp_echo().await;
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        format!(
            "GET /download/5 HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {}\r\n\r\n",
            up.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let mut body = [0u8; 5];
    s.read_exact(&mut body).await.unwrap();
    assert_eq!(body, [0, 1, 2, 3, 4]);

    s.write_all(connect_head(&echo.port().to_string(), "").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        read_head(&mut s).await,
        "HTTP/1.1 200 Connection Established\r\n\r\n"
    );
    s.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"ping");
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_connect() {
    let up = Upstream::start_on("127.18.1.44".parse().unwrap()).await; // workspace-300
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        connect_head(&up.port(), "X-Cmux-Workspace-Internal: workspace-300\r\n").as_bytes(),
    )
    .await
    .unwrap();
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 200 "));
    // Speak HTTP through the tunnel to the workspace's server.
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = String::from_utf8(read_to_end(&mut s).await).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(
        reply.contains(&format!("X-Upstream: {}", up.addr)),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_target_gets_a_real_502_never_200_first() {
    let proxy = Proxy::start(&[]);
    let port = free_port().to_string();
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(connect_head(&port, "").as_bytes())
        .await
        .unwrap();
    let reply = String::from_utf8(read_to_end(&mut s).await).unwrap();
    assert!(reply.starts_with("HTTP/1.1 502 "), "{reply}");
    assert!(!reply.contains(" 200 "), "{reply}");
    assert!(
        reply.contains("Content-Type: text/plain; charset=utf-8"),
        "{reply}"
    );
    assert!(reply.contains(&format!("127.0.0.1:{port}")), "{reply}");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert_eq!(
        header_values(head, "content-length"),
        vec![body.len().to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_errors_match_http_errors() {
    let proxy = Proxy::start(&[]);
    for (headers, status) in [
        ("", "400"),
        ("X-Cmux-Port-Internal: 0\r\n", "400"),
        (
            "X-Cmux-Port-Internal: 1\r\nX-Cmux-Workspace-Internal: bad name!\r\n",
            "400",
        ),
    ] {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(format!("CONNECT x:1 HTTP/1.1\r\n{headers}\r\n").as_bytes())
            .await
            .unwrap();
        let reply = String::from_utf8(read_to_end(&mut s).await).unwrap();
        assert!(reply.starts_with(&format!("HTTP/1.1 {status} ")), "{reply}");
    }
    // JSON when asked, as for HTTP.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"CONNECT x:1 HTTP/1.1\r\nAccept: application/json\r\n\r\n")
        .await
        .unwrap();
    let reply = String::from_utf8(read_to_end(&mut s).await).unwrap();
    let body = reply.split_once("\r\n\r\n").unwrap().1;
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["code"], "missing_port");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_connect_head_is_refused() {
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let filler = format!("X-Filler: {}\r\n", "a".repeat(1000)).repeat(100);
    let _ = s
        .write_all(format!("CONNECT x:1 HTTP/1.1\r\n{filler}\r\n").as_bytes())
        .await;
    // A reset after the answer is tolerated.
    let reply = String::from_utf8_lossy(&read_until_close(&mut s).await).to_string();
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_tunnels_are_closed_and_counted_at_the_shutdown_deadline() {
    use std::process::{Command, Stdio};
    let echo = tcp_echo().await;
    let up = Upstream::start().await;
    let dir = tempdir();
    let conf = dir.join("conf.yaml");
    std::fs::write(
        &conf,
        "version: 1\ngrace_period_seconds: 2\ngraceful_shutdown_timeout_seconds: 1\n",
    )
    .unwrap();
    let log_path = dir.join("stderr.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = without_cmux_env(&mut Command::new(PROXY_BIN))
        .args(["-c", conf.to_str().unwrap(), "--listen", &addr])
        .args(["--admin-listen", "off", "--access-log", "off"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut s = loop {
        if let Ok(s) = TcpStream::connect(&addr).await {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "proxy did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // One CONNECT tunnel and one WebSocket, both open and quiet.
    s.write_all(connect_head(&echo.port().to_string(), "").as_bytes())
        .await
        .unwrap();
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 200 "));
    let mut ws = TcpStream::connect(&addr).await.unwrap();
    ws.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Cmux-Port-Internal: {}\r\n\r\n",
            up.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert!(read_head(&mut ws).await.starts_with("HTTP/1.1 101 "));

    let stop = std::time::Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    // The tunnel ends with a clean close near the end of the grace period.
    let rest = read_until_close(&mut s).await;
    assert!(rest.is_empty(), "{rest:?}");
    let closed_after = stop.elapsed();
    assert!(
        closed_after >= Duration::from_millis(1500) && closed_after < Duration::from_secs(5),
        "{closed_after:?}"
    );
    let status = tokio::task::spawn_blocking(move || {
        let limit = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > limit {
                let _ = child.kill();
                return child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("shutdown deadline: closing 2 open tunnel(s) (1 connect, 1 websocket)"),
        "{log}"
    );
}

/// Half-close end to end: the target answers only after it has read the client's EOF
/// (all of the request, then end-of-file), and that answer still comes back through the
/// tunnel before the close.
#[tokio::test(flavor = "multi_thread")]
async fn an_answer_sent_after_the_clients_eof_comes_back() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got)).await;
        if !matches!(read, Ok(Ok(_))) {
            return; // no EOF: the client sees no answer and fails
        }
        let answer = format!("got {} bytes, then your EOF", got.len());
        let _ = s.write_all(answer.as_bytes()).await;
        let _ = s.shutdown().await;
    });
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(connect_head(&target.port().to_string(), "").as_bytes())
        .await
        .unwrap();
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 200 "));
    s.write_all(b"the whole request").await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut s).await, b"got 17 bytes, then your EOF");
}

/// A client that can only be given a proxy address tunnels by naming the target
/// `<workspace>-<port>.localhost:<port>`: `curl -p -x` sends `CONNECT` with that
/// authority, no routing header, and no name is resolved on the way.
#[tokio::test(flavor = "multi_thread")]
async fn connect_is_routed_by_a_localhost_authority() {
    let up = Upstream::start_on("127.18.0.32".parse().unwrap()).await; // workspace-32
    let proxy = Proxy::start(&[]);
    let url = format!("http://workspace-32-{0}.localhost:{0}/echo", up.port());
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new("curl")
            .args(["-sS", "-i", "--max-time", "20", "-p", "-x", &proxy.url("")])
            .arg(&url)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .output()
            .expect("run curl")
    });
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("HTTP/1.1 200 Connection Established"),
        "{text}"
    );
    assert!(text.contains("\r\n\r\nHTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains(&format!("X-Upstream: {}", up.addr)), "{text}");
    assert!(text.contains("GET /echo\n"), "{text}");
}
