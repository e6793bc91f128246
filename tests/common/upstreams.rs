//! The upstreams: a small real HTTP/1.1 and WebSocket server, a TCP echo server, and a
//! target that never accepts. Each binds port 0 and reports what it got.

use super::{pattern, sha256_hex};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Counters an upstream keeps about its connections and requests.
#[derive(Default)]
pub struct UpstreamStats {
    /// Connections accepted.
    pub accepted: AtomicUsize,
    /// Request heads read (counted before the answer, so a test can wait until a slow
    /// request has arrived).
    pub requests: AtomicUsize,
}

/// A small real HTTP/1.1 server with keep-alive, used as the proxy's upstream.
///
/// Routes: `/echo` (method, path, headers and body back as text), `/cookies` (two
/// `Set-Cookie` plus hop-by-hop headers), `/redirect?to=URL` (a 302 whose `Location`
/// and `Content-Location` are URL, as written), `/download/N` (N pattern bytes),
/// `/upload` (sha256 and length of the body), `/sse` (an event, a 1.5 s pause, an
/// event), `/slow` (answers after 1 s; `/slow?ms=N` after N ms), `/garbage` (invalid
/// response), `/close` (closes at once); an `Upgrade: websocket` request is echoed as a WebSocket, and its
/// `101` says which `Host` and `Origin` the handshake had (`X-Seen-Host`,
/// `X-Seen-Origin`).
pub struct Upstream {
    pub addr: SocketAddr,
    pub stats: Arc<UpstreamStats>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        Self::start_on("127.0.0.1".parse().unwrap()).await
    }

    pub async fn start_on(ip: IpAddr) -> Upstream {
        Self::start_at(SocketAddr::new(ip, 0)).await
    }

    pub async fn start_at(addr: SocketAddr) -> Upstream {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(UpstreamStats::default());
        let counters = stats.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counters.accepted.fetch_add(1, Ordering::SeqCst);
                // Head and body go out in separate writes: without this, Nagle and
                // delayed ACKs add about 40 ms to every response.
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(stream, addr, counters.clone()));
            }
        });
        Upstream { addr, stats }
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Waits (at most 10 s) until this upstream has read `n` request heads in all.
    pub async fn wait_requests(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.stats.requests.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "the upstream got {} of {n} requests within 10 s",
                self.stats.requests.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn read_request<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Option<Request> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = read_line(r, &mut line).await?;
        if n == 0 {
            return None;
        }
        let end = line == b"\r\n";
        head.extend_from_slice(&line);
        if end {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&head).ok()?;
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).to_string(),
            )
        })
        .collect();
    let mut request = Request {
        method: req.method?.to_string(),
        path: req.path?.to_string(),
        headers,
        body: Vec::new(),
    };
    if let Some(len) = request.header("content-length") {
        let len: usize = len.parse().ok()?;
        request.body.resize(len, 0);
        r.read_exact(&mut request.body).await.ok()?;
    } else if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut line = Vec::new();
            read_line(r, &mut line).await?;
            let size_text = String::from_utf8_lossy(&line);
            let size = usize::from_str_radix(size_text.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                // Trailers (none expected) up to the empty line.
                loop {
                    let mut t = Vec::new();
                    read_line(r, &mut t).await?;
                    if t == b"\r\n" {
                        break;
                    }
                }
                break;
            }
            let start = request.body.len();
            request.body.resize(start + size, 0);
            r.read_exact(&mut request.body[start..]).await.ok()?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).await.ok()?;
        }
    }
    Some(request)
}

async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>, out: &mut Vec<u8>) -> Option<usize> {
    use tokio::io::AsyncBufReadExt;
    r.read_until(b'\n', out).await.ok()
}

async fn respond<W: AsyncWrite + Unpin>(
    w: &mut W,
    head_only: bool,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    w.write_all(out.as_bytes()).await?;
    if !head_only {
        w.write_all(body).await?;
    }
    w.flush().await
}

