//! Timeouts on long-lived traffic. pingora's one-minute read timeout, measured for real:
//! a quiet WebSocket and a quiet CONNECT tunnel outlive it, an idle h2c connection gets
//! GOAWAY after it, and a stalled request body gets a clear 408 (two tests of a minute
//! each, run side by side). And `tunnel_idle_timeout_ms`, when set,
//! closes only quiet tunnels; `upstream_read_timeout_ms`, when set, answers a silent
//! target with 504 and cuts a response that stalls, but leaves WebSockets alone.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket to the test upstream's echo, through the proxy.
async fn ws_connect(proxy: &Proxy, port: &str) -> Ws {
    let mut req = format!("ws://{}/hmr", proxy.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Cmux-Port-Internal", port.parse().unwrap());
    let (ws, _) = ws_handshake(req).await;
    ws
}

/// A proxy run from a conf whose `cmux_proxy:` section is `section`, logging to a file.
/// Returns the proxy, the temporary directory and the access log's path.
fn proxy_with_section(section: &str) -> (Proxy, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempdir();
    let conf = dir.join("conf.yaml");
    let log = dir.join("access.log");
    std::fs::write(
        &conf,
        format!("version: 1\nthreads: 1\ncmux_proxy:\n{section}"),
    )
    .unwrap();
    let proxy = Proxy::start(&[
        "-c",
        conf.to_str().unwrap(),
        "--access-log",
        log.to_str().unwrap(),
    ]);
    (proxy, dir, log)
}

/// The access log lines that contain `needle`, once there are `count` of them (waiting at
/// most 5 s: lines are written by a separate thread), and the whole log for messages.
async fn log_lines_with(
    log: &std::path::Path,
    needle: &str,
    count: usize,
) -> (Vec<String>, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found: Vec<String> = text
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect();
        if found.len() >= count || Instant::now() >= deadline {
            assert_eq!(found.len(), count, "{text}");
            return (found, text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads one HTTP/2 frame: (type, flags, payload).
async fn read_frame(s: &mut TcpStream) -> std::io::Result<(u8, u8, Vec<u8>)> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).await?;
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await?;
    Ok((head[3], head[4], payload))
}

/// A minute of quiet, three ways at once (the three waits overlap, so the test takes
/// 65 s, not three times that):
/// - pingora reads a client's upgraded bytes with a 60 s timeout of its own; a WebSocket
///   quiet both ways for longer than that must still be open (an HMR socket between
///   edits);
/// - a CONNECT tunnel quiet both ways for as long is still open too (no
///   `tunnel_idle_timeout_ms` by default);
/// - an h2c connection with no stream in flight for 60 s is sent GOAWAY and closed, as an
///   idle HTTP/1.1 keep-alive connection is.
#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_minute_websocket_and_connect_stay_open_idle_h2c_gets_goaway() {
    let up = Upstream::start().await;
    let echo = tcp_echo().await;
    let proxy = Proxy::start(&[]);
    let websocket = async {
        let mut ws = ws_connect(&proxy, &up.port()).await;
        tokio::time::sleep(Duration::from_secs(65)).await;
        ws.send(Message::Text("after 65 s".into())).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("echo in time")
            .expect("socket still open")
            .expect("a message");
        assert_eq!(echoed, Message::Text("after 65 s".into()));
        ws.close(None).await.unwrap();
    };
    let tunnel = async {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let head = format!(
            "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\n\r\n",
            echo.port()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        assert!(read_head(&mut s).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_secs(65)).await;
        s.write_all(b"after 65 s").await.unwrap();
        let mut back = [0u8; 10];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut back))
            .await
            .expect("the quiet tunnel still echoes")
            .expect("the quiet tunnel is still open");
        assert_eq!(&back, b"after 65 s");
    };
    let h2c = async {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        // The client preface and an empty SETTINGS frame; then no stream at all.
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .await
            .unwrap();
        let started = Instant::now();
        let goaway = tokio::time::timeout(Duration::from_secs(80), async {
            loop {
                let (kind, flags, payload) = read_frame(&mut s).await.expect("frames until GOAWAY");
                match kind {
                    // SETTINGS from the server: acknowledged, as a client must.
                    0x4 if flags & 0x1 == 0 => {
                        s.write_all(b"\0\0\0\x04\x01\0\0\0\0").await.unwrap();
                    }
                    // PING: answered.
                    0x6 if flags & 0x1 == 0 => {
                        let mut pong = vec![0, 0, 8, 0x6, 0x1, 0, 0, 0, 0];
                        pong.extend_from_slice(&payload);
                        s.write_all(&pong).await.unwrap();
                    }
                    0x7 => return payload,
                    _ => {}
                }
            }
        })
        .await
        .expect("GOAWAY within 80 s");
        let after = started.elapsed();
        assert!(
            after >= Duration::from_secs(55),
            "GOAWAY after {after:?}, before the idle minute"
        );
        assert_eq!(&goaway[4..8], &[0, 0, 0, 0], "NO_ERROR: {goaway:?}");
        read_until_close(&mut s).await;
    };
    tokio::join!(websocket, tunnel, h2c);
}

