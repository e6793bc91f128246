//! Previews: the host override (`X-Cmux-Host-Override` and the `host_override`
//! default) on HTTP, WebSocket handshakes and CONNECT, and the rewrite of loopback
//! redirects, with real sockets, a real upstream and curl.

mod common;

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).to_ascii_lowercase()
}

/// curl through `proxy` to `path`, with these headers; (status, head, body).
fn get(proxy: &Proxy, path: &str, headers: &[String]) -> (u16, String, Vec<u8>) {
    let mut args: Vec<&str> = Vec::new();
    for h in headers {
        args.extend(["-H", h.as_str()]);
    }
    let url = proxy.url(path);
    args.push(&url);
    tokio::task::block_in_place(|| curl_full(&args))
}

fn port_header(up: &Upstream) -> String {
    format!("X-Cmux-Port-Internal: {}", up.port())
}

/// The preview names these tests use, for the Host allow list.
const PUBLIC_HOSTS: &str = "  public_hosts: [\"*.preview.test\", \"preview.test\", \"app.test\"]";

/// [`PUBLIC_HOSTS`], and the test client as a trusted front (a TLS terminator whose
/// `X-Forwarded-Proto` and `-Host` name the browser's origin).
const FRONT: &str = "  public_hosts: [\"*.preview.test\", \"preview.test\", \"app.test\"]\n  trusted_clients: [\"127.0.0.0/8\"]";

