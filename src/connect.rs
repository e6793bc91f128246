//! `CONNECT` tunnels: pingora does not proxy CONNECT, so this module serves it on the
//! same connection the HTTP proxy uses.
//!
//! The order matters to clients: read the request head (bounded in size and time),
//! route it with the same rules as HTTP, connect to the target, and only then answer
//! `200 Connection Established`. A failure is answered with the same status and body as
//! the HTTP path would give. Bytes the client sent right after the head go upstream
//! before anything else, then bytes are copied both ways, half-close included.

use crate::error::{raw_response, BodyFormat, ProxyError, ProxyErrorKind};
use crate::route::{self, RouteError, RouteRequest, Target};
use pingora::protocols::Stream;
use std::io;
use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest CONNECT request head accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header lines accepted in a CONNECT request head.
const MAX_HEADERS: usize = 128;
/// Copy buffer per direction: 64 KiB moved about twice the bytes per second of tokio's
/// default 8 KiB in a bulk transfer on this kind of machine.
const COPY_BUFFER_BYTES: usize = 64 * 1024;

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection Established\r\n\r\n";

/// What the tunnel needs from the proxy's settings.
#[derive(Debug, Clone)]
pub struct TunnelSettings {
    pub upstream_host: IpAddr,
    pub connect_timeout: Duration,
    pub head_timeout: Duration,
}

/// How a tunnel ended, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TunnelStats {
    pub client_to_target: u64,
    pub target_to_client: u64,
}

/// A CONNECT request head, read and parsed.
struct ConnectHead {
    target: Result<Target, RouteError>,
    format: BodyFormat,
    /// Bytes that followed the head in the same reads.
    early_data: Vec<u8>,
}

/// Why no head could be read.
enum HeadError {
    /// The client went away or the read failed: nobody to answer.
    Gone,
    TooLarge,
    Malformed(String),
    TimedOut,
}

/// Serves one CONNECT request on `client`, whose next bytes are `CONNECT `.
/// The connection is not reused afterwards.
pub async fn serve(mut client: Stream, settings: &TunnelSettings) -> Option<TunnelStats> {
    let head = match tokio::time::timeout(settings.head_timeout, read_head(&mut client)).await {
        Ok(Ok(bytes)) => parse_head(bytes, settings.upstream_host),
        Ok(Err(HeadError::Gone)) => return None,
        Ok(Err(e)) => {
            reject(&mut client, e).await;
            return None;
        }
        Err(_) => {
            reject(&mut client, HeadError::TimedOut).await;
            return None;
        }
    };
    let head = match head {
        Ok(head) => head,
        Err(e) => {
            reject(&mut client, e).await;
            return None;
        }
    };
    let target = match head.target {
        Ok(t) => t,
        Err(e) => {
            answer_and_close(&mut client, &raw_response(&e.into(), head.format)).await;
            return None;
        }
    };

    let mut upstream = match connect(&target, settings.connect_timeout).await {
        Ok(s) => s,
        Err(kind) => {
            let err = ProxyError::new(kind, &target);
            log::debug!("CONNECT {}: {}", target.describe(), err.message());
            answer_and_close(&mut client, &raw_response(&err, head.format)).await;
            return None;
        }
    };

    if write_all_flush(&mut client, ESTABLISHED).await.is_err() {
        return None;
    }
    if !head.early_data.is_empty() && upstream.write_all(&head.early_data).await.is_err() {
        return None;
    }
    let early = head.early_data.len() as u64;
    match tokio::io::copy_bidirectional_with_sizes(
        &mut client,
        &mut upstream,
        COPY_BUFFER_BYTES,
        COPY_BUFFER_BYTES,
    )
    .await
    {
        Ok((up, down)) => Some(TunnelStats {
            client_to_target: up + early,
            target_to_client: down,
        }),
        Err(e) => {
            log::debug!("CONNECT tunnel to {} ended: {e}", target.describe());
            None
        }
    }
}

async fn write_all_flush<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

async fn reject(client: &mut Stream, e: HeadError) {
    let (status, reason, message) = match e {
        HeadError::Gone => return,
        HeadError::TooLarge => (
            431,
            "Request Header Fields Too Large",
            format!("CONNECT request head larger than {MAX_HEAD_BYTES} bytes"),
        ),
        HeadError::Malformed(why) => (
            400,
            "Bad Request",
            format!("malformed CONNECT request: {why}"),
        ),
        HeadError::TimedOut => (
            408,
            "Request Timeout",
            "CONNECT request head not received in time".to_string(),
        ),
    };
    let body = message + "\n";
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    answer_and_close(client, response.as_bytes()).await;
}

/// Writes a final response, then closes gently: half-close and discard what the client
/// is still sending for a moment, so that unread bytes do not turn the close into a
/// reset that destroys the response before the client reads it.
async fn answer_and_close(client: &mut Stream, response: &[u8]) {
    const LINGER: Duration = Duration::from_secs(1);
    const LINGER_BYTES: usize = 1 << 20;
    if write_all_flush(client, response).await.is_err() {
        return;
    }
    let _ = client.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 8192];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// Reads until the end of the request head (`\r\n\r\n`), at most `MAX_HEAD_BYTES`.
async fn read_head<S: AsyncRead + Unpin>(client: &mut S) -> Result<Vec<u8>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await.map_err(|_| HeadError::Gone)?;
        if n == 0 {
            return Err(HeadError::Gone);
        }
        let search_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if buf[search_from..].windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(buf);
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

fn parse_head(bytes: Vec<u8>, default_host: IpAddr) -> Result<ConnectHead, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(&bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(HeadError::Malformed("incomplete request head".into()))
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let text = |v: &[u8]| std::str::from_utf8(v).unwrap_or("\u{FFFD}").to_string();
    let mut ports = Vec::new();
    let mut workspaces = Vec::new();
    let mut host = None;
    let mut accept = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case(route::PORT_HEADER) {
            ports.push(text(h.value));
        } else if h.name.eq_ignore_ascii_case(route::WORKSPACE_HEADER) {
            workspaces.push(text(h.value));
        } else if h.name.eq_ignore_ascii_case("host") {
            host.get_or_insert_with(|| text(h.value));
        } else if h.name.eq_ignore_ascii_case("accept") {
            accept.get_or_insert_with(|| text(h.value));
        }
    }
    let ports: Vec<&str> = ports.iter().map(String::as_str).collect();
    let workspaces: Vec<&str> = workspaces.iter().map(String::as_str).collect();
    let target = route::resolve(
        RouteRequest {
            port_values: &ports,
            workspace_values: &workspaces,
            host: host.as_deref(),
        },
        default_host,
    );
    Ok(ConnectHead {
        target,
        format: BodyFormat::from_accept(accept.as_deref()),
        early_data: bytes[head_len..].to_vec(),
    })
}

/// Connects to the target, classifying failures as the HTTP path does.
async fn connect(target: &Target, timeout: Duration) -> Result<TcpStream, ProxyErrorKind> {
    match tokio::time::timeout(timeout, TcpStream::connect(target.addr)).await {
        Err(_) => Err(ProxyErrorKind::ConnectTimeout),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(ProxyErrorKind::PortClosed)
        }
        Ok(Err(e)) => Err(ProxyErrorKind::ConnectFailed(e.to_string())),
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}