async fn serve_connection(stream: TcpStream, local: SocketAddr, stats: Arc<UpstreamStats>) {
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader).await {
        stats.requests.fetch_add(1, Ordering::SeqCst);
        if req
            .header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        {
            let key = req.header("sec-websocket-key").unwrap_or("").to_string();
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let seen_host = req.header("host").unwrap_or("-");
            let seen_origin = req.header("origin").unwrap_or("-");
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nX-Seen-Host: {seen_host}\r\nX-Seen-Origin: {seen_origin}\r\n\r\n"
            );
            let mut stream = reader.into_inner();
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            websocket_echo(stream).await;
            return;
        }
        let head_only = req.method == "HEAD";
        let w = reader.get_mut();
        let route = req.path.split('?').next().unwrap_or_default();
        let result = match route {
            "/echo" | "/echo/" => {
                let mut body = format!("{} {}\n", req.method, req.path);
                for (n, v) in &req.headers {
                    body.push_str(&format!("{n}: {v}\n"));
                }
                body.push('\n');
                let mut bytes = body.into_bytes();
                bytes.extend_from_slice(&req.body);
                respond(
                    w,
                    head_only,
                    "200 OK",
                    &[("X-Upstream", local.to_string())],
                    &bytes,
                )
                .await
            }
            "/cookies" => {
                respond(
                    w,
                    head_only,
                    "200 OK",
                    &[
                        ("Set-Cookie", "a=1; Path=/".into()),
                        ("Set-Cookie", "b=2; Path=/".into()),
                        ("Keep-Alive", "timeout=5".into()),
                        ("Connection", "X-Hop-Secret".into()),
                        ("X-Hop-Secret", "must-not-leak".into()),
                        ("Proxy-Authenticate", "Basic".into()),
                        ("X-End-To-End", "kept".into()),
                    ],
                    b"cookies",
                )
                .await
            }
            "/redirect" => {
                let query = req.path.split_once('?').map_or("", |(_, q)| q);
                let to = query.strip_prefix("to=").unwrap_or("/").to_string();
                let headers = [("Location", to.clone()), ("Content-Location", to)];
                respond(w, head_only, "302 Found", &headers, b"moved").await
            }
            "/upload" => {
                let body = format!("{} {}", req.body.len(), sha256_hex(&req.body));
                respond(w, head_only, "200 OK", &[], body.as_bytes()).await
            }
            "/sse" => sse(w).await,
            "/slow" => {
                let ms = req
                    .path
                    .split_once("?ms=")
                    .and_then(|(_, ms)| ms.parse().ok())
                    .unwrap_or(1000);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                respond(w, head_only, "200 OK", &[], b"slow done").await
            }
            "/garbage" => {
                let _ = w.write_all(b"this is not http\r\n\r\n").await;
                return;
            }
            "/close" => return,
            p if p.starts_with("/download/") => {
                let n: usize = p["/download/".len()..].parse().unwrap_or(0);
                respond(w, head_only, "200 OK", &[], &pattern(n)).await
            }
            _ => respond(w, head_only, "404 Not Found", &[], b"not found").await,
        };
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if result.is_err() || close {
            return;
        }
    }
}

async fn sse<W: AsyncWrite + Unpin>(w: &mut W) -> std::io::Result<()> {
    w.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await?;
    let chunk = |data: &str| format!("{:x}\r\n{data}\r\n", data.len());
    w.write_all(chunk("data: first\n\n").as_bytes()).await?;
    w.flush().await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.write_all(chunk("data: second\n\n").as_bytes()).await?;
    w.write_all(b"0\r\n\r\n").await?;
    w.flush().await
}

async fn websocket_echo(stream: TcpStream) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::{Message, Role, WebSocketConfig};
    let config = WebSocketConfig {
        max_message_size: Some(64 << 20),
        max_frame_size: Some(64 << 20),
        ..Default::default()
    };
    let mut ws =
        tokio_tungstenite::WebSocketStream::from_raw_socket(stream, Role::Server, Some(config))
            .await;
    while let Some(Ok(msg)) = ws.next().await {
        let reply = match msg {
            Message::Text(_) | Message::Binary(_) => msg,
            Message::Close(_) => break,
            // tungstenite answers pings itself.
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            break;
        }
    }
}

/// A TCP echo server that echoes until the client half-closes, then half-closes too.
pub async fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A listening socket at `at` (port 0: any free port) whose accept queue is full: new
/// SYNs get no answer, so a connect to it hangs until the connector gives up. Checked
/// here before it is relied on. Keep the fillers and the listener while it is used.
pub async fn unanswering_target(
    at: SocketAddr,
) -> (SocketAddr, Vec<TcpStream>, tokio::net::TcpListener) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(at).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => return (addr, fillers, listener), // the queue is full
        }
    }
    panic!("the full-backlog trick does not hold here");
}
