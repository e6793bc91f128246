//! What a hostile client or local user cannot do: carry the token cookie to another
//! Host, escape the connection limits over h2c, hold the head deadline with an oversized
//! head, turn the token visit into an open redirect, read `?cmux_token=` from the access
//! log, smuggle a body length, or break a graceful hand-over through its socket. Real
//! proxy, real upstreams, curl and raw sockets on loopback.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const TOKEN: &str = "tok-4Hs8-b71e2a90c3d5";

/// A proxy that requires `TOKEN`, with `extra` conf lines and arguments.
fn proxy_with_token(extra: &str, args: &[&str]) -> Proxy {
    proxy_with_token_file(TOKEN, extra, args).0
}

/// One raw request on a new connection; the answer up to the proxy's close.
async fn raw(proxy: &Proxy, request: &[u8]) -> String {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(request).await.unwrap();
    String::from_utf8_lossy(&read_until_close(&mut s).await).to_string()
}

/// The `cmux_token` cookie's `name=value` pair out of a `Set-Cookie` header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn point_2_token_cookie_is_bound_to_the_host_it_was_issued_for() {
    let upstream = Upstream::start().await;
    let proxy = proxy_with_token("", &[]);
    let port_h = format!("X-Cmux-Port-Internal: {}", upstream.port());
    let host = format!("localhost:{}", proxy.addr.port());
    let other_port = format!("localhost:{}", proxy.addr.port() + 1);
    let visit = proxy.url(&format!("/echo?cmux_token={TOKEN}"));
    let (status, head, _) = tokio::task::block_in_place(|| {
        curl_full(&["-H", &port_h, "-H", &format!("Host: {host}"), &visit])
    });
    assert_eq!(status, 302, "{head}");
    let set_cookie = header_values(&head, "set-cookie").join("");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains(TOKEN),
        "the cookie must not hold the token: {set_cookie}"
    );
    let cookie = format!("Cookie: {}", cookie_pair(&set_cookie));
    let with = |host: &str, cookie: &str| {
        let host = format!("Host: {host}");
        let url = proxy.url("/echo");
        tokio::task::block_in_place(|| {
            curl_full(&["-H", &port_h, "-H", &host, "-H", cookie, &url]).0
        })
    };
    assert_eq!(with(&host, &cookie), 200, "the Host it was issued for");
    assert_eq!(with(&other_port, &cookie), 401, "same name, another port");
    assert_eq!(with("evil.localhost", &cookie), 401, "another name");
    let raw_token = format!("Cookie: cmux_token={TOKEN}");
    assert_eq!(with(&host, &raw_token), 401, "the bare token is no cookie");
}

