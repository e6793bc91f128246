//! Test fixtures: the real proxy binary, a small real HTTP/WebSocket upstream, and curl.
//!
//! Every server binds port 0 (or a workspace address on port 0) and reports the port it
//! got; every wait is bounded.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub const PROXY_BIN: &str = env!("CARGO_BIN_EXE_cmux-proxy");

/// A port that was free a moment ago (pingora cannot listen on port 0 and report it).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The proxy binary running as a child process; killed on drop.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener (health, metrics, ports).
    pub admin: SocketAddr,
}

impl Proxy {
    /// Starts the proxy on a free loopback port with extra arguments; the admin
    /// listener gets a free port too, and the access log is off unless `extra` says.
    pub fn start(extra: &[&str]) -> Proxy {
        let port = free_port();
        Proxy::start_at(format!("127.0.0.1:{port}").parse().unwrap(), extra)
    }

    /// Starts the proxy listening on `addr`, as [`Proxy::start`] does.
    pub fn start_at(addr: SocketAddr, extra: &[&str]) -> Proxy {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(PROXY_BIN);
        cmd.arg("--listen")
            .arg(addr.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .args(extra)
            .env_remove("CMUX_LISTEN")
            .env_remove("CMUX_UPSTREAM_HOST")
            .env_remove("CMUX_ADMIN_LISTEN")
            .env_remove("CMUX_MODE")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if !extra.contains(&"--access-log") {
            cmd.args(["--access-log", "off"]);
        }
        let child = cmd.spawn().expect("start cmux-proxy");
        let proxy = Proxy { child, addr, admin };
        proxy.wait_ready();
        proxy
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("proxy did not start listening on {}", self.addr);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// A fresh temporary directory.
pub fn tempdir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cmux-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The deterministic byte pattern the upstream serves for `/download/N`.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Counters an upstream keeps about its connections.
#[derive(Default)]
pub struct UpstreamStats {
    pub accepted: AtomicUsize,
}

/// A small real HTTP/1.1 server with keep-alive, used as the proxy's upstream.
///
/// Routes: `/echo` (method, path, headers and body back as text), `/cookies` (two
/// `Set-Cookie` plus hop-by-hop headers), `/redirect?to=URL` (a 302 whose `Location`
/// and `Content-Location` are URL, as written), `/download/N` (N pattern bytes),
/// `/upload` (sha256 and length of the body), `/sse` (an event, a 1.5 s pause, an
/// event), `/slow` (answers after 1 s), `/garbage` (invalid response), `/close`
/// (closes at once); an `Upgrade: websocket` request is echoed as a WebSocket, and its
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
                tokio::spawn(serve_connection(stream, addr));
            }
        });
        Upstream { addr, stats }
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
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

async fn serve_connection(stream: TcpStream, local: SocketAddr) {
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader).await {
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
                tokio::time::sleep(Duration::from_secs(1)).await;
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

/// Reads until the peer closes (or resets, or 10 s pass), keeping what arrived: for
/// answers that are followed by a close that may turn into a reset.
pub async fn read_until_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await;
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
