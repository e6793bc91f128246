//! HTTP/2 in plaintext (h2c, prior knowledge) on the same listener as HTTP/1.1 and
//! CONNECT, with `curl --http2-prior-knowledge` as the client: the same routing,
//! forwarding headers, host override, wait for a port and error contract as HTTP/1.1,
//! and gRPC statuses for the proxy's own errors of a gRPC request. (gRPC end to end,
//! with a real gRPC library on both sides, is `e2e/grpc_e2e.py`.)

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// curl over h2c with prior knowledge: (status, head, body).
fn h2(args: &[&str]) -> (u16, String, Vec<u8>) {
    let mut all = vec!["--http2-prior-knowledge"];
    all.extend_from_slice(args);
    tokio::task::block_in_place(|| curl_full(&all))
}

fn port_of(up: &Upstream) -> String {
    format!("X-Cmux-Port-Internal: {}", up.port())
}

/// The value of header `name` in an `/echo` body (names as the target received them).
fn echoed(body: &[u8], name: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let head = text.split("\n\n").next().unwrap_or("");
    head.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_is_routed_by_headers_and_by_localhost_authority() {
    let up = Upstream::start_on("127.18.0.7".parse().unwrap()).await;
    let proxy = Proxy::start(&[]);
    let (status, head, body) = h2(&[
        "-H",
        &port_of(&up),
        "-H",
        "X-Cmux-Workspace-Internal: workspace-7",
        "-H",
        "X-Cmux-Wait-Ms: 100",
        &proxy.url("/echo?a=1"),
    ]);
    assert_eq!(status, 200, "{head}");
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("GET /echo?a=1\n"), "{text}");
    // The forwarding-header rules of HTTP/1.1: the steering headers never reach the
    // target; the client's authority is both Host and X-Forwarded-Host.
    for gone in [
        "x-cmux-port-internal",
        "x-cmux-workspace-internal",
        "x-cmux-wait-ms",
    ] {
        assert!(echoed(&body, gone).is_empty(), "{gone} forwarded: {text}");
    }
    let authority = proxy.addr.to_string();
    assert_eq!(echoed(&body, "host"), vec![authority.clone()], "{text}");
    assert_eq!(echoed(&body, "x-forwarded-host"), vec![authority], "{text}");
    assert_eq!(
        echoed(&body, "x-forwarded-for"),
        vec!["127.0.0.1"],
        "{text}"
    );
    assert_eq!(echoed(&body, "x-forwarded-proto"), vec!["http"], "{text}");
    assert!(echoed(&body, "via")[0].contains("cmux-proxy"), "{text}");

    // `:authority` in the `<workspace>-<port>.localhost` form.
    let name = format!("workspace-7-{}.localhost", up.port());
    let resolve = format!("{name}:{}:127.0.0.1", proxy.addr.port());
    let url = format!("http://{name}:{}/echo", proxy.addr.port());
    let (status, head, body) = h2(&["--resolve", &resolve, &url]);
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header_values(&head, "x-upstream"),
        vec![up.addr.to_string()]
    );
    let text = String::from_utf8_lossy(&body);
    assert_eq!(
        echoed(&body, "host"),
        vec![format!("{name}:{}", proxy.addr.port())],
        "{text}"
    );
}

/// A loopback redirect is rewritten to the origin an HTTP/2 client used (its
/// `:authority`), as for HTTP/1.1.
#[tokio::test(flavor = "multi_thread")]
async fn h2c_loopback_redirects_go_to_the_clients_origin() {
    let up = Upstream::start_on("127.18.0.7".parse().unwrap()).await;
    let proxy = Proxy::start(&[]);
    let name = format!("workspace-7-{}.localhost", up.port());
    let resolve = format!("{name}:{}:127.0.0.1", proxy.addr.port());
    let url = format!(
        "http://{name}:{}/redirect?to=http://localhost:{}/next",
        proxy.addr.port(),
        up.port()
    );
    let (status, head, _) = h2(&["--resolve", &resolve, &url]);
    assert_eq!(status, 302, "{head}");
    assert_eq!(
        header_values(&head, "location"),
        vec![format!("http://{name}:{}/next", proxy.addr.port())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_bodies_pass_both_ways() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let dir = tempdir();
    let file = dir.join("body");
    let data = pattern(3 << 20);
    std::fs::write(&file, &data).unwrap();
    let upload = format!("@{}", file.display());
    let (status, _, body) = h2(&[
        "-H",
        &port_of(&up),
        "--data-binary",
        &upload,
        &proxy.url("/upload"),
    ]);
    assert_eq!(status, 200);
    let want = format!("{} {}", data.len(), sha256_hex(&data));
    assert_eq!(String::from_utf8_lossy(&body), want);
    let (status, _, body) = h2(&["-H", &port_of(&up), &proxy.url("/download/5000000")]);
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern(5_000_000)));

    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_errors_follow_the_contract() {
    let proxy = Proxy::start(&[]);
    let closed = free_port();
    let port = format!("X-Cmux-Port-Internal: {closed}");
    let no_wait = "X-Cmux-Wait-Ms: 0";
    let (status, head, body) = h2(&["-H", &port, "-H", no_wait, &proxy.url("/")]);
    assert_eq!(status, 502, "{head}");
    assert_eq!(
        header_values(&head, "content-type"),
        vec!["text/plain; charset=utf-8"]
    );
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.starts_with(&format!("nothing listens on 127.0.0.1:{closed}")),
        "{text}"
    );
    let (status, head, body) = h2(&[
        "-H",
        &port,
        "-H",
        no_wait,
        "-H",
        "Accept: application/json",
        &proxy.url("/"),
    ]);
    assert_eq!(status, 502, "{head}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "port_closed");
    let (status, _, body) = h2(&["-H", "X-Cmux-Port-Internal: nope", &proxy.url("/")]);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("X-Cmux-Port-Internal"));
    let (status, _, _) = h2(&[
        "-H",
        &port,
        "-H",
        "X-Cmux-Upstream-Protocol: h3",
        &proxy.url("/"),
    ]);
    assert_eq!(status, 400);
}