/// Six concurrent streams on one h2c connection, from a client allowed one connection:
/// the first is served, the other five are refused with 503 and `Retry-After`, and the
/// target sees one socket.
#[tokio::test(flavor = "multi_thread")]
async fn point_4_h2c_streams_count_against_the_per_client_limit() {
    let upstream = Upstream::start().await;
    let proxy = proxy_with_conf("  max_connections_per_client: 1\n");
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let mut responses = Vec::new();
    for _ in 0..6 {
        let req = http::Request::get(format!("http://{}/slow?ms=1500", proxy.addr))
            .header("X-Cmux-Port-Internal", upstream.port())
            .body(())
            .unwrap();
        let (response, _) = client.send_request(req, true).unwrap();
        responses.push(response);
        client = client.ready().await.unwrap();
    }
    let mut statuses = Vec::new();
    for response in responses {
        let response = tokio::time::timeout(Duration::from_secs(10), response)
            .await
            .expect("an answer within 10 s")
            .unwrap();
        if response.status() == 503 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        statuses.push(response.status().as_u16());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 503, 503, 503, 503, 503]);
    assert_eq!(
        upstream
            .stats
            .accepted
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one upstream socket for the one connection allowed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn point_5_an_oversized_head_gets_431_within_the_head_timeout() {
    let proxy = proxy_with_conf("  request_head_timeout_ms: 1000\n");
    // 70 KiB of head without its blank line: the client then waits.
    let mut head = b"GET / HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    while head.len() < 70 * 1024 {
        head.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let started = Instant::now();
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(&head).await.unwrap();
    let answer = read_until_close_within(&mut s, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn point_6_token_visit_redirects_only_to_a_same_origin_path() {
    let proxy = proxy_with_token("", &[]);
    for (target, expected) in [
        ("//evil.example/x", "/evil.example/x"),
        ("/\\evil.example/x", "/evil.example/x"),
        ("/%2F%2Fevil.example/x", "/%2F%2Fevil.example/x"),
        ("/ok/x?a=1", "/ok/x?a=1"),
    ] {
        let sep = if target.contains('?') { '&' } else { '?' };
        let request =
            format!("GET {target}{sep}cmux_token={TOKEN} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let answer = raw(&proxy, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 302 "), "{target}: {answer}");
        assert_eq!(
            header_values(&answer, "location"),
            [expected],
            "{target}: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn point_7_query_token_never_reaches_the_access_log_of_a_proxy_without_tokens() {
    let upstream = Upstream::start().await;
    let log = tempdir().join("access.log");
    let conf = write_file(
        "conf.yaml",
        "version: 1\ncmux_proxy:\n  access_log_format: json\n  access_log_query: true\n",
    );
    let proxy = Proxy::start(&[
        "-c",
        conf.to_str().unwrap(),
        "--access-log",
        log.to_str().unwrap(),
    ]);
    let port_h = format!("X-Cmux-Port-Internal: {}", upstream.port());
    let url = proxy.url(&format!("/echo?a=1&cmux_token={TOKEN}&b=2"));
    let (status, _, _) = tokio::task::block_in_place(|| curl_full(&["-H", &port_h, &url]));
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains('\n') {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(text.contains("/echo?a=1&b=2"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn point_11_a_repeated_content_length_is_refused_or_normalised() {
    let upstream = Upstream::start().await;
    let proxy = proxy_with_conf("");
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {}\r\nContent-Length: 3, 3\r\nConnection: close\r\n\r\nabc",
        upstream.port()
    );
    let answer = raw(&proxy, request.as_bytes()).await;
    let status: u16 = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    match status {
        400 => {}
        200 => {
            // Normalised: the target saw one Content-Length of 3 and the body.
            let lower = answer.to_ascii_lowercase();
            assert!(
                lower.contains("content-length: 3\n") || lower.contains("content-length: 3\r"),
                "{answer}"
            );
            assert!(!lower.contains("content-length: 3, 3"), "{answer}");
        }
        _ => panic!("neither refused nor normalised: {answer}"),
    }
}

/// A local process that connects to the upgrade socket first and sends garbage makes the
/// new process fail with a message and exit code, not a panic.
#[test]
fn point_9_a_garbage_handover_is_an_error_not_a_panic() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let dir = tempdir();
    let sock = dir.join("upgrade.sock");
    let port = free_port();
    let conf = dir.join("conf.yaml");
    std::fs::write(
        &conf,
        format!(
            "version: 1\nthreads: 1\nupgrade_sock: {}\npid_file: {}\ncmux_proxy:\n  listen: [\"127.0.0.1:{port}\"]\n  admin_listen: \"127.0.0.1:{}\"\n",
            sock.display(),
            dir.join("pid").display(),
            free_port()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(PROXY_BIN);
    without_cmux_env(&mut cmd)
        .args(["-c", conf.to_str().unwrap(), "-u"])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        if let Ok(c) = UnixStream::connect(&sock) {
            break c;
        }
        assert!(Instant::now() < deadline, "no upgrade socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    conn.write_all(b"0.0.0.0:1 garbage").unwrap();
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the new process did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("hand-over"), "{err}");
    assert_eq!(status.code(), Some(1), "{err}");
}
