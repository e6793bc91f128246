//! Errors: every error the proxy itself produces is a complete response that says what was
//! wrong, and the listener keeps serving good requests afterwards. By theme: bad routing
//! input (400), a target that fails (502, 504) and the explanation of a refused port, loops
//! (508), malformed and slow clients, and clients that leave or pipeline. Waiting for a port
//! that opens later is in `wait_for_port.rs`.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Asserts a response is a complete error: status, text body, length matching.
fn assert_error(status: u16, head: &str, body: &[u8], want: u16, needle: &str) {
    assert_eq!(status, want, "{head}");
    assert_eq!(
        header_values(head, "content-type"),
        vec!["text/plain; charset=utf-8"],
        "{head}"
    );
    assert_eq!(
        header_values(head, "content-length"),
        vec![body.len().to_string()]
    );
    let text = String::from_utf8_lossy(body);
    assert_eq!(text.lines().count(), 1, "one line: {text:?}");
    assert!(text.contains(needle), "{needle:?} not in {text:?}");
}

/// [`assert_error`] on a whole raw reply (head and body, as read until the close).
fn assert_error_reply(reply: &[u8], want: u16, needle: &str) {
    let reply = String::from_utf8_lossy(reply);
    let (head, body) = reply.split_once("\r\n\r\n").expect("a response head");
    let status: u16 = head[9..12].parse().expect("a status code");
    assert_error(status, head, body.as_bytes(), want, needle);
}

/// Sends raw bytes on a new connection and returns what came back before the close,
/// which must come within 10 s.
async fn raw_exchange(proxy: &Proxy, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    String::from_utf8_lossy(&read_until_close(&mut s).await).to_string()
}

