//! Who reaches what: the Host allow list (rebinding), the target policy against host
//! services, the loop guard, what a 502 discloses, and which headers reach a target.
//! Each test is named after the review point it guards. Real sockets, loopback.

mod common;

use common::*;

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).to_ascii_lowercase()
}

/// curl through `proxy` to `path`, with these headers; (status, head, body).
/// Errors are asked for in JSON, to read their `code`.
fn get(proxy: &Proxy, path: &str, headers: &[String]) -> (u16, String, Vec<u8>) {
    let mut args: Vec<&str> = vec!["-H", "Accept: application/json"];
    for h in headers {
        args.extend(["-H", h.as_str()]);
    }
    let url = proxy.url(path);
    args.push(&url);
    tokio::task::block_in_place(|| curl_full(&args))
}

/// A conf file with these lines in its `cmux_proxy:` section.
fn conf_with(lines: &str) -> String {
    let path = tempdir().join("cmux.yaml");
    std::fs::write(&path, format!("version: 1\ncmux_proxy:\n{lines}\n")).unwrap();
    path.to_string_lossy().into_owned()
}

/// The `code` of a JSON error body.
fn error_code(body: &[u8]) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    json["code"].as_str().unwrap_or_default().to_string()
}

/// Point 1: a page on an attacker's name that rebinds to the proxy is refused before any
/// target sees it, whatever it asks for; trusted clients are no exception.
#[tokio::test(flavor = "multi_thread")]
async fn point_1_a_rebinding_host_is_refused() {
    let up = Upstream::start().await;
    let conf = conf_with("  trusted_clients: [\"127.0.0.0/8\"]");
    let proxy = Proxy::start(&["-c", &conf]);
    let port = proxy.addr.port();
    let (status, head, body) = get(
        &proxy,
        "/echo",
        &[
            format!("X-Cmux-Port-Internal: {}", up.port()),
            format!("Host: rebind.attacker.test:{port}"),
            format!("Origin: http://rebind.attacker.test:{port}"),
            "X-Cmux-Host-Override: localhost:5173".into(),
        ],
    );
    assert_eq!(status, 421, "{head}\n{}", text(&body));
    assert_eq!(error_code(&body), "host_not_allowed", "{head}");
    assert!(text(&body).contains("public_hosts"), "{}", text(&body));
    assert_eq!(
        up.stats.requests.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

/// Point 1: the names that are allowed: loopback addresses, `localhost`, `*.localhost`,
/// the proxy's own address, and `public_hosts` (exact or `*.` wildcard).
#[tokio::test(flavor = "multi_thread")]
async fn point_1_allowed_hosts_pass() {
    let up = Upstream::start().await;
    let conf = conf_with("  public_hosts: [\"*.preview.test\", \"app.example.test\"]");
    let proxy = Proxy::start(&["-c", &conf]);
    let port = up.port();
    for host in [
        format!("{}", proxy.addr),
        "127.0.0.9".into(),
        "[::1]:80".into(),
        "localhost".into(),
        "LocalHost.:8080".into(),
        "app.localhost".into(),
        "a.b.preview.test".into(),
        "App.Example.Test:443".into(),
    ] {
        let (status, _, body) = get(
            &proxy,
            "/echo",
            &[
                format!("X-Cmux-Port-Internal: {port}"),
                format!("Host: {host}"),
            ],
        );
        assert_eq!(status, 200, "{host}: {}", text(&body));
    }
    for host in [
        "preview.test",
        "example.test",
        "app.example.test.evil",
        "localhost.evil",
    ] {
        let (status, _, body) = get(
            &proxy,
            "/echo",
            &[
                format!("X-Cmux-Port-Internal: {port}"),
                format!("Host: {host}"),
            ],
        );
        assert_eq!(status, 421, "{host}");
        assert_eq!(error_code(&body), "host_not_allowed", "{host}");
    }
}

/// Point 3: with `allow_default_upstream: false`, a host service listening on a wildcard
/// address (it answers on every 127/8 address, workspace addresses included) is not
/// reachable through a workspace name, over HTTP or CONNECT.
#[tokio::test(flavor = "multi_thread")]
async fn point_3_default_upstream_off_keeps_clients_off_wildcard_host_services() {
    let service = Upstream::start_on("0.0.0.0".parse().unwrap()).await;
    let conf = conf_with("  allow_default_upstream: false");
    let proxy = Proxy::start(&["-c", &conf]);
    let (status, head, body) = get(
        &proxy,
        "/echo",
        &[
            format!("X-Cmux-Port-Internal: {}", service.port()),
            "X-Cmux-Workspace-Internal: workspace-1".into(),
        ],
    );
    assert_eq!(status, 403, "{head}\n{}", text(&body));
    assert_eq!(error_code(&body), "target_forbidden", "{head}");
    assert!(text(&body).contains("0.0.0.0"), "{}", text(&body));
    // CONNECT, the same answer.
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let ask = format!(
        "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\nX-Cmux-Workspace-Internal: workspace-1\r\n\r\n",
        service.port()
    );
    s.write_all(ask.as_bytes()).await.unwrap();
    let answer = read_head(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(
        service
            .stats
            .requests
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(
        service
            .stats
            .accepted
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

/// Point 8: an IPv4-mapped address of the proxy's own listener (here its admin
/// listener, through `--upstream-host ::ffff:127.0.0.1`) is the proxy itself: 508.
#[tokio::test(flavor = "multi_thread")]
async fn point_8_an_ipv4_mapped_target_of_the_proxy_is_a_loop() {
    if !have_ipv6_loopback() {
        skip("point_8: no IPv6 loopback");
        return;
    }
    let proxy = Proxy::start(&["--upstream-host", "::ffff:127.0.0.1"]);
    for port in [proxy.admin.port(), proxy.addr.port()] {
        let (status, head, body) = get(
            &proxy,
            "/metrics",
            &[format!("X-Cmux-Port-Internal: {port}")],
        );
        assert_eq!(status, 508, "{port}: {head}\n{}", text(&body));
        assert_eq!(error_code(&body), "loop_detected", "{head}");
        assert!(!text(&body).contains("cmux_"), "admin metrics leaked");
    }
}

/// Point 10: a 502's explanation names no listener the client could not reach anyway:
/// the host's own 127.0.0.1 services with `allow_default_upstream: false`, and the
/// proxy's admin address.
#[tokio::test(flavor = "multi_thread")]
async fn point_10_a_502_does_not_name_listeners_the_policy_hides() {
    let hidden = Upstream::start().await;
    let conf = conf_with("  allow_default_upstream: false");
    let proxy = Proxy::start(&["-c", &conf]);
    for (port, hidden_addr) in [
        (hidden.addr.port(), hidden.addr),
        (proxy.admin.port(), proxy.admin),
    ] {
        let (status, head, body) = get(
            &proxy,
            "/",
            &[
                format!("X-Cmux-Port-Internal: {port}"),
                "X-Cmux-Workspace-Internal: workspace-1".into(),
                "X-Cmux-Wait-Ms: 0".into(),
            ],
        );
        assert_eq!(error_code(&body), "port_closed", "{head}");
        let body = text(&body);
        assert_eq!(status, 502, "{head}\n{body}");
        assert!(!body.contains(&hidden_addr.to_string()), "{body}");
        assert!(body.contains("nothing listens on port"), "{body}");
    }
}

/// Point 11: no `X-Cmux-*` header reaches a target, known or not, the edge's machine
/// header included.
#[tokio::test(flavor = "multi_thread")]
async fn point_11_no_x_cmux_header_reaches_the_target() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let (status, _, body) = get(
        &proxy,
        "/echo",
        &[
            format!("X-Cmux-Port-Internal: {}", up.port()),
            "X-Cmux-Machine-Internal: m1".into(),
            "X-Cmux-Something-New: 1".into(),
            "X-CMUX-Token: t".into(),
            "X-Cmux-Host-Override: localhost:5173".into(),
            "X-Cmux-Upstream-Protocol: http/1.1".into(),
            "X-Cmuxy: kept".into(),
        ],
    );
    let seen = text(&body);
    assert_eq!(status, 200, "{seen}");
    assert!(!seen.contains("\nx-cmux-"), "{seen}");
    assert!(seen.contains("\nx-cmuxy: kept\n"), "{seen}");
}

/// Point 11: `X-Forwarded-Proto` and `-Host` from a client are replaced with the proxy's
/// own values; from a `trusted_clients` front they pass as sent.
#[tokio::test(flavor = "multi_thread")]
async fn point_11_forwarded_proto_and_host_are_replaced_unless_trusted() {
    let up = Upstream::start().await;
    let forged = [
        format!("X-Cmux-Port-Internal: {}", up.port()),
        "Host: localhost:1234".into(),
        "X-Forwarded-Proto: https".into(),
        "X-Forwarded-Host: evil.test".into(),
    ];
    let proxy = Proxy::start(&[]);
    let (status, _, body) = get(&proxy, "/echo", &forged);
    let seen = text(&body);
    assert_eq!(status, 200, "{seen}");
    assert!(seen.contains("\nx-forwarded-proto: http\n"), "{seen}");
    assert!(
        seen.contains("\nx-forwarded-host: localhost:1234\n"),
        "{seen}"
    );
    assert!(
        !seen.contains("evil.test") && !seen.contains("https"),
        "{seen}"
    );
    let trusting = Proxy::start(&["--trusted-clients", "127.0.0.0/8"]);
    let (status, _, body) = get(&trusting, "/echo", &forged);
    let seen = text(&body);
    assert_eq!(status, 200, "{seen}");
    assert!(seen.contains("\nx-forwarded-proto: https\n"), "{seen}");
    assert!(seen.contains("\nx-forwarded-host: evil.test\n"), "{seen}");
}
