//! pingora's one-minute read timeout, measured for real: a quiet WebSocket outlives it
//! and a stalled request body gets a clear 408. Each test takes a minute; they run side
//! by side.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;

/// pingora reads a client's upgraded bytes with a 60 s timeout of its own; a WebSocket
/// quiet both ways for longer than that must still be open (an HMR socket between edits).
#[tokio::test(flavor = "multi_thread")]
async fn websocket_quiet_both_ways_past_a_minute_stays_open() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let mut req = format!("ws://{}/hmr", proxy.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Cmux-Port-Internal", up.port().parse().unwrap());
    let (mut ws, resp) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    assert_eq!(resp.status(), 101);

    tokio::time::sleep(Duration::from_secs(65)).await;
    ws.send(Message::Text("after 65 s".into())).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("echo in time")
        .expect("socket still open")
        .expect("a message");
    assert_eq!(echoed, Message::Text("after 65 s".into()));
    ws.close(None).await.unwrap();
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
                "POST /upload HTTP/1.1\r\nHost: app\r\nX-Cmux-Port-Internal: {}\r\n\
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
