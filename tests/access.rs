//! Who gets in: tokens (header, cookie, `?cmux_token=`, `Proxy-Authorization`), trusted
//! and allowed clients (distinct source addresses: 127.0.0.2, 127.0.0.3), the target
//! policy, connection limits, and the warning about an open listener. Real proxy, real
//! upstreams, curl and raw sockets.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "tok-7Yq2-a9f3c1d8e5b0";

/// A proxy that requires `TOKEN` (from a token file), with `extra` conf lines.
fn proxy_with_tokens(extra: &str) -> (Proxy, PathBuf) {
    proxy_with_token_file(TOKEN, extra, &[])
}

fn proxy_with_tokens_and_args(extra: &str, args: &[&str]) -> (Proxy, PathBuf) {
    proxy_with_token_file(TOKEN, extra, args)
}

/// One request's raw response on a new connection from `source` (a loopback address),
/// up to the proxy's close.
async fn raw_from(source: &str, proxy: &Proxy, request: &[u8]) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut s = socket.connect(proxy.addr).await.unwrap();
    s.write_all(request).await.unwrap();
    // The answer, or nothing, then the close: within 10 s, or the test fails.
    String::from_utf8_lossy(&read_until_close(&mut s).await).to_string()
}

fn get(path: &str, port: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {port}\r\n{extra}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// The `cmux_token=...` cookie pair a `?cmux_token=` visit gives, for the Host curl
/// sends to `proxy` (`127.0.0.1:PORT`).
fn issued_cookie(proxy: &Proxy) -> String {
    let (status, head, _) = curl_full(&[&proxy.url(&format!("/?cmux_token={TOKEN}"))]);
    assert_eq!(status, 302, "{head}");
    let set_cookie = header_values(&head, "set-cookie").join("");
    set_cookie.split(';').next().unwrap().trim().to_string()
}

fn admin_metrics(proxy: &Proxy) -> String {
    let out = curl(&[&proxy.admin_url("/metrics")]);
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn token_header_and_cookie_let_in_and_never_reach_the_target() {
    let upstream = Upstream::start().await;
    let (proxy, _) = proxy_with_tokens("");
    let port = format!("X-Cmux-Port-Internal: {}", upstream.port());
    let url = proxy.url("/echo");
    let (status, head, body) = curl_full(&["-H", &port, "-H", "Accept: application/json", &url]);
    assert_eq!(status, 401, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("\"code\":\"unauthorized\""));
    assert_eq!(
        header_values(&head, "www-authenticate"),
        ["Bearer realm=\"cmux-proxy\""]
    );
    let wrong = format!("X-Cmux-Token: {TOKEN}x");
    assert_eq!(curl_full(&["-H", &port, "-H", &wrong, &url]).0, 401);

    let right = format!("X-Cmux-Token: {TOKEN}");
    let (status, _, body) = curl_full(&["-H", &port, "-H", &right, &url]);
    let body = String::from_utf8_lossy(&body).to_lowercase();
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains("x-cmux-token") && !body.contains(&TOKEN.to_lowercase()),
        "{body}"
    );

    let cookie = format!("Cookie: a=1; {}; b=2", issued_cookie(&proxy));
    let (status, _, body) = curl_full(&["-H", &port, "-H", &cookie, &url]);
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("cookie: a=1; b=2"), "{body}");
    assert!(!body.contains("cmux_token"), "{body}");
    // The bare token is no cookie: the cookie is the one the proxy issued.
    let bad_cookie = format!("Cookie: cmux_token={TOKEN}");
    assert_eq!(curl_full(&["-H", &port, "-H", &bad_cookie, &url]).0, 401);
    assert!(admin_metrics(&proxy).contains("cmux_refusals_total{code=\"unauthorized\"} 3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_in_the_url_becomes_a_cookie_and_is_never_logged() {
    let upstream = Upstream::start().await;
    let log = tempdir().join("access.log");
    let log_arg = log.to_str().unwrap();
    let extra = "  access_log_query: true\n";
    let (proxy, _) = proxy_with_tokens_and_args(extra, &["--access-log", log_arg]);
    let port = format!("X-Cmux-Port-Internal: {}", upstream.port());
    let url = proxy.url(&format!("/echo?x=1&cmux_token={TOKEN}&y=2"));
    let (status, head, _) = curl_full(&["-H", &port, &url]);
    assert_eq!(status, 302, "{head}");
    assert_eq!(header_values(&head, "location"), ["/echo?x=1&y=2"]);
    let cookie = header_values(&head, "set-cookie").join("");
    for part in [
        "cmux_token=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains(TOKEN), "{cookie}");
    assert_eq!(
        upstream
            .stats
            .accepted
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let wrong = proxy.url("/echo?cmux_token=nope");
    assert_eq!(curl_full(&["-H", &port, &wrong]).0, 401);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = String::new();
    while Instant::now() < deadline && text.lines().count() < 2 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        text.contains("\"GET /echo?x=1&y=2\" http - - 302"),
        "{text}"
    );
    assert!(text.contains("error=unauthorized"), "{text}");
    assert!(!text.contains(TOKEN) && !text.contains("nope"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_file_is_reread_on_sighup() {
    let upstream = Upstream::start().await;
    let (proxy, tokens) = proxy_with_tokens("");
    let port = format!("X-Cmux-Port-Internal: {}", upstream.port());
    let url = proxy.url("/echo");
    let with = |t: &str| curl_full(&["-H", &port, "-H", &format!("X-Cmux-Token: {t}"), &url]).0;
    assert_eq!(with(TOKEN), 200);
    std::fs::write(&tokens, "tok-rotated-0123456789\n").unwrap();
    let pid = proxy.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while with("tok-rotated-0123456789") != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(with("tok-rotated-0123456789"), 200);
    assert_eq!(with(TOKEN), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_handshakes_need_the_token_too() {
    let upstream = Upstream::start().await;
    let (proxy, _) = proxy_with_tokens("");
    let url = format!("ws://{}/ws", proxy.addr);
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut()
        .insert("x-cmux-port-internal", upstream.port().parse().unwrap());
    let Err(err) = tokio_tungstenite::connect_async(req.clone()).await else {
        panic!("a WebSocket handshake without a token was accepted");
    };
    let err = err.to_string();
    assert!(err.contains("401"), "{err}");
    req.headers_mut()
        .insert("x-cmux-token", TOKEN.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text("hello".into())).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.into_text().unwrap().as_str(), "hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_takes_the_token_in_proxy_authorization() {
    let upstream = Upstream::start().await;
    let (proxy, _) = proxy_with_tokens("");
    let connect = |auth: &str| {
        format!(
            "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\n{auth}\r\n",
            upstream.port()
        )
    };
    let refused = raw_from("127.0.0.1", &proxy, connect("").as_bytes()).await;
    assert!(refused.starts_with("HTTP/1.1 407 "), "{refused}");
    assert!(
        refused.contains("Proxy-Authenticate: Bearer realm=\"cmux-proxy\""),
        "{refused}"
    );
    let wrong = connect("Proxy-Authorization: Bearer nope\r\n");
    assert!(raw_from("127.0.0.1", &proxy, wrong.as_bytes())
        .await
        .starts_with("HTTP/1.1 407 "));
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("me:{TOKEN}"));
    for auth in [format!("Bearer {TOKEN}"), format!("Basic {basic}")] {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let head = connect(&format!("Proxy-Authorization: {auth}\r\n"));
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&get("/echo", &upstream.port(), ""))
            .await
            .unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.starts_with("HTTP/1.1 200 Connection Established"),
            "{out}"
        );
        assert!(out.contains("HTTP/1.1 200 OK"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_clients_need_no_token_and_others_do() {
    let upstream = Upstream::start().await;
    let (proxy, _) = proxy_with_tokens("  trusted_clients: [\"127.0.0.2\"]\n");
    let req = get("/echo", &upstream.port(), "");
    assert!(raw_from("127.0.0.2", &proxy, &req)
        .await
        .starts_with("HTTP/1.1 200 "));
    assert!(raw_from("127.0.0.3", &proxy, &req)
        .await
        .starts_with("HTTP/1.1 401 "));
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_outside_allow_clients_are_closed_unanswered() {
    let upstream = Upstream::start().await;
    let proxy = proxy_with_conf("  allow_clients: [\"127.0.0.1\", \"127.0.0.2/32\"]\n");
    let req = get("/echo", &upstream.port(), "");
    assert!(raw_from("127.0.0.2", &proxy, &req)
        .await
        .starts_with("HTTP/1.1 200 "));
    assert_eq!(raw_from("127.0.0.3", &proxy, &req).await, "");
    let metrics = admin_metrics(&proxy);
    assert!(
        metrics.contains("cmux_refusals_total{code=\"client_forbidden\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_policy_refuses_with_403_and_the_admin_port_with_508() {
    let ws = Upstream::start_on("127.18.0.21".parse().unwrap()).await;
    let plain = Upstream::start().await;
    let section = format!(
        "  allow_default_upstream: false\n  allowed_ports: [\"{}\"]\n  denied_ports: [\"1-1023\"]\n",
        ws.port()
    );
    let proxy = proxy_with_conf(&section);
    let in_ws = |port: &str| {
        let header = format!("X-Cmux-Port-Internal: {port}");
        let ws_header = "X-Cmux-Workspace-Internal: workspace-21";
        curl_full(&[
            "-H",
            &header,
            "-H",
            ws_header,
            "-H",
            "Accept: application/json",
            &proxy.url("/echo"),
        ])
    };
    assert_eq!(in_ws(&ws.port()).0, 200);
    let (status, _, body) = in_ws("22");
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("\"code\":\"target_forbidden\"") && body.contains("denied_ports"),
        "{body}"
    );
    let (status, _, body) = in_ws(&(ws.addr.port() + 1).to_string());
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let header = format!("X-Cmux-Port-Internal: {}", plain.port());
    let (status, _, body) = curl_full(&["-H", &header, &proxy.url("/echo")]);
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("allow_default_upstream"), "{body}");

    let open = Proxy::start(&[]);
    let admin = format!("X-Cmux-Port-Internal: {}", open.admin.port());
    assert_eq!(curl_full(&["-H", &admin, &open.url("/metrics")]).0, 508);
}

/// Reads one response head from a keep-alive connection.
async fn read_response(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let work = async {
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.unwrap_or(0) == 0 {
                break;
            }
            head.push(byte[0]);
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), work).await;
    String::from_utf8_lossy(&head).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_limit_get_503_and_the_open_ones_keep_working() {
    let upstream = Upstream::start().await;
    let proxy = proxy_with_conf("  max_connections: 3\n");
    let keep_alive = format!(
        "GET /download/5 HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {}\r\n\r\n",
        upstream.port()
    );
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(keep_alive.as_bytes()).await.unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200 "));
        let mut body = [0u8; 5];
        s.read_exact(&mut body).await.unwrap();
        open.push(s);
    }
    let started = Instant::now();
    let over = raw_from("127.0.0.1", &proxy, keep_alive.as_bytes()).await;
    assert!(over.starts_with("HTTP/1.1 503 "), "{over}");
    assert!(
        over.contains("Retry-After: 1") && over.contains("max_connections"),
        "{over}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    for s in &mut open {
        s.write_all(keep_alive.as_bytes()).await.unwrap();
        assert!(read_response(s).await.starts_with("HTTP/1.1 200 "));
        let mut body = [0u8; 5];
        s.read_exact(&mut body).await.unwrap();
    }
    assert!(admin_metrics(&proxy).contains("cmux_refusals_total{code=\"overloaded\"} 1"));

    let per_client = proxy_with_conf("  max_connections_per_client: 1\n");
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut first = socket.connect(per_client.addr).await.unwrap();
    first.write_all(keep_alive.as_bytes()).await.unwrap();
    assert!(read_response(&mut first).await.starts_with("HTTP/1.1 200 "));
    let second = raw_from("127.0.0.2", &per_client, keep_alive.as_bytes()).await;
    assert!(
        second.starts_with("HTTP/1.1 503 ") && second.contains("max_connections_per_client"),
        "{second}"
    );
    let other = raw_from(
        "127.0.0.3",
        &per_client,
        &get("/echo", &upstream.port(), ""),
    )
    .await;
    assert!(other.starts_with("HTTP/1.1 200 "), "{other}");
}

/// Listening beyond loopback with neither tokens nor `allow_clients` is warned about.
#[test]
fn listening_beyond_loopback_without_a_policy_is_warned_about() {
    let port = free_port();
    let mut child = without_cmux_env(&mut Command::new(PROXY_BIN))
        .args([
            "--listen",
            &format!("0.0.0.0:{port}"),
            "--admin-listen",
            "off",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_serving(&mut child, &[addr], "cmux-proxy");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("beyond loopback with neither auth tokens nor allow_clients"),
        "{err}"
    );
}

/// Tokens are never logged, right or wrong, in whatever carries them: `X-Cmux-Token`, the
/// `cmux_token` cookie, `?cmux_token=` (with `access_log_query: true`), and CONNECT's
/// `Proxy-Authorization` (Bearer, and Basic with the token as the password); neither in
/// the access log nor in the error log (stderr, at `RUST_LOG=debug` for cmux-proxy).
#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_never_logged_in_any_carrier() {
    use base64::Engine;
    let upstream = Upstream::start().await;
    let echo = tcp_echo().await;
    let dir = tempdir();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).unwrap();
    let conf = dir.join("conf.yaml");
    std::fs::write(
        &conf,
        format!(
            "version: 1\ncmux_proxy:\n  auth_token_file: {}\n  access_log_query: true\n",
            tokens.display()
        ),
    )
    .unwrap();
    let access_log = dir.join("access.log");
    let error_log = dir.join("error.log");
    let port = free_port();
    let proxy = Proxy::start_with(
        format!("127.0.0.1:{port}").parse().unwrap(),
        &[
            "-c",
            conf.to_str().unwrap(),
            "--access-log",
            access_log.to_str().unwrap(),
        ],
        ProxyOptions {
            stderr: Some(error_log.clone()),
            rust_log: Some("warn,cmux_proxy=debug".into()),
        },
    );
    const WRONG: &str = "wrong-tok-5Zk1-77e0";
    let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(format!("me:{t}"));
    let port_h = format!("X-Cmux-Port-Internal: {}", upstream.port());
    let issued = issued_cookie(&proxy);
    let mut requests = 1;
    for t in [TOKEN, WRONG] {
        let cookie = match t == TOKEN {
            true => issued.clone(),
            false => format!("cmux_token={t}"),
        };
        for header in [
            format!("X-Cmux-Token: {t}"),
            format!("Cookie: a=1; {cookie}"),
        ] {
            let (status, _, _) = curl_full(&["-H", &port_h, "-H", &header, &proxy.url("/echo")]);
            assert_eq!(status, if t == TOKEN { 200 } else { 401 }, "{header}");
            requests += 1;
        }
        let url = proxy.url(&format!("/echo?a=1&cmux_token={t}"));
        let (status, _, _) = curl_full(&["-H", &port_h, &url]);
        assert_eq!(status, if t == TOKEN { 302 } else { 401 });
        requests += 1;
        for auth in [format!("Bearer {t}"), format!("Basic {}", b64(t))] {
            let head = format!(
                "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\nProxy-Authorization: {auth}\r\n\r\nping",
                echo.port()
            );
            let mut s = TcpStream::connect(proxy.addr).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            if t == TOKEN {
                assert!(read_head(&mut s).await.starts_with("HTTP/1.1 200 "));
                s.shutdown().await.unwrap();
                assert_eq!(read_to_end(&mut s).await, b"ping");
            } else {
                let answer = read_until_close(&mut s).await;
                assert!(answer.starts_with(b"HTTP/1.1 407 "), "{auth}");
            }
            requests += 1;
        }
    }
    // Every request is in the access log before it is searched.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = String::new();
    while log.lines().count() < requests {
        assert!(
            Instant::now() < deadline,
            "{requests} lines expected:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        log = std::fs::read_to_string(&access_log).unwrap_or_default();
    }
    drop(proxy);
    let errors = std::fs::read_to_string(&error_log).unwrap_or_default();
    for t in [TOKEN, WRONG] {
        for secret in [t.to_string(), b64(t)] {
            assert!(!log.contains(&secret), "{secret} in the access log:\n{log}");
            assert!(
                !errors.contains(&secret),
                "{secret} in the error log:\n{errors}"
            );
        }
    }
    assert!(
        log.contains("GET /echo?a=1"),
        "the query is logged, less the token:\n{log}"
    );
}
