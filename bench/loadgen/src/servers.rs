//! The benchmark's upstream servers: WebSocket echo, TCP sink (for CONNECT bulk) and TCP echo.
//! Each runs on a single-threaded tokio runtime: the script pins servers to one core anyway,
//! and one thread avoids cross-thread wake-ups.

use crate::{find_head_end, header_value};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn accept_loop<F, Fut>(listen: &str, handler: F) -> io::Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = io::Result<()>> + 'static,
{
    let listener = TcpListener::bind(listen).await?;
    println!("listening {}", listener.local_addr()?);
    loop {
        let (sock, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let fut = handler(sock);
        tokio::task::spawn_local(async move {
            let _ = fut.await;
        });
    }
}

pub fn run_server(kind: &str, listen: &str) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        match kind {
            "ws-echo-server" => accept_loop(listen, ws_echo_conn).await,
            "tcp-sink-server" => accept_loop(listen, tcp_sink_conn).await,
            "tcp-echo-server" => accept_loop(listen, tcp_echo_conn).await,
            _ => unreachable!(),
        }
    })
}

/// One WebSocket connection: answer the upgrade, then echo every data frame unmasked, answer
/// pings, and close on a close frame. A plain GET (no upgrade) gets a small 200 so health
/// checks through a proxy work.
async fn ws_echo_conn(mut s: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 2048];
    let mut len = 0;
    let head_end = loop {
        if let Some(end) = find_head_end(&buf[..len]) {
            break end;
        }
        if !read_more(&mut s, &mut buf, &mut len, 64 * 1024).await? {
            return Ok(());
        }
    };
    let head = &buf[..head_end];
    let Some(key) = header_value(head, "sec-websocket-key") else {
        let body = "ws echo server: send a WebSocket upgrade\n";
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(resp.as_bytes()).await?;
        return Ok(());
    };
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        crate::ws::accept_key(&key)
    );
    s.write_all(resp.as_bytes()).await?;
    buf.copy_within(head_end..len, 0);
    len -= head_end;
    // Idle connections keep a small buffer; it grows only for large frames.
    buf.truncate(2048.max(len));
    let mut out: Vec<u8> = Vec::new();
    loop {
        let mut off = 0;
        while let Some(f) = crate::ws::parse_frame(&mut buf[off..len]) {
            let payload = off + f.header_len..off + f.header_len + f.payload_len;
            match f.b0 & 0x0f {
                0x8 => {
                    crate::ws::push_header(&mut out, 0x88, f.payload_len, None);
                    out.extend_from_slice(&buf[payload]);
                    s.write_all(&out).await?;
                    let _ = s.shutdown().await;
                    return Ok(());
                }
                0x9 => {
                    crate::ws::push_header(&mut out, 0x8A, f.payload_len, None);
                    out.extend_from_slice(&buf[payload]);
                }
                0xA => {}
                _ => {
                    crate::ws::push_header(&mut out, f.b0 & 0x8f, f.payload_len, None);
                    out.extend_from_slice(&buf[payload]);
                }
            }
            off += f.header_len + f.payload_len;
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
            if out.capacity() > 64 * 1024 {
                out = Vec::new();
            }
        }
        buf.copy_within(off..len, 0);
        len -= off;
        if !read_more(&mut s, &mut buf, &mut len, 64 * 1024 * 1024).await? {
            return Ok(());
        }
    }
}

/// Reads more bytes after the first `len` of `buf`, doubling `buf` when it is full.
/// `false` when the peer closed or a full buffer reached `limit` bytes.
async fn read_more(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    len: &mut usize,
    limit: usize,
) -> io::Result<bool> {
    if *len == buf.len() {
        if *len >= limit {
            return Ok(false);
        }
        buf.resize(*len * 2, 0);
    }
    let n = s.read(&mut buf[*len..]).await?;
    *len += n;
    Ok(n > 0)
}

/// Bulk protocol: the client sends an 8-byte big-endian header. Top bit clear: "upload N
/// bytes": the server reads and discards N bytes, then answers the 8-byte count. Top bit set:
/// "download N bytes": the server writes N bytes. Repeats until EOF. Framing by length (not
/// by half-close) keeps the measurement independent of how a proxy propagates FIN.
async fn tcp_sink_conn(mut s: TcpStream) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let mut hdr = [0u8; 8];
        match s.read_exact(&mut hdr).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let word = u64::from_be_bytes(hdr);
        let download = word >> 63 == 1;
        let total = word & !(1 << 63);
        if buf.is_empty() {
            buf = vec![0x5a; 1 << 20];
        }
        let mut left = total;
        if download {
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                s.write_all(&buf[..n]).await?;
                left -= n as u64;
            }
        } else {
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = s.read(&mut buf[..want]).await?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                left -= n as u64;
            }
            s.write_all(&total.to_be_bytes()).await?;
        }
    }
}

async fn tcp_echo_conn(mut s: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            let _ = s.shutdown().await;
            return Ok(());
        }
        s.write_all(&buf[..n]).await?;
    }
}