/// A client that sends half its declared body and stops gets 408 with a body that says
/// why, after the 60 s body read timeout, and the connection is closed.
#[tokio::test(flavor = "multi_thread")]
async fn stalled_request_body_gets_408_after_a_minute() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    client
        .write_all(
            format!(
                "POST /upload HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {}\r\n\
                 Content-Length: 10\r\n\r\n12345",
                up.port()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(75), client.read_to_end(&mut answer))
        .await
        .expect("answer and close within 75 s")
        .expect("read");
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(
        text.ends_with("\r\n\r\nrequest body stalled: no byte for 60 s\n"),
        "{text}"
    );
    assert!(
        waited >= Duration::from_secs(59),
        "answered after {waited:?}"
    );
}

/// With `tunnel_idle_timeout_ms` set, a WebSocket or CONNECT tunnel with no byte either way
/// for that long is closed, and logged as `idle_timeout`; one with traffic outlives it.
#[tokio::test(flavor = "multi_thread")]
async fn tunnel_idle_timeout_closes_only_quiet_tunnels() {
    let up = Upstream::start().await;
    let echo = tcp_echo().await;
    let (proxy, dir, log) =
        proxy_with_section("  tunnel_idle_timeout_ms: 1000\n  access_log_format: json\n");

    let mut busy = ws_connect(&proxy, &up.port()).await;
    let mut quiet = ws_connect(&proxy, &up.port()).await;
    let mut tunnel = TcpStream::connect(proxy.addr).await.unwrap();
    tunnel
        .write_all(
            format!(
                "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\n\r\n",
                echo.port()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    assert!(read_head(&mut tunnel).await.starts_with("HTTP/1.1 200"));

    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let msg = format!("tick {i}");
        busy.send(Message::Text(msg.clone())).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), busy.next()).await;
        assert!(
            matches!(echoed, Ok(Some(Ok(Message::Text(ref t)))) if *t == msg),
            "{echoed:?}"
        );
    }
    // 3 s later the busy socket still echoes; the quiet ones were closed by the proxy.
    let closed = tokio::time::timeout(Duration::from_secs(5), quiet.next())
        .await
        .expect("the quiet WebSocket ends in time");
    assert!(
        !matches!(closed, Some(Ok(Message::Text(_)))),
        "the quiet WebSocket got {closed:?}"
    );
    assert_eq!(
        read_until_close(&mut tunnel).await,
        b"",
        "the quiet tunnel closes"
    );
    busy.close(None).await.unwrap();

    // Both quiet ones are logged as idle closes, with the status they had.
    let (idle, lines) = log_lines_with(&log, "\"idle_timeout\"", 2).await;
    assert!(
        idle.iter()
            .any(|l| l.contains("\"kind\":\"websocket\"") && l.contains("\"status\":101")),
        "{lines}"
    );
    assert!(
        idle.iter()
            .any(|l| l.contains("\"kind\":\"connect\"") && l.contains("\"status\":200")),
        "{lines}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `upstream_read_timeout_ms` set: a target that takes the request and stays silent
/// gets 504 `read_timeout` in about that time; one that stalls mid-response has its body
/// cut (its status was already sent); a prompt answer and a quiet WebSocket are untouched.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_read_timeout_answers_504_or_cuts_the_body() {
    let up = Upstream::start().await;
    let (proxy, dir, log) = proxy_with_section("  upstream_read_timeout_ms: 400\n");
    let port_header = format!("X-Cmux-Port-Internal: {}", up.port());

    // /slow answers after 1 s: too late. The 504 itself says it came before the target's
    // answer (which would have been a 200); the time is measured from the request's
    // last byte on a connection already open (no client start-up in it), and is at least
    // the limit.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let request = format!(
        "GET /slow HTTP/1.1\r\nHost: localhost\r\n{port_header}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let started = Instant::now();
    let head = read_head(&mut s).await;
    let took = started.elapsed();
    let body = read_until_close(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 504 "), "{head}");
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!(
            "127.0.0.1:{} sent no response within 400 ms (upstream_read_timeout_ms)\n",
            up.port()
        )
    );
    assert!(
        took >= Duration::from_millis(350),
        "answered after {took:?}"
    );

    // /sse sends its head and a first event, then pauses 1.5 s: the body is cut.
    let out = curl(&["-N", "-H", &port_header, &proxy.url("/sse")]);
    let streamed = String::from_utf8_lossy(&out.stdout);
    assert!(streamed.contains("data: first"), "{streamed}");
    assert!(!streamed.contains("data: second"), "{streamed}");
    assert_eq!(out.status.code(), Some(18), "curl: transfer cut short");

    // A prompt answer is unaffected, and so is a WebSocket quiet for longer than the limit.
    let (status, _, body) = curl_full(&["-H", &port_header, &proxy.url("/echo")]);
    assert_eq!(status, 200);
    assert!(body.starts_with(b"GET /echo"));
    let mut ws = ws_connect(&proxy, &up.port()).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    ws.send(Message::Text("still here".into())).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    assert!(
        matches!(echoed, Ok(Some(Ok(Message::Text(ref t)))) if t == "still here"),
        "{echoed:?}"
    );
    ws.close(None).await.unwrap();

    // Both timeouts are in the access log, the cut one with the status it had sent.
    let (timed_out, lines) = log_lines_with(&log, "error=read_timeout", 2).await;
    assert!(
        timed_out[0].contains("\"GET /slow\"") && timed_out[0].contains(" 504 "),
        "{lines}"
    );
    assert!(
        timed_out[1].contains("\"GET /sse\"") && timed_out[1].contains(" 200 "),
        "{lines}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