/// The error table, as a gRPC client gets it: HTTP 200, `application/grpc`, and the
/// status and message in one header block that ends the stream (Trailers-Only).
#[tokio::test(flavor = "multi_thread")]
async fn grpc_requests_get_grpc_statuses() {
    let proxy = Proxy::start(&[]);
    let closed = free_port();
    let grpc = |headers: &[&str]| {
        let mut args = vec![
            "-H",
            "Content-Type: application/grpc",
            "-H",
            "TE: trailers",
            "--data-binary",
            "",
        ];
        for h in headers {
            args.extend_from_slice(&["-H", h]);
        }
        let url = proxy.url("/pkg.Service/Method");
        args.push(&url);
        let (status, head, body) = h2(&args);
        assert_eq!(status, 200, "{head}");
        assert!(body.is_empty(), "{head}");
        assert_eq!(
            header_values(&head, "content-type"),
            vec!["application/grpc"]
        );
        let one = |name| header_values(&head, name).join(",");
        (one("grpc-status"), one("grpc-message"), one("x-cmux-error"))
    };
    let port = format!("X-Cmux-Port-Internal: {closed}");
    let (code, message, error) = grpc(&[&port, "X-Cmux-Wait-Ms: 0"]);
    assert_eq!((code.as_str(), error.as_str()), ("14", "port_closed"));
    // The 502's message, percent-encoded as gRPC does (here only the `%` is).
    let (_, _, text) = tokio::task::block_in_place(|| {
        curl_full(&["-H", &port, "-H", "X-Cmux-Wait-Ms: 0", &proxy.url("/")])
    });
    let text = String::from_utf8(text).unwrap();
    assert_eq!(message, text.trim_end().replace('%', "%25"));
    let (code, _, error) = grpc(&["X-Cmux-Port-Internal: 0x50"]);
    assert_eq!((code.as_str(), error.as_str()), ("3", "bad_port"));
    let (code, _, _) = grpc(&[]);
    assert_eq!(code, "3", "no routing header");
    let own = format!("X-Cmux-Port-Internal: {}", proxy.addr.port());
    let (code, _, error) = grpc(&[&own]);
    assert_eq!((code.as_str(), error.as_str()), ("9", "loop_detected"));
    let (code, _, _) = grpc(&[&port, "X-Cmux-Host-Override: a b"]);
    assert_eq!(code, "3", "bad host override");

    // gRPC over HTTP/1.1 (not a real gRPC transport, but the same rule): the status in
    // the headers of an empty answer.
    let (status, head, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            "Content-Type: application/grpc+proto",
            "-H",
            &port,
            "-H",
            "X-Cmux-Wait-Ms: 0",
            &proxy.url("/pkg.Service/Method"),
        ])
    });
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty());
    assert_eq!(header_values(&head, "grpc-status"), vec!["14"]);
    // gRPC-Web is not gRPC: its errors are the usual bodies.
    let (status, _, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            "Content-Type: application/grpc-web+proto",
            "-H",
            &port,
            "-H",
            "X-Cmux-Wait-Ms: 0",
            &proxy.url("/"),
        ])
    });
    assert_eq!(status, 502);
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_connect_timeout_is_deadline_exceeded_and_tokens_unauthenticated() {
    let dir = tempdir();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "tok-1\n").unwrap();
    let proxy = Proxy::start(&[
        "--connect-timeout-ms",
        "400",
        "--auth-token-file",
        tokens.to_str().unwrap(),
    ]);
    // A listener whose accept queue is full: SYNs go unanswered.
    let (addr, fillers, _listener) = unanswering_target("127.0.0.1:0".parse().unwrap()).await;
    let port = format!("X-Cmux-Port-Internal: {}", addr.port());
    let grpc = ["-H", "Content-Type: application/grpc", "-d", ""];
    let (status, head, _) = h2(&[&grpc[..], &["-H", &port, &proxy.url("/s/M")]].concat());
    assert_eq!(status, 200);
    assert_eq!(header_values(&head, "grpc-status"), vec!["16"], "{head}");
    let started = Instant::now();
    let (status, head, _) = h2(&[
        &grpc[..],
        &["-H", "X-Cmux-Token: tok-1", "-H", &port, &proxy.url("/s/M")],
    ]
    .concat());
    assert_eq!(status, 200);
    assert_eq!(header_values(&head, "grpc-status"), vec!["4"], "{head}");
    assert!(
        header_values(&head, "grpc-message")[0].starts_with("timed out connecting to"),
        "{head}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(fillers);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_waits_for_a_port_and_applies_the_host_override() {
    let port = free_port();
    let proxy = Proxy::start(&[]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let opener = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        Upstream::start_at(addr).await
    });
    let (status, head, body) = h2(&[
        "-H",
        &format!("X-Cmux-Port-Internal: {port}"),
        "-H",
        "X-Cmux-Wait-Ms: 5000",
        "-H",
        "X-Cmux-Host-Override: localhost:5173",
        "-H",
        "Origin: http://preview.test",
        &proxy.url("/echo"),
    ]);
    let _up = opener.await.unwrap();
    assert_eq!(status, 200, "{head}");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(echoed(&body, "host"), vec!["localhost:5173"], "{text}");
    assert_eq!(
        echoed(&body, "x-forwarded-host"),
        vec![proxy.addr.to_string()],
        "{text}"
    );
    assert!(echoed(&body, "x-cmux-host-override").is_empty(), "{text}");
}

