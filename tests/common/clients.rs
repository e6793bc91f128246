//! The clients: curl (bounded, never through a proxy from the environment), raw TCP reads
//! with bounds that fail the test when they are reached, and the WebSocket handshake.

use super::tempdir;
use std::process::{Command, Output};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Runs curl with a bounded time and returns its output.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "--noproxy", "*"])
        .args(args)
        .output()
        .expect("run curl")
}

/// curl, returning (status, headers, body); `-i` style parsing of the last response.
pub fn curl_full(args: &[&str]) -> (u16, String, Vec<u8>) {
    let dir = tempdir();
    let head_path = dir.join("head");
    let mut all = vec!["-D", head_path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = curl(&all);
    let head = std::fs::read_to_string(&head_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let last = head
        .split("\r\n\r\n")
        .filter(|b| b.starts_with("HTTP/"))
        .last()
        .unwrap_or("")
        .to_string();
    let status = last
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, last, out.stdout)
}

/// All values of a header in a raw response head, in order (name case-insensitive).
pub fn header_values(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// Reads a response head (up to the blank line) from a raw stream, bounded in time.
pub async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    })
    .await
    .expect("response head in time");
    String::from_utf8_lossy(&head).to_string()
}

/// Reads to EOF, bounded in time.
pub async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("EOF in time")
        .expect("read");
    out
}

/// Reads until the peer closes or resets, keeping what arrived: for answers that are
/// followed by a close that may turn into a reset. The close must come within 10 s:
/// a peer that neither answers nor closes fails the test (never an empty "answer").
pub async fn read_until_close(s: &mut TcpStream) -> Vec<u8> {
    read_until_close_within(s, Duration::from_secs(10)).await
}

/// [`read_until_close`] with its own bound.
pub async fn read_until_close_within(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the peer did not close within {limit:?}; got {:?}",
        String::from_utf8_lossy(&out)
    );
    out
}

/// A WebSocket handshake that must finish within 10 s and be answered 101.
pub async fn ws_handshake(
    req: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    let (ws, resp) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    assert_eq!(resp.status(), 101);
    (ws, resp)
}
