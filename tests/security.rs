//! The security review's points, one regression test each (named after the point): what
//! a hostile page or client tries, and the answer it now gets. Real sockets, loopback.

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
