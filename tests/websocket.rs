//! WebSocket upgrades through the proxy, with a real client and a real echo upstream.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{Message, WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(proxy: &Proxy, port: &str, workspace: Option<&str>) -> Ws {
    let mut req = format!("ws://{}/socket", proxy.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Cmux-Port-Internal", port.parse().unwrap());
    if let Some(ws) = workspace {
        req.headers_mut()
            .insert("X-Cmux-Workspace-Internal", ws.parse().unwrap());
    }
    let config = WebSocketConfig {
        max_message_size: Some(64 << 20),
        max_frame_size: Some(64 << 20),
        ..Default::default()
    };
    let (ws, resp) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_with_config(req, Some(config), false),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    assert_eq!(resp.status(), 101);
    assert_eq!(
        resp.headers()
            .get("upgrade")
            .map(|v| v.to_str().unwrap().to_ascii_lowercase()),
        Some("websocket".into())
    );
    ws
}

async fn next(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("message in time")
        .expect("stream open")
        .expect("valid frame")
}

#[tokio::test(flavor = "multi_thread")]
async fn text_binary_and_ping() {
    let up = Upstream::start().await;
    let proxy = Proxy::start(&[]);
    let mut ws = connect(&proxy, &up.port(), None).await;

    ws.send(Message::Text("hello through the proxy".into()))
        .await
        .unwrap();
    assert_eq!(
        next(&mut ws).await,
        Message::Text("hello through the proxy".into())
    );

    let big: Vec<u8> = pattern(1 << 20);
    ws.send(Message::Binary(big.clone())).await.unwrap();
    match next(&mut ws).await {
        Message::Binary(got) => {
            assert_eq!(got.len(), big.len());
            assert_eq!(sha256_hex(&got), sha256_hex(&big));
        }
        other => panic!("expected binary, got {other:?}"),
    }

    ws.send(Message::Ping(b"are you there".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        next(&mut ws).await,
        Message::Pong(b"are you there".to_vec())
    );
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_websocket_and_idle_survival() {
    let up = Upstream::start_on("127.18.0.3".parse().unwrap()).await;
    let proxy = Proxy::start(&[]);
    let mut ws = connect(&proxy, &up.port(), Some("workspace-3")).await;
    // Quiet for a while: no read or idle timeout may cut it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ws.send(Message::Text("still here".into())).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Text("still here".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_concurrent_clients_get_their_own_answers() {
    let up = Upstream::start().await;
    let proxy = std::sync::Arc::new(Proxy::start(&[]));
    let mut tasks = Vec::new();
    for client in 0..16 {
        let proxy = proxy.clone();
        let port = up.port();
        tasks.push(tokio::spawn(async move {
            let mut ws = connect(&proxy, &port, None).await;
            for i in 0..50 {
                let msg = format!("client {client} message {i}");
                ws.send(Message::Text(msg.clone())).await.unwrap();
                assert_eq!(next(&mut ws).await, Message::Text(msg));
            }
            ws.close(None).await.unwrap();
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("client finished in time")
            .expect("client ok");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_websocket_gets_502() {
    let proxy = Proxy::start(&[]);
    let port = free_port().to_string();
    let mut req = format!("ws://{}/socket", proxy.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Cmux-Port-Internal", port.parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            assert_eq!(resp.status(), 502);
            let body =
                String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).to_string();
            assert!(body.contains(&format!("127.0.0.1:{port}")), "{body}");
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}