/// `Upgrade: h2c` on an HTTP/1.1 request is ignored: the request is served in HTTP/1.1,
/// and neither `Upgrade` nor `HTTP2-Settings` reaches the target.
#[tokio::test(flavor = "multi_thread")]
async fn upgrade_h2c_is_served_as_http1() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let (status, head, body) = tokio::task::block_in_place(|| {
        curl_full(&["--http2", "-H", &port_of(&up), &proxy.url("/echo")])
    });
    assert_eq!(status, 200, "{head}");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let text = String::from_utf8_lossy(&body);
    assert!(echoed(&body, "upgrade").is_empty(), "{text}");
    assert!(echoed(&body, "http2-settings").is_empty(), "{text}");
}

/// h2c, HTTP/1.1, WebSocket-free CONNECT: one listener, at the same time.
#[tokio::test(flavor = "multi_thread")]
async fn h2c_http1_and_connect_share_the_listener() {
    let up = Upstream::start().await;
    let echo = tcp_echo().await;
    let proxy = Proxy::start(&[]);
    // An h2c connection held open (a preface and SETTINGS, no stream yet).
    let mut held = TcpStream::connect(proxy.addr).await.unwrap();
    held.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut first = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), held.read_exact(&mut first))
        .await
        .expect("server preface in time")
        .unwrap();
    assert_eq!(first[3], 0x4, "SETTINGS first: {first:?}");

    let (status, _, _) =
        tokio::task::block_in_place(|| curl_full(&["-H", &port_of(&up), &proxy.url("/echo")]));
    assert_eq!(status, 200);
    let (status, _, _) = h2(&["-H", &port_of(&up), &proxy.url("/echo")]);
    assert_eq!(status, 200);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let connect = format!(
        "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\n\r\nping",
        echo.port()
    );
    s.write_all(connect.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut echoed = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(&echoed, b"ping");
}

/// A client that sends half an HTTP/2 preface and stops is closed after the head
/// timeout, as a slow HTTP/1.1 head is.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_h2c_handshake_is_closed() {
    let dir = tempdir();
    let conf = dir.join("cmux.yaml");
    std::fs::write(
        &conf,
        "version: 1\ncmux_proxy:\n  request_head_timeout_ms: 500\n",
    )
    .unwrap();
    let proxy = Proxy::start(&["-c", conf.to_str().unwrap()]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(5), read_until_close(&mut s))
        .await
        .expect("closed in time");
    assert!(started.elapsed() < Duration::from_secs(3));
    let _ = std::fs::remove_dir_all(dir);
}