/// A `Connection: close` GET of `path` to the upstream on `port`, as raw bytes.
fn get_closing(path: &str, port: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {port}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------------------
// Bad routing input and bad request lines: 400

#[tokio::test(flavor = "multi_thread")]
async fn bad_port_values_get_400_naming_the_header() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let url = proxy.url("/echo");
    let cases: Vec<Vec<String>> = vec![
        vec![],
        vec!["X-Cmux-Port-Internal: 0".into()],
        vec!["X-Cmux-Port-Internal: 65536".into()],
        vec!["X-Cmux-Port-Internal: 99999999999999999999".into()],
        vec!["X-Cmux-Port-Internal: -1".into()],
        vec!["X-Cmux-Port-Internal: +80".into()],
        vec!["X-Cmux-Port-Internal: 80a".into()],
        vec!["X-Cmux-Port-Internal: 0x50".into()],
        vec!["X-Cmux-Port-Internal: 8 0".into()],
        vec!["X-Cmux-Port-Internal;".into()], // curl: empty value
        vec![
            "X-Cmux-Port-Internal: 3000".into(),
            "X-Cmux-Port-Internal: 3001".into(),
        ],
    ];
    for headers in cases {
        let mut args: Vec<String> = Vec::new();
        for h in &headers {
            args.push("-H".into());
            args.push(h.clone());
        }
        args.push(url.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, head, body) = tokio::task::block_in_place(|| curl_full(&args));
        assert_error(status, &head, &body, 400, "X-Cmux-Port-Internal");
    }
    // Leading zeros and surrounding blanks are fine, and so are repeated equal values.
    for value in ["00", "  "] {
        let h = format!("X-Cmux-Port-Internal: {value}{}", up.port());
        let (status, _, _) = tokio::task::block_in_place(|| curl_full(&["-H", &h, "-H", &h, &url]));
        assert_eq!(status, 200, "{h}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_workspace_names_get_400() {
    let proxy = Proxy::start(&[]);
    for name in [
        "workspace-0",
        "workspace-65536",
        "bad name!",
        "/root/",
        "ws\u{e9}",
    ] {
        let (status, head, body) = tokio::task::block_in_place(|| {
            curl_full(&[
                "-H",
                "X-Cmux-Port-Internal: 3000",
                "-H",
                &format!("X-Cmux-Workspace-Internal: {name}"),
                &proxy.url("/"),
            ])
        });
        assert_error(status, &head, &body, 400, "workspace");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_targets_with_control_characters_or_spaces_get_400() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    for target in ["/a\x00b", "/a\x01b", "/a b", "/a\x7f"] {
        let answer = raw_exchange(&proxy, &get_closing(target, &upstream.port())).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{target:?}: {answer}");
        assert!(answer.contains("invalid request target"), "{answer}");
    }
    assert_eq!(
        upstream
            .stats
            .accepted
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

// ---------------------------------------------------------------------------------------
// A target that fails: 502 and 504, and what a refused port's 502 explains

#[tokio::test(flavor = "multi_thread")]
async fn refused_port_gets_502_naming_host_port_and_workspace() {
    let proxy = Proxy::start(&[]);
    let port = free_port();
    let (status, head, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {port}"),
            "-H",
            "X-Cmux-Workspace-Internal: workspace-9",
            &proxy.url("/"),
        ])
    });
    assert_error(
        status,
        &head,
        &body,
        502,
        &format!("127.18.0.9:{port} (workspace-9)"),
    );
    // The JSON form carries the same facts.
    let (status, head, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {port}"),
            "-H",
            "Accept: application/json",
            &proxy.url("/"),
        ])
    });
    assert_eq!(status, 502);
    assert_eq!(
        header_values(&head, "content-type"),
        vec!["application/json"]
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "port_closed");
    assert_eq!(v["status"], 502);
    assert_eq!(v["target"], format!("127.0.0.1:{port}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_workspace_port_explains_servers_outside_the_workspace() {
    let proxy = Proxy::start(&["--wait-for-port-ms", "0"]);
    // A dev server bound to [::1] and one bound to 127.0.0.1, both outside workspace-41
    // (the [::1] one only where the host has an IPv6 loopback).
    let v6 = if have_ipv6_loopback() {
        Some(std::net::TcpListener::bind("[::1]:0").unwrap())
    } else {
        skip("errors: refused_workspace_port_explains_servers_outside_the_workspace: no IPv6 loopback (::1), the [::1] server left out");
        None
    };
    let port = v6
        .as_ref()
        .map_or_else(free_port, |l| l.local_addr().unwrap().port());
    let v4 = std::net::TcpListener::bind(("127.0.0.1", port)).ok();
    assert!(
        v6.is_some() || v4.is_some(),
        "no server outside the workspace"
    );
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
                if v6.is_some() {
                    assert!(
                        listeners.contains(&format!("[::1]:{port}")),
                        "{listeners:?}"
                    );
                }
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
                if v6.is_some() {
                    assert!(text.contains(&format!("[::1]:{port}")), "{text}");
                }
                if v4.is_some() {
                    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
                }
                assert!(text.contains("outside the workspace"), "{text}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_502_explanation_sees_a_server_started_just_before() {
    let proxy = Proxy::start(&[]);
    let port = free_port().to_string();
    let ask = || {
        let header = format!("X-Cmux-Port-Internal: {port}");
        let (status, _, body) = curl_full(&[
            "-H",
            &header,
            "-H",
            "X-Cmux-Workspace-Internal: workspace-31",
            "-H",
            "X-Cmux-Wait-Ms: 0",
            "-H",
            "Accept: application/json",
            &proxy.url("/"),
        ]);
        (status, String::from_utf8_lossy(&body).to_string())
    };
    let (status, body) = ask();
    assert_eq!(status, 502);
    assert!(body.contains("\"listeners\":[]"), "{body}");
    let server = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (status, body) = ask();
    assert_eq!(status, 502);
    let addr = server.local_addr().unwrap().to_string();
    assert!(
        body.contains(&format!("\"listeners\":[\"{addr}\"]")),
        "{body}"
    );
    assert!(body.contains("outside the workspace"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_timeout_gets_504_for_http_and_connect() {
    let (addr, _fillers, _listener) = unanswering_target("127.0.0.1:0".parse().unwrap()).await;
    let proxy = Proxy::start(&["--connect-timeout-ms", "500"]);
    let start = Instant::now();
    let (status, head, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", addr.port()),
            &proxy.url("/"),
        ])
    });
    assert_error(status, &head, &body, 504, &addr.to_string());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        format!(
            "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\n\r\n",
            addr.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let reply = String::from_utf8(read_to_end(&mut s).await).unwrap();
    assert!(reply.starts_with("HTTP/1.1 504 "), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_that_closes_or_sends_garbage_gets_502() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    for path in ["/close", "/garbage"] {
        let (status, head, body) = tokio::task::block_in_place(|| {
            curl_full(&[
                "-H",
                &format!("X-Cmux-Port-Internal: {}", up.port()),
                &proxy.url(path),
            ])
        });
        assert_error(status, &head, &body, 502, &up.addr.to_string());
    }
}

/// A port in `h2c_ports` is spoken to in h2c: an HTTP/1.1-only target there cannot
/// answer (502 upstream_closed), while the same target elsewhere is served.
#[tokio::test(flavor = "multi_thread")]
async fn h2c_ports_are_spoken_to_in_http2() {
    let up = Upstream::start().await;
    let dir = tempdir();
    let conf = dir.join("cmux.yaml");
    let text = format!(
        "version: 1\ncmux_proxy:\n  h2c_ports: [\"{}\"]\n",
        up.port()
    );
    std::fs::write(&conf, text).unwrap();
    let proxy = Proxy::start(&["-c", conf.to_str().unwrap()]);
    let port = format!("X-Cmux-Port-Internal: {}", up.port());
    let (status, head, body) =
        tokio::task::block_in_place(|| curl_full(&["-H", &port, &proxy.url("/echo")]));
    assert_error(status, &head, &body, 502, "before a response head");
    let (status, _, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &port,
            "-H",
            "X-Cmux-Upstream-Protocol: http/1.1",
            &proxy.url("/echo"),
        ])
    });
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------
// Loops: 508

/// Requests whose target is the proxy itself, named by the port header or by the
/// `.localhost` Host form, and requests that already passed through it (its `Via`
/// entry): 508 `loop_detected`, every one.
#[tokio::test(flavor = "multi_thread")]
async fn requests_that_would_loop_get_508() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    // A proxy listening on workspace-201's address, so that the workspace forms name it.
    let ws_port = free_port();
    let in_ws = Proxy::start_at(format!("127.18.0.201:{ws_port}").parse().unwrap(), &[]);
    for (proxy, headers) in [
        (
            &proxy,
            vec![format!("X-Cmux-Port-Internal: {}", proxy.addr.port())],
        ),
        (
            &in_ws,
            vec![
                format!("X-Cmux-Port-Internal: {ws_port}"),
                "X-Cmux-Workspace-Internal: workspace-201".to_string(),
            ],
        ),
        (
            &in_ws,
            vec![format!("Host: workspace-201-{ws_port}.localhost")],
        ),
    ] {
        let mut args: Vec<String> = Vec::new();
        for h in &headers {
            args.extend(["-H".to_string(), h.clone()]);
        }
        args.extend(["-H".to_string(), "Accept: application/json".to_string()]);
        args.push(proxy.url("/"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, _, body) = tokio::task::block_in_place(|| curl_full(&args));
        assert_eq!(
            status,
            508,
            "{headers:?}: {}",
            String::from_utf8_lossy(&body)
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "loop_detected", "{headers:?}");
    }
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

// ---------------------------------------------------------------------------------------
// Malformed and slow clients

/// Lines ended by LF alone (`printf 'GET / HTTP/1.1\n...\n\n' | nc`) are a request that is
/// served at once, CONNECT included, not a wait for the 30 s head timeout.
#[tokio::test(flavor = "multi_thread")]
async fn bare_lf_line_ends_are_served_at_once() {
    let up = Upstream::start().await;
    let echo = tcp_echo().await;
    let proxy = Proxy::start(&[]);
    let started = Instant::now();
    let reply = raw_exchange(
        &proxy,
        format!(
            "GET /echo HTTP/1.1\nHost: localhost\nX-Cmux-Port-Internal: {}\nConnection: close\n\n",
            up.port()
        )
        .as_bytes(),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply:?}");
    assert!(reply.contains("\r\n\r\nGET /echo\n"), "{reply:?}");

    let mut tunnel = TcpStream::connect(proxy.addr).await.unwrap();
    tunnel
        .write_all(
            format!(
                "CONNECT x:1 HTTP/1.1\nX-Cmux-Port-Internal: {}\n\nping",
                echo.port()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    assert!(read_head(&mut tunnel).await.starts_with("HTTP/1.1 200"));
    let mut echoed = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), tunnel.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(&echoed, b"ping");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// HTTP/2 with prior knowledge is served only as a connection's first bytes: a preface
/// after an HTTP/1.1 request on the same connection gets HTTP/2's own refusal, the server
/// preface then GOAWAY with HTTP_1_1_REQUIRED and the reason, at once.
#[tokio::test(flavor = "multi_thread")]
async fn http2_preface_after_an_http1_request_gets_goaway_http_1_1_required() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let get = format!(
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {}\r\n\r\n",
        up.port()
    );
    s.write_all(get.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let len: usize = header_values(&head, "content-length")[0].parse().unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    // The client preface and an empty SETTINGS frame.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), read_until_close(&mut s))
        .await
        .expect("answered and closed at once");
    assert_eq!(
        &reply[..9],
        b"\0\0\0\x04\0\0\0\0\0",
        "SETTINGS first: {reply:?}"
    );
    let goaway = &reply[9..];
    assert_eq!(goaway[3], 0x7, "then GOAWAY: {reply:?}");
    assert_eq!(&goaway[13..17], &[0, 0, 0, 0xd], "HTTP_1_1_REQUIRED");
    let why = String::from_utf8_lossy(&goaway[17..]);
    assert_eq!(
        why,
        "HTTP/2 is served only from a connection's first bytes (prior knowledge); \
         open a new connection for HTTP/2"
    );
}

/// Bad input gets a 4xx or a close, never a 2xx and never a hang: every answer (and its
/// close) must come within `read_until_close`'s bound. A head that never ends (a bare
/// `GET`) is answered 408 at the head timeout, here 1 s instead of the default 30 s.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_never_take_the_listener_down() {
    let up = Upstream::start().await;
    let dir = tempdir();
    let conf = dir.join("conf.yaml");
    std::fs::write(
        &conf,
        "version: 1\ncmux_proxy:\n  request_head_timeout_ms: 1000\n",
    )
    .unwrap();
    let proxy = Proxy::start(&["-c", conf.to_str().unwrap()]);
    let long_line = format!(
        "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(200_000)
    );
    let huge_headers = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
        format!("X-Big: {}\r\n", "b".repeat(8000)).repeat(200)
    );
    let bad: Vec<Vec<u8>> = vec![
        b"garbage garbage garbage\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), // a TLS ClientHello start
        b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header Line\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n".to_vec(),
        b"GET".to_vec(),
        long_line.into_bytes(),
        huge_headers.into_bytes(),
    ];
    for bytes in &bad {
        let started = Instant::now();
        let reply = raw_exchange(&proxy, bytes).await;
        let what = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).to_string();
        // Either a 4xx or a plain close: never a 2xx; a hang fails in raw_exchange.
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
            "{what:?} -> {reply:?}"
        );
        if bytes == b"GET" {
            assert!(reply.starts_with("HTTP/1.1 408 "), "{what:?} -> {reply:?}");
            assert!(
                started.elapsed() >= Duration::from_millis(900),
                "{what:?}: 408 after {:?}, before the head timeout",
                started.elapsed()
            );
        }
        let (status, _, _) = tokio::task::block_in_place(|| {
            curl_full(&[
                "-H",
                &format!("X-Cmux-Port-Internal: {}", up.port()),
                &proxy.url("/echo"),
            ])
        });
        assert_eq!(status, 200, "good request after bad input");
    }
}

/// An `https://` URL aimed at the proxy: the TLS handshake is answered at once with a
/// 400 that says so, instead of waiting out the 30 s head timeout; curl fails fast.
#[tokio::test(flavor = "multi_thread")]
async fn tls_handshake_gets_a_prompt_400() {
    let proxy = Proxy::start(&[]);
    let mut raw = TcpStream::connect(proxy.addr).await.unwrap();
    raw.write_all(&[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00])
        .await
        .unwrap();
    let started = Instant::now();
    assert_error_reply(
        &read_until_close(&mut raw).await,
        400,
        "not an HTTP request: a TLS handshake; this listener speaks plain HTTP",
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let started = Instant::now();
    let out = tokio::task::block_in_place(|| {
        curl(&[
            "-sk",
            "--max-time",
            "20",
            &format!("https://{}/", proxy.addr),
        ])
    });
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "curl failed after {:?}",
        started.elapsed()
    );
}

/// A chunked body with a bad chunk size: 400 with a body that says what broke, and the
/// target is not blamed.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_chunked_body_gets_400_saying_so() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        format!(
            "POST /upload HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {}\r\n\
             Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            up.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert_error_reply(
        &read_until_close(&mut s).await,
        400,
        "malformed request body: Invalid chunked encoding",
    );
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