/// A conf file with these lines in its `cmux_proxy:` section.
fn conf_with(lines: &str) -> String {
    let path = tempdir().join("cmux.yaml");
    std::fs::write(&path, format!("version: 1\ncmux_proxy:\n{lines}\n")).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn override_replaces_host_and_moves_same_origin_headers() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&["-c", &conf_with(PUBLIC_HOSTS)]);
    let (status, _, body) = get(
        &proxy,
        "/echo",
        &[
            port_header(&up),
            "Host: App-7.Preview.Test".into(),
            "X-Cmux-Host-Override: localhost:5173".into(),
            "Origin: http://app-7.preview.test".into(),
            "Referer: http://app-7.preview.test:80/page?x=1".into(),
        ],
    );
    assert_eq!(status, 200);
    let seen = text(&body);
    assert!(seen.contains("\nhost: localhost:5173\n"), "{seen}");
    assert!(
        seen.contains("\nx-forwarded-host: app-7.preview.test\n"),
        "{seen}"
    );
    assert!(seen.contains("\norigin: http://localhost:5173\n"), "{seen}");
    assert!(
        seen.contains("\nreferer: http://localhost:5173/page?x=1\n"),
        "{seen}"
    );
    assert!(!seen.contains("x-cmux-host-override"), "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn other_origins_are_left_alone() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&["-c", &conf_with(FRONT)]);
    let cases = [
        // Another site.
        ("Host: app.test", "", "http://evil.test"),
        // The client's host, but it came in over https (says the front).
        (
            "Host: app.test",
            "X-Forwarded-Proto: https",
            "http://app.test",
        ),
        // The client's host on another port.
        ("Host: app.test:8080", "", "http://app.test:8081"),
        ("Host: app.test", "", "null"),
    ];
    for (host, proto, origin) in cases {
        let mut headers = vec![
            port_header(&up),
            host.to_string(),
            "X-Cmux-Host-Override: localhost".into(),
            format!("Origin: {origin}"),
        ];
        if !proto.is_empty() {
            headers.push(proto.to_string());
        }
        let (status, _, body) = get(&proxy, "/echo", &headers);
        assert_eq!(status, 200);
        let seen = text(&body);
        assert!(seen.contains("\nhost: localhost\n"), "{seen}");
        assert!(seen.contains(&format!("\norigin: {origin}\n")), "{seen}");
    }
    // A TLS front that says so: the https origin is the client's, and is moved.
    let (_, _, body) = get(
        &proxy,
        "/echo",
        &[
            port_header(&up),
            "Host: app.test".into(),
            "X-Forwarded-Proto: https".into(),
            "X-Cmux-Host-Override: localhost:3000".into(),
            "Origin: https://app.test".into(),
        ],
    );
    assert!(
        text(&body).contains("\norigin: https://localhost:3000\n"),
        "{}",
        text(&body)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_override_is_400_in_every_form() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    for bad in ["http://localhost:5173", "localhost:0", "local host", "[::1"] {
        let (status, _, body) = get(
            &proxy,
            "/echo",
            &[port_header(&up), format!("X-Cmux-Host-Override: {bad}")],
        );
        assert_eq!(status, 400, "{bad}");
        let body = String::from_utf8_lossy(&body).to_string();
        assert!(
            body.starts_with("invalid X-Cmux-Host-Override header"),
            "{body}"
        );
    }
    let twice = [
        port_header(&up),
        "X-Cmux-Host-Override: localhost:1".into(),
        "X-Cmux-Host-Override: localhost:2".into(),
    ];
    let (status, _, body) = get(&proxy, "/echo", &twice);
    assert_eq!(status, 400, "{}", text(&body));
    let json = [
        port_header(&up),
        "X-Cmux-Host-Override: a/b".into(),
        "Accept: application/json".into(),
    ];
    let (status, head, body) = get(&proxy, "/echo", &json);
    assert_eq!(status, 400);
    assert!(head.contains("application/json"), "{head}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "bad_host_override");
    assert_eq!(v["status"], 400);
    let html = [
        port_header(&up),
        "X-Cmux-Host-Override: a/b".into(),
        "Accept: text/html".into(),
    ];
    let (status, _, body) = get(&proxy, "/echo", &html);
    assert_eq!(status, 400);
    let page = String::from_utf8_lossy(&body);
    assert!(page.contains("bad_host_override"), "{page}");
    assert!(!page.contains("http-equiv=\"refresh\""), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn default_sends_localhost_and_target_port() {
    let up = Upstream::start().await;
    let by_flag = Proxy::start(&["--host-override", "localhost"]);
    let conf = conf_with("  host_override: localhost");
    let by_conf = Proxy::start(&["-c", &conf]);
    for proxy in [&by_flag, &by_conf] {
        let (_, _, body) = get(proxy, "/echo", &[port_header(&up)]);
        let seen = text(&body);
        assert!(
            seen.contains(&format!("\nhost: localhost:{}\n", up.port())),
            "{seen}"
        );
        assert!(
            seen.contains(&format!("\nx-forwarded-host: {}\n", proxy.addr)),
            "{seen}"
        );
        // The header still wins over the default.
        let header = "X-Cmux-Host-Override: 127.0.0.1".to_string();
        let (_, _, body) = get(proxy, "/echo", &[port_header(&up), header]);
        assert!(text(&body).contains("\nhost: 127.0.0.1\n"));
    }
    // The flag wins over the conf.
    let keep = Proxy::start(&["-c", &conf, "--host-override", "keep"]);
    let (_, _, body) = get(&keep, "/echo", &[port_header(&up)]);
    assert!(text(&body).contains(&format!("\nhost: {}\n", keep.addr)));
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_handshake_gets_the_override() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&["-c", &conf_with(PUBLIC_HOSTS)]);
    let mut req = format!("ws://{}/_next/hmr", proxy.addr)
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("Host", "preview.test:8080".parse().unwrap());
    h.insert("Origin", "http://preview.test:8080".parse().unwrap());
    h.insert("X-Cmux-Port-Internal", up.port().parse().unwrap());
    h.insert("X-Cmux-Host-Override", "localhost:3000".parse().unwrap());
    let (_ws, resp) = ws_handshake(req).await;
    let seen = |n: &str| resp.headers().get(n).unwrap().to_str().unwrap().to_string();
    assert_eq!(seen("x-seen-host"), "localhost:3000");
    assert_eq!(seen("x-seen-origin"), "http://localhost:3000");
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_accepts_and_ignores_the_header() {
    let echo = tcp_echo().await;
    let proxy = Proxy::start(&[]);
    for value in ["localhost:5173", "not a host!"] {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let head = format!(
            "CONNECT ignored:1 HTTP/1.1\r\nX-Cmux-Port-Internal: {}\r\n\
             X-Cmux-Host-Override: {value}\r\n\r\n",
            echo.port()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let answer = read_head(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{value}: {answer}");
        s.write_all(b"ping").await.unwrap();
        s.shutdown().await.unwrap();
        assert_eq!(read_to_end(&mut s).await, b"ping");
    }
}

/// The `Location` (and `Content-Location`) a redirect to `to` comes back with.
fn redirected(proxy: &Proxy, to: &str, headers: &[String]) -> (String, String) {
    let (status, head, _) = get(proxy, &format!("/redirect?to={to}"), headers);
    assert_eq!(status, 302, "{head}");
    let one = |n| header_values(&head, n).join(" | ");
    (one("location"), one("content-location"))
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_redirects_stay_on_the_proxy() {
    let up = Upstream::start_on("127.18.0.16".parse().unwrap()).await;
    let proxy = Proxy::start(&["-c", &conf_with(FRONT)]);
    let p = up.port();
    let pp = proxy.addr.port();
    let form = vec![format!("Host: workspace-16-{p}.localhost:{pp}")];
    let same = format!("http://workspace-16-{p}.localhost:{pp}/next?a=1");
    for loopback in ["localhost", "127.0.0.1", "[::1]", "0.0.0.0", "127.18.0.16"] {
        let got = redirected(&proxy, &format!("http://{loopback}:{p}/next?a=1"), &form);
        assert_eq!(got, (same.clone(), same.clone()), "{loopback}");
    }
    // Another port of the same workspace, through the .localhost form.
    let got = redirected(&proxy, "http://localhost:3000/api", &form);
    assert_eq!(
        got.0,
        format!("http://workspace-16-3000.localhost:{pp}/api")
    );
    // Through a front: its X-Forwarded-Host and -Proto name the client's origin.
    let front = vec![
        format!("X-Cmux-Port-Internal: {p}"),
        "X-Cmux-Workspace-Internal: workspace-16".into(),
        "X-Forwarded-Host: app-16.preview.test".into(),
        "X-Forwarded-Proto: https".into(),
    ];
    let got = redirected(&proxy, &format!("http://localhost:{p}/next"), &front);
    assert_eq!(got.0, "https://app-16.preview.test/next");
    // Left alone: another port without the .localhost form, other hosts, relative.
    for untouched in [
        "http://localhost:3000/api".to_string(),
        format!("http://example.test:{p}/x"),
        format!("http://127.18.0.17:{p}/x"),
        "/next".into(),
        format!("//localhost:{p}/next"),
    ] {
        let got = redirected(&proxy, &untouched, &front);
        assert_eq!(got.0, untouched);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_rewrite_can_be_turned_off() {
    let up = Upstream::start().await;
    let conf = conf_with("  rewrite_loopback_redirects: false");
    let proxy = Proxy::start(&["-c", &conf]);
    let to = format!("http://localhost:{}/next", up.port());
    let got = redirected(&proxy, &to, &[port_header(&up)]);
    assert_eq!(got, (to.clone(), to));
}
