//! CONNECT at an edge: the tunnel goes to the machine's proxy, which is asked with a
//! CONNECT of its own carrying the routing headers. The client gets `200` only when the
//! node answered `200`; any other answer of the node is passed on unchanged.

use super::request::ConnectRequest;
use super::upstream::connect;
use crate::edge::Edge;
use crate::error::reply::write_all_flush;
use crate::error::{ProxyError, ProxyErrorKind};
use crate::routing::{for_this_hop_only, header_text, Hop, Target};
use crate::state::ProxyState;
use pingora::protocols::Stream;
use std::fmt::Write as _;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most bytes of a node's answer head read before giving up on it.
const MAX_NODE_HEAD: usize = 16 * 1024;
/// How long a node's error answer may take to arrive in full.
const NODE_ERROR_BODY: Duration = Duration::from_secs(5);

/// What the node said to the edge's CONNECT.
pub enum NodeAnswer {
    /// `200`: the tunnel is open; bytes the node sent after its head.
    Open(TcpStream, Vec<u8>),
    /// Anything else, already passed on to the client: its status.
    Refused(u16),
}

/// The CONNECT head sent to a node: the client's head less what is for this hop only
/// and its proxy credential, then the hop's headers, and this proxy's `Via`.
fn node_head(req: &ConnectRequest, hop: &Hop, edge: &Edge, via: &str) -> String {
    let mut head = format!("CONNECT {}:{} HTTP/1.1\r\n", hop.machine, hop.port);
    for (header, value) in hop.node_headers(edge.node_token.as_ref()) {
        let _ = write!(head, "{}: {}\r\n", header.display, header_text(&value));
    }
    let mut vias = Vec::new();
    for (name, value) in &req.headers {
        let Ok(value) = value.to_str() else { continue };
        if name == http::header::VIA {
            vias.push(value);
        } else if !for_this_hop_only(name) && name != http::header::PROXY_AUTHORIZATION {
            let _ = write!(head, "{name}: {value}\r\n");
        }
    }
    vias.push(via);
    let _ = write!(head, "Via: {}\r\n\r\n", vias.join(", "));
    head
}

/// Reads the node's answer head (bounded in size; the caller bounds the time). Returns
/// the head's length, its status and every byte read.
async fn read_node_head(node: &mut TcpStream) -> io::Result<(usize, u16, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = node.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = resp.code.unwrap_or(0);
                return Ok((len, status, buf));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_NODE_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(io::ErrorKind::InvalidData.into()),
            Err(_) => return Err(io::ErrorKind::InvalidData.into()),
        }
    }
}

/// Connects to the node and asks it for the tunnel. An error is the contract's answer
/// for the client; `Refused` means the node's own answer was passed on.
pub async fn open(
    client: &mut Stream,
    req: &ConnectRequest,
    hop: &Hop,
    node: &Target,
    edge: &Edge,
    state: &ProxyState,
) -> Result<NodeAnswer, ProxyError> {
    let unreachable = |timed_out| {
        ProxyError::without_target(ProxyErrorKind::MachineUnreachable {
            machine: hop.machine.clone(),
            node: node.addr,
            timed_out,
        })
    };
    let mut upstream = match connect(node, state).await {
        Ok(s) => s,
        Err(kind) => {
            state.recorder.metrics.connect_failed((&kind).into());
            return Err(unreachable(kind == ProxyErrorKind::ConnectTimeout));
        }
    };
    let head = node_head(req, hop, edge, &state.router.loops.via);
    // The node may wait for a restarting dev server before it answers.
    let patience = state.timeouts.connect + state.router.rules.wait.max;
    let asked = async {
        upstream.write_all(head.as_bytes()).await?;
        read_node_head(&mut upstream).await
    };
    let (len, status, bytes) = match tokio::time::timeout(patience, asked).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => return Err(ProxyError::new(ProxyErrorKind::UpstreamClosed, node)),
        Err(_) => return Err(ProxyError::new(ProxyErrorKind::ReadTimeout(patience), node)),
    };
    if status == 200 {
        return Ok(NodeAnswer::Open(upstream, bytes[len..].to_vec()));
    }
    pass_on(client, &mut upstream, &bytes).await;
    Ok(NodeAnswer::Refused(status))
}

/// Passes a node's refusal on to the client as it is: what was read, then the rest
/// until the node closes (it does, after an error), bounded in time.
async fn pass_on(client: &mut Stream, node: &mut TcpStream, first: &[u8]) {
    if write_all_flush(client, first).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(NODE_ERROR_BODY, async {
        let mut chunk = vec![0u8; 8192];
        loop {
            match node.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if client.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    })
    .await;
    let _ = client.flush().await;
    let _ = client.shutdown().await;
}