// ---------------------------------------------------------------------------------------
// Clients that leave or pipeline

#[tokio::test(flavor = "multi_thread")]
async fn client_that_disappears_mid_download_leaves_others_served() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    for _ in 0..5 {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(
            format!(
                "GET /download/{} HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {}\r\n\r\n",
                64 << 20,
                up.port()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = [0u8; 65536];
        let _ = s.read(&mut buf).await;
        drop(s);
    }
    let (status, _, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", up.port()),
            &proxy.url("/download/1000"),
        ])
    });
    assert_eq!(status, 200);
    assert_eq!(body, pattern(1000));
}

/// pingora does not serve pipelined requests. What a pipelining client gets, as the
/// README says: requests sent together in one write get the first answered in full and
/// then a close; a request sent while the previous one is in flight gets a close with
/// no answer, never an error blaming the target. Either way the client retries what
/// was not answered (RFC 9112 section 9.3.2), and the proxy serves on.
#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_get_an_answer_or_a_close_never_a_wrong_error() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let get = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {}\r\n\r\n",
            up.port()
        )
    };

    let mut together = TcpStream::connect(proxy.addr).await.unwrap();
    let batch = [get("/echo?n=1"), get("/echo?n=2"), get("/echo?n=3")].concat();
    together.write_all(batch.as_bytes()).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_close(&mut together).await).to_string();
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("GET /echo?n=1"), "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert_eq!(
        header_values(head, "content-length"),
        vec![body.len().to_string()],
        "the first answer is complete"
    );

    let mut early = TcpStream::connect(proxy.addr).await.unwrap();
    early.write_all(get("/slow").as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    early.write_all(get("/echo").as_bytes()).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_close(&mut early).await).to_string();
    assert!(
        answer.is_empty() || (answer.starts_with("HTTP/1.1 200 ") && !answer.contains(" 502 ")),
        "{answer}"
    );

    let (status, _, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", up.port()),
            &proxy.url("/echo"),
        ])
    });
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("GET /echo"));
}
