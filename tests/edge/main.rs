//! Edge mode end to end: a real DNS server (dnsmasq), node proxies on their own loopback
//! addresses with their own upstreams, and edges in front, with curl, a WebSocket client
//! and a raw TCP client for CONNECT.

#[path = "../common/mod.rs"]
mod common;
mod fixtures;

use common::*;
use fixtures::*;
use futures_util::{SinkExt, StreamExt};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// GET through `edge` with these headers: (status, head, body as text).
fn get(edge: &Proxy, headers: &[String]) -> (u16, String, String) {
    let mut args: Vec<&str> = Vec::new();
    for h in headers {
        args.extend(["-H", h.as_str()]);
    }
    let url = edge.url("/hello");
    args.push(&url);
    let (status, head, body) = curl_full(&args);
    (status, head, String::from_utf8_lossy(&body).to_string())
}

fn host(h: String) -> String {
    format!("Host: {h}")
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_by_host_and_headers_through_dns() {
    let nodes_ips = [
        ip("127.30.1.1"),
        ip("127.30.1.2"),
        ip("127.30.1.3"),
        ip("::1"),
    ];
    // The IPv6-only machine needs an IPv6 loopback, which a host may not have.
    let v6 = have_ipv6_loopback();
    if !v6 {
        skip("edge: routes_by_host_and_headers_through_dns: no IPv6 loopback (::1), the IPv6-only machine left out");
    }
    let ports_on: Vec<IpAddr> = if v6 {
        vec![nodes_ips[0], nodes_ips[1], nodes_ips[3]]
    } else {
        vec![nodes_ips[0], nodes_ips[1]]
    };
    let port = port_free_on(&ports_on);
    let srv_port = port_free_on(&nodes_ips[2..3]);
    let dns = Dns::start(
        &[
            ("m1", nodes_ips[0]),
            ("m2", nodes_ips[1]),
            ("m3", nodes_ips[2]),
            // A machine with an AAAA record only.
            ("m6", nodes_ips[3]),
        ],
        &[("m3", "m3", srv_port)],
        1,
    );
    let up6 = ident(ip("127.31.1.6"), "node-6").await;
    let _n6 = v6.then(|| node(nodes_ips[3], port, ip("127.31.1.6")));
    let up1 = ident(ip("127.31.1.1"), "node-1").await;
    let up2 = ident(ip("127.31.1.2"), "node-2").await;
    let up3 = ident(ip("127.31.1.3"), "node-3").await;
    let ws7 = ident(ip("127.18.0.7"), "workspace-7").await;
    let n1 = node(nodes_ips[0], port, ip("127.31.1.1"));
    let _n2 = node(nodes_ips[1], port, ip("127.31.1.2"));
    let _n3 = node(nodes_ips[2], srv_port, ip("127.31.1.3"));
    let log = tempdir().join("access.log");
    let edge = edge(&dns, port, &["--access-log", log.to_str().unwrap()]);

    // The Host form, without and with a workspace, and with the edge's port.
    let (status, _, body) = get(&edge, &[host(format!("{up1}--m1.{EDGE_DOMAIN}"))]);
    assert_eq!(
        (status, body.lines().next()),
        (200, Some("node-1")),
        "{body}"
    );
    // What the node's upstream saw: the client's Host, the edge's and the node's Via
    // entries, no machine header and no token.
    assert!(body.contains(&format!("{up1}--m1.{EDGE_DOMAIN}")), "{body}");
    assert_eq!(body.matches("cmux-proxy-").count(), 2, "{body}");
    let lower = body.to_ascii_lowercase();
    assert!(!lower.contains("x-cmux-machine-internal"), "{body}");
    assert!(!lower.contains(NODE_TOKEN), "{body}");
    assert!(lower.contains("x-forwarded-for: 127.0.0.1"), "{body}");
    let (status, _, body) = get(
        &edge,
        &[host(format!("workspace-7-{ws7}--M1.{EDGE_DOMAIN}:8443"))],
    );
    assert_eq!(
        (status, body.lines().next()),
        (200, Some("workspace-7")),
        "{body}"
    );

    // The header form.
    let (status, _, body) = get(
        &edge,
        &[
            "X-Cmux-Machine-Internal: m2".into(),
            format!("X-Cmux-Port-Internal: {up2}"),
        ],
    );
    assert_eq!(
        (status, body.lines().next()),
        (200, Some("node-2")),
        "{body}"
    );

    // An SRV record names m3's proxy port.
    let (status, _, body) = get(&edge, &[host(format!("{up3}--m3.{EDGE_DOMAIN}"))]);
    assert_eq!(
        (status, body.lines().next()),
        (200, Some("node-3")),
        "{body}"
    );

    // An IPv6-only machine.
    if v6 {
        let (status, _, body) = get(&edge, &[host(format!("{up6}--m6.{EDGE_DOMAIN}"))]);
        assert_eq!(
            (status, body.lines().next()),
            (200, Some("node-6")),
            "{body}"
        );
    }

    // The node token lets the edge in where a client without it is refused.
    let (status, _, _) = curl_full(&["-H", &format!("X-Cmux-Port-Internal: {up1}"), &n1.url("/")]);
    assert_eq!(status, 401);

    // Errors: unknown machine, malformed name, none named, and the node's own error
    // passed on unchanged.
    let json = "Accept: application/json".to_string();
    let (status, _, body) = get(
        &edge,
        &[host(format!("80--nope.{EDGE_DOMAIN}")), json.clone()],
    );
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("\"code\":\"machine_unknown\""), "{body}");
    assert!(body.contains("\"machine\":\"nope\""), "{body}");
    let (status, _, body) = get(
        &edge,
        &[
            "X-Cmux-Machine-Internal: bad_name".into(),
            "X-Cmux-Port-Internal: 80".into(),
            json.clone(),
        ],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"code\":\"bad_machine\""), "{body}");
    let (status, _, body) = get(&edge, &["X-Cmux-Port-Internal: 80".into(), json.clone()]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"code\":\"missing_machine\""), "{body}");
    let closed = free_port();
    let (status, _, body) = get(&edge, &[host(format!("{closed}--m2.{EDGE_DOMAIN}")), json]);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("\"code\":\"port_closed\""), "{body}");
    assert!(body.contains("127.31.1.2"), "the node's own answer: {body}");

    // The admin listener shows what DNS said; the metrics count per machine.
    let (status, _, machines) = curl_full(&[&edge.admin_url("/machines")]);
    let machines = String::from_utf8_lossy(&machines).to_string();
    assert_eq!(status, 200);
    assert!(machines.contains("\"machine\":\"m1\""), "{machines}");
    assert!(
        machines.contains(&format!("\"address\":\"127.30.1.3:{srv_port}\"")),
        "{machines}"
    );
    assert!(machines.contains("\"source\":\"srv\""), "{machines}");
    assert!(
        machines.contains("\"error\":\"machine_unknown\""),
        "{machines}"
    );
    let (_, _, metrics) = curl_full(&[&edge.admin_url("/metrics")]);
    let metrics = String::from_utf8_lossy(&metrics).to_string();
    assert!(
        metrics.contains("cmux_machine_requests_total{machine=\"m1\",status=\"2xx\"} 2"),
        "{metrics}"
    );
    // The access log names the machine, with the node as the target.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains("machine=nope") {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = text
        .lines()
        .find(|l| l.contains(" 200 ") && l.contains("machine=m2"))
        .unwrap_or_else(|| panic!("no line for m2 in {text}"));
    assert!(line.contains(&format!("127.30.1.2:{port}")), "{line}");
    assert!(
        text.contains("error=machine_unknown machine=nope"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_and_connect_through_the_edge() {
    let node_ip = ip("127.30.2.1");
    let port = port_free_on(&[node_ip]);
    let dns = Dns::start(&[("m1", node_ip)], &[], 1);
    let upstream = Upstream::start_on(ip("127.18.0.12")).await;
    let echo = tcp_echo().await;
    let _n1 = node(node_ip, port, ip("127.0.0.1"));
    let edge = edge(&dns, port, &[]);

    // WebSocket, by the Host form.
    let mut req = format!("ws://{}/socket", edge.addr)
        .into_client_request()
        .unwrap();
    let host = format!("workspace-12-{}--m1.{EDGE_DOMAIN}", upstream.port());
    req.headers_mut().insert("Host", host.parse().unwrap());
    let (mut ws, _) = ws_handshake(req).await;
    ws.send(Message::Text("through two proxies".into()))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("echo in time")
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::Text("through two proxies".into()));
    ws.close(None).await.unwrap();

    // CONNECT, by headers: 200 only once the node said 200, then bytes both ways.
    let mut s = TcpStream::connect(edge.addr).await.unwrap();
    let head = format!(
        "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Machine-Internal: m1\r\nX-Cmux-Port-Internal: {}\r\n\r\nearly|",
        echo.port()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(
        read_head(&mut s).await,
        "HTTP/1.1 200 Connection Established\r\n\r\n"
    );
    s.write_all(b"late").await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut s).await, b"early|late");

    // The node's refusal is passed on; an unknown machine is the edge's own answer.
    let mut s = TcpStream::connect(edge.addr).await.unwrap();
    let closed = free_port();
    let head = format!(
        "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Machine-Internal: m1\r\nX-Cmux-Port-Internal: {closed}\r\nX-Cmux-Wait-Ms: 0\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_close(&mut s).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 502 "), "{answer}");
    assert!(answer.contains("nothing listens on 127.0.0.1:"), "{answer}");
    let mut s = TcpStream::connect(edge.addr).await.unwrap();
    let head =
        "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Machine-Internal: nope\r\nX-Cmux-Port-Internal: 1\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_close(&mut s).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 502 "), "{answer}");
    assert!(answer.contains("unknown machine \"nope\""), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_machine_fails_only_its_own_requests_promptly() {
    let ips = [ip("127.30.3.1"), ip("127.30.3.2")];
    let port = port_free_on(&ips);
    let dns = Dns::start(&[("m1", ips[0]), ("m2", ips[1])], &[], 1);
    let up1 = ident(ip("127.31.3.1"), "node-1").await;
    let up2 = ident(ip("127.31.3.2"), "node-2").await;
    let _n1 = node(ips[0], port, ip("127.31.3.1"));
    let mut n2 = node(ips[1], port, ip("127.31.3.2"));
    // A long connect timeout (10 s), so that "promptly" (a refused connection answered at
    // once, not at the timeout) shows whatever the machine's load.
    let edge = edge_with_connect_timeout(&dns, port, 10_000, &[]);
    let to = |m: &str, p: u16| vec![host(format!("{p}--{m}.{EDGE_DOMAIN}"))];
    assert_eq!(get(&edge, &to("m2", up2)).0, 200);

    n2.child.kill().unwrap();
    n2.child.wait().unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        let (status, _, body) = get(&edge, &to("m2", up2));
        let took = started.elapsed();
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("machine \"m2\" is unreachable"), "{body}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
        let (status, _, body) = get(&edge, &to("m1", up1));
        assert_eq!((status, body.lines().next()), (200, Some("node-1")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_moved_record_is_followed_within_its_ttl() {
    const TTL_S: u32 = 2;
    let ips = [ip("127.30.4.1"), ip("127.30.4.2")];
    let port = port_free_on(&ips);
    let dns = Dns::start(&[("m1", ips[0])], &[], TTL_S);
    // Both nodes' upstreams listen on the same port, each saying which node it is.
    let up = ident(ip("127.31.4.1"), "node-1").await;
    let up_b = ident_on(std::net::SocketAddr::new(ip("127.31.4.2"), up), "node-2").await;
    assert_eq!(up, up_b);
    let _n1 = node(ips[0], port, ip("127.31.4.1"));
    let _n2 = node(ips[1], port, ip("127.31.4.2"));
    let edge = edge(&dns, port, &[]);
    let to = vec![host(format!("{up}--m1.{EDGE_DOMAIN}"))];
    assert!(get(&edge, &to).2.starts_with("node-1"));

    dns.set_records(&[("m1", ips[1])]);
    let moved = Instant::now();
    let deadline = moved + Duration::from_secs(u64::from(TTL_S) + 3);
    let mut followed = None;
    while Instant::now() < deadline {
        let (status, _, body) = get(&edge, &to);
        assert_eq!(status, 200, "{body}");
        if body.starts_with("node-2") {
            followed = Some(moved.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let followed = followed.expect("the moved record was followed");
    eprintln!("edge: moved DNS record (TTL {TTL_S} s) followed after {followed:?}");
    assert!(followed <= Duration::from_millis(u64::from(TTL_S) * 1000 + 1500));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_one_of_two_edges_stopped_the_other_serves() {
    let node_ip = ip("127.30.5.1");
    let port = port_free_on(&[node_ip]);
    let dns = Dns::start(&[("m1", node_ip)], &[], 1);
    let up = ident(ip("127.31.5.1"), "node-1").await;
    let _n1 = node(node_ip, port, ip("127.31.5.1"));
    let mut a = edge(&dns, port, &[]);
    let b = edge(&dns, port, &[]);
    let to = vec![host(format!("{up}--m1.{EDGE_DOMAIN}"))];
    assert!(get(&a, &to).2.starts_with("node-1"));
    assert!(get(&b, &to).2.starts_with("node-1"));
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    assert_eq!(get(&a, &to).0, 0, "the stopped edge answers nothing");
    for _ in 0..3 {
        assert!(get(&b, &to).2.starts_with("node-1"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_dns_server_costs_at_most_the_connect_timeout() {
    // A "DNS server" that takes queries and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns_addr = silent.local_addr().unwrap().to_string();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let edge = Proxy::start_at(
        addr,
        &[
            "--mode",
            "edge",
            "--machine-dns-suffix",
            SUFFIX,
            "--dns-servers",
            &dns_addr,
            "--connect-timeout-ms",
            "3000",
        ],
    );
    let started = Instant::now();
    let (status, _, body) = get(
        &edge,
        &[
            "X-Cmux-Machine-Internal: m1".into(),
            "X-Cmux-Port-Internal: 80".into(),
            "Accept: application/json".into(),
        ],
    );
    let took = started.elapsed();
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("\"code\":\"dns_failed\""), "{body}");
    // The connect timeout (3 s) and some slack for curl on a busy machine; without the
    // bound the resolver would go on for its own timeouts and attempts (6 s and more).
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_machine_that_accepts_nothing_gets_504_within_the_connect_timeout() {
    // A "node" whose accept queue is full: further connections are never accepted, as
    // with a machine that is down behind a firewall that drops packets.
    let node_ip = ip("127.30.6.1");
    let port = port_free_on(&[node_ip]);
    let at = std::net::SocketAddr::new(node_ip, port);
    let (_, _fillers, _listener) = unanswering_target(at).await;
    let dns = Dns::start(&[("m9", node_ip)], &[], 1);
    let edge = edge_with_connect_timeout(&dns, port, 2000, &[]);
    let started = Instant::now();
    let (status, _, body) = get(
        &edge,
        &[
            host(format!("3000--m9.{EDGE_DOMAIN}")),
            "Accept: application/json".into(),
        ],
    );
    let took = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("\"code\":\"machine_unreachable\""), "{body}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "took {took:?} (connect timeout 2 s)"
    );
    // CONNECT gets the same answer in the same time.
    let started = Instant::now();
    let mut s = TcpStream::connect(edge.addr).await.unwrap();
    let head =
        "CONNECT x:1 HTTP/1.1\r\nX-Cmux-Machine-Internal: m9\r\nX-Cmux-Port-Internal: 1\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_close(&mut s).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 504 "), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn edge_settings_are_checked_at_start_up() {
    let run = |args: &[&str]| {
        without_cmux_env(&mut std::process::Command::new(PROXY_BIN))
            .args(["-t", "--listen", "127.0.0.1:1", "--admin-listen", "off"])
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&["--mode", "edge", "--machine-dns-suffix", "machines.test"]);
    assert_eq!(ok.status.code(), Some(0));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        out.contains("edge for machines under machines.test"),
        "{out}"
    );
    for (args, says) in [
        (&["--mode", "edge"][..], "needs machine_dns_suffix"),
        (&["--mode", "hub"][..], "invalid mode \"hub\""),
        (&["--machine-dns-suffix", "m.test"][..], "mode: edge only"),
        (
            &[
                "--mode",
                "edge",
                "--machine-dns-suffix",
                "m.test",
                "--dns-servers",
                "x",
            ][..],
            "invalid DNS server \"x\"",
        ),
    ] {
        let bad = run(args);
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// A name DNS never knew is listed on `/machines` only while its "no such machine" answer
/// was asked lately (a few negative TTLs), and never becomes a metric label of its own.
#[tokio::test(flavor = "multi_thread")]
async fn point_11_machines_that_never_resolved_leave_machines_and_the_metric_labels() {
    let dns = Dns::start(&[("m1", ip("127.30.6.1"))], &[], 1);
    let conf = tempdir().join("edge.yaml");
    std::fs::write(
        &conf,
        "version: 1\ncmux_proxy:\n  machine_port: 1\n  dns_negative_ttl_ms: 100\n",
    )
    .unwrap();
    let edge = Proxy::start(&[
        "-c",
        conf.to_str().unwrap(),
        "--mode",
        "edge",
        "--machine-dns-suffix",
        SUFFIX,
        "--edge-domain",
        EDGE_DOMAIN,
        "--dns-servers",
        &dns.addr.to_string(),
    ]);
    let to = |m: &str| vec![host(format!("80--{m}.{EDGE_DOMAIN}"))];
    for name in ["ghost1", "ghost2"] {
        let (status, _, body) = get(&edge, &to(name));
        assert_eq!(status, 502, "{body}");
    }
    let machines = || {
        let (_, _, body) = curl_full(&[&edge.admin_url("/machines")]);
        String::from_utf8_lossy(&body).to_string()
    };
    assert!(
        machines().contains("\"machine\":\"ghost1\""),
        "{}",
        machines()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while machines().contains("ghost") {
        assert!(
            Instant::now() < deadline,
            "still listed after 10 s: {}",
            machines()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, _, metrics) = curl_full(&[&edge.admin_url("/metrics")]);
    let metrics = String::from_utf8_lossy(&metrics).to_string();
    assert!(!metrics.contains("ghost"), "{metrics}");
    assert!(
        metrics.contains("cmux_machine_requests_total{machine=\"unknown\",status=\"5xx\"} 2"),
        "{metrics}"
    );
}
