//! Plain HTTP through the proxy: routing, forwarded headers, streaming bodies, pooling.

mod common;

use common::*;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn body_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_are_routed_by_port_header() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let port = format!("X-Cmux-Port-Internal: {}", up.port());
    for method in ["GET", "POST", "PUT", "DELETE"] {
        let (status, head, body) = tokio::task::block_in_place(|| {
            curl_full(&[
                "-X",
                method,
                "-H",
                &port,
                "--data-binary",
                "payload-bytes",
                &proxy.url("/echo?q=1&r=2"),
            ])
        });
        assert_eq!(status, 200, "{method}: {head}");
        let text = body_text(&body);
        assert!(
            text.starts_with(&format!("{method} /echo?q=1&r=2\n")),
            "{method}: {text}"
        );
        assert!(text.ends_with("\n\npayload-bytes"), "{method}: {text}");
        assert_eq!(
            header_values(&head, "x-upstream"),
            vec![up.addr.to_string()]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_headers_are_removed_and_forwarded_headers_set() {
    // Both routing headers are sent (the workspace one names where the upstream is), so
    // that their absence upstream means they were removed.
    let up = Upstream::start_on("127.18.0.7".parse().unwrap()).await;
    let proxy = Proxy::start(&[]);
    let (status, _, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("x-cmux-PORT-internal: {}", up.port()),
            "-H",
            "X-Cmux-WORKSPACE-Internal: workspace-7",
            "-H",
            "X-Forwarded-For: 203.0.113.9",
            "-H",
            "X-Custom: one",
            "-H",
            "X-Custom: two",
            "-H",
            "Connection: keep-alive, X-Drop-Me",
            "-H",
            "X-Drop-Me: secret",
            "-H",
            "Keep-Alive: timeout=5",
            "-H",
            "Proxy-Authorization: Basic Zm9vOmJhcg==",
            "-H",
            "TE: trailers",
            &proxy.url("/echo"),
        ])
    });
    assert_eq!(status, 200);
    let text = body_text(&body).to_ascii_lowercase();
    assert!(text.starts_with("get /echo\n"), "{text}");
    assert!(!text.contains("x-cmux-port-internal"), "{text}");
    assert!(!text.contains("x-cmux-workspace-internal"), "{text}");
    assert!(
        text.contains("x-forwarded-for: 203.0.113.9, 127.0.0.1\n"),
        "{text}"
    );
    assert!(text.contains("x-forwarded-proto: http\n"), "{text}");
    assert!(
        text.contains(&format!("x-forwarded-host: {}\n", proxy.addr)),
        "{text}"
    );
    assert!(
        text.contains(&format!("host: {}\n", proxy.addr)),
        "Host kept as sent: {text}"
    );
    let custom = text.find("x-custom: one\n").expect("first value");
    let second = text.find("x-custom: two\n").expect("second value");
    assert!(custom < second, "order kept: {text}");
    for hop in [
        "x-drop-me",
        "keep-alive",
        "proxy-authorization",
        "\nte:",
        "connection:",
    ] {
        assert!(!text.contains(hop), "{hop} leaked upstream: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_response_headers_are_kept_and_hop_by_hop_dropped() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let (status, head, _) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", up.port()),
            &proxy.url("/cookies"),
        ])
    });
    assert_eq!(status, 200);
    assert_eq!(
        header_values(&head, "set-cookie"),
        vec!["a=1; Path=/", "b=2; Path=/"]
    );
    assert_eq!(header_values(&head, "x-end-to-end"), vec!["kept"]);
    for hop in ["keep-alive", "x-hop-secret", "proxy-authenticate"] {
        assert!(header_values(&head, hop).is_empty(), "{hop} leaked: {head}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_routing_numeric_and_hashed() {
    // Any 127/8 address binds on Linux without setup.
    let ws7 = Upstream::start_on("127.18.0.7".parse().unwrap()).await;
    let hashed = Upstream::start_on("127.18.64.9".parse().unwrap()).await; // "my-app"
    let proxy = Proxy::start(&[]);
    for (ws, up) in [
        ("workspace-7", &ws7),
        ("my-app", &hashed),
        ("/root/workspace-7", &ws7),
    ] {
        let (status, head, _) = tokio::task::block_in_place(|| {
            curl_full(&[
                "-H",
                &format!("X-Cmux-Port-Internal: {}", up.port()),
                "-H",
                &format!("X-Cmux-Workspace-Internal: {ws}"),
                &proxy.url("/echo"),
            ])
        });
        assert_eq!(status, 200, "{ws}");
        assert_eq!(
            header_values(&head, "x-upstream"),
            vec![up.addr.to_string()]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn host_subdomain_routing() {
    let ws7 = Upstream::start_on("127.18.0.7".parse().unwrap()).await;
    let proxy = Proxy::start(&[]);
    let host = format!("workspace-7-{}.localhost", ws7.port());
    // Both a Host header and curl's --resolve (no name lookup leaves the machine).
    let resolve = format!("{host}:{}:127.0.0.1", proxy.addr.port());
    let url = format!("http://{host}:{}/echo", proxy.addr.port());
    for args in [
        vec![
            "-H".to_string(),
            format!("Host: {host}"),
            proxy.url("/echo"),
        ],
        vec!["--resolve".to_string(), resolve, url],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, head, body) = tokio::task::block_in_place(|| curl_full(&args));
        assert_eq!(status, 200, "{head}");
        assert_eq!(
            header_values(&head, "x-upstream"),
            vec![ws7.addr.to_string()]
        );
        assert!(body_text(&body).to_ascii_lowercase().contains(&host));
    }
}

/// Large bodies both ways arrive whole (sha256); that they stream is
/// `request_bodies_reach_the_target_before_the_client_finishes` and the SSE test.
#[tokio::test(flavor = "multi_thread")]
async fn large_upload_and_download_arrive_intact() {
    const SIZE: usize = 32 << 20;
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let dir = tempdir();
    let data = pattern(SIZE);
    let file = dir.join("upload.bin");
    std::fs::File::create(&file)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let port = format!("X-Cmux-Port-Internal: {}", up.port());
    let upload_arg = format!("@{}", file.display());
    // Content-Length upload, then chunked upload.
    for extra in [None, Some("Transfer-Encoding: chunked")] {
        let mut args = vec!["-H", &port, "--data-binary", &upload_arg];
        if let Some(h) = extra {
            args.extend(["-H", h]);
        }
        let url = proxy.url("/upload");
        args.push(&url);
        let (status, _, body) = tokio::task::block_in_place(|| curl_full(&args));
        assert_eq!(status, 200);
        assert_eq!(body_text(&body), format!("{SIZE} {}", sha256_hex(&data)));
    }
    let (status, head, body) = tokio::task::block_in_place(|| {
        curl_full(&["-H", &port, &proxy.url(&format!("/download/{SIZE}"))])
    });
    assert_eq!(status, 200);
    assert_eq!(
        header_values(&head, "content-length"),
        vec![SIZE.to_string()]
    );
    assert_eq!(body.len(), SIZE);
    assert_eq!(sha256_hex(&body), sha256_hex(&data));
    let _ = std::fs::remove_dir_all(dir);
}

/// A target that tells (on the channel it returns) when the first bytes of a request's
/// body have reached it, then reads the body to its end (`Content-Length`, or the chunked
/// terminator) and answers with how many bytes came after the head.
async fn body_watcher() -> (std::net::SocketAddr, tokio::sync::mpsc::Receiver<usize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = vec![0u8; 64 << 10];
                let mut told = false;
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    data.extend_from_slice(&buf[..n]);
                    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                    let body = data.len() - end - 4;
                    if body > 0 && !told {
                        told = true;
                        let _ = seen.send(body).await;
                    }
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    let done = match length {
                        Some(len) => body >= len,
                        None => data.ends_with(b"\r\n0\r\n\r\n"),
                    };
                    if done {
                        let text = format!("{body} bytes");
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                            text.len()
                        );
                        let _ = s.write_all(reply.as_bytes()).await;
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Request bodies stream: the target has the first bytes of an upload while the client
/// still holds the rest back (it sends the rest only after that), with `Content-Length`
/// and chunked. A proxy that buffered the body before forwarding it would fail here.
#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_reach_the_target_before_the_client_finishes() {
    const FIRST: usize = 256 << 10;
    const REST: usize = 768 << 10;
    let (upstream, mut seen) = body_watcher().await;
    let proxy = Proxy::start(&[]);
    let data = pattern(FIRST + REST);
    for chunked in [false, true] {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {}", FIRST + REST)
        };
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: localhost\r\nX-Cmux-Port-Internal: {}\r\n{framing}\r\nConnection: close\r\n\r\n",
            upstream.port()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let piece = |bytes: &[u8]| {
            let mut out = Vec::new();
            if chunked {
                out.extend_from_slice(format!("{:x}\r\n", bytes.len()).as_bytes());
            }
            out.extend_from_slice(bytes);
            if chunked {
                out.extend_from_slice(b"\r\n");
            }
            out
        };
        s.write_all(&piece(&data[..FIRST])).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "chunked={chunked}: no byte of the body reached the target while the \
                     client held the rest back (10 s)"
                )
            })
            .expect("the target runs");
        assert!(first > 0 && first <= FIRST, "chunked={chunked}: {first}");
        let mut rest = piece(&data[FIRST..]);
        if chunked {
            rest.extend_from_slice(b"0\r\n\r\n");
        }
        s.write_all(&rest).await.unwrap();
        let answer = String::from_utf8_lossy(&read_until_close(&mut s).await).to_string();
        assert!(
            answer.starts_with("HTTP/1.1 200 "),
            "chunked={chunked}: {answer}"
        );
        if !chunked {
            assert!(
                answer.ends_with(&format!("\r\n\r\n{} bytes", FIRST + REST)),
                "{answer}"
            );
        }
    }
}

/// An event stream that sends its head and a first event, then waits for `go` before its
/// second event and its end.
async fn gated_event_stream() -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (go, gate) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let chunk = |data: &str| format!("{:x}\r\n{data}\r\n", data.len());
        let first = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            chunk("data: first\n\n")
        );
        if s.write_all(first.as_bytes()).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), gate).await;
        let rest = format!("{}0\r\n\r\n", chunk("data: second\n\n"));
        let _ = s.write_all(rest.as_bytes()).await;
    });
    (addr, go)
}

/// Events are passed on as the target writes them: the first event reaches the client
/// while the target still holds the second one back (it sends it only after that), so a
/// proxy that buffered the response would fail here, whatever the machine's load.
#[tokio::test(flavor = "multi_thread")]
async fn server_sent_events_arrive_as_written() {
    let (upstream, go) = gated_event_stream().await;
    let proxy = Proxy::start(&[]);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        format!(
            "GET /sse HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nX-Cmux-Port-Internal: {}\r\n\r\n",
            upstream.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut read_until = async |s: &mut TcpStream, seen: &mut Vec<u8>, what: &str| {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !String::from_utf8_lossy(seen).contains(what) {
                let n = s.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "stream ended early: {}",
                    String::from_utf8_lossy(seen)
                );
                seen.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what:?} did not arrive: {}", String::from_utf8_lossy(seen)));
    };
    read_until(&mut s, &mut seen, "data: first").await;
    assert!(
        !String::from_utf8_lossy(&seen).contains("data: second"),
        "the second event was not sent yet"
    );
    go.send(()).unwrap();
    read_until(&mut s, &mut seen, "0\r\n\r\n").await;
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("data: second"), "{text}");
    assert!(text.contains("text/event-stream"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_connections_are_pooled() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let port = format!("X-Cmux-Port-Internal: {}", up.port());
    // Three rounds of 20 requests, each round a new client connection.
    for _ in 0..3 {
        let urls: Vec<String> = (0..20).map(|i| proxy.url(&format!("/echo?{i}"))).collect();
        let mut args = vec!["-H", port.as_str(), "-o", "/dev/null"];
        for u in &urls {
            args.push(u);
            args.push("-o");
            args.push("/dev/null");
        }
        args.pop();
        args.pop();
        let out = tokio::task::block_in_place(|| curl(&args));
        assert!(out.status.success(), "{out:?}");
    }
    let accepted = up.stats.accepted.load(Ordering::SeqCst);
    assert!(
        accepted <= 2,
        "60 requests opened {accepted} upstream connections"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn head_response_has_no_body() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let (status, head, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-I",
            "-H",
            &format!("X-Cmux-Port-Internal: {}", up.port()),
            &proxy.url("/download/100"),
        ])
    });
    assert_eq!(status, 200, "{head}");
    assert_eq!(header_values(&head, "content-length"), vec!["100"]);
    // curl -I prints the head as its output: no body bytes may follow it.
    assert!(String::from_utf8_lossy(&body).ends_with("\r\n\r\n"));
    // The pooled upstream connection is still in step for the next request.
    let (status, _, body) = tokio::task::block_in_place(|| {
        curl_full(&[
            "-H",
            &format!("X-Cmux-Port-Internal: {}", up.port()),
            &proxy.url("/download/7"),
        ])
    });
    assert_eq!((status, body), (200, pattern(7)));
}
