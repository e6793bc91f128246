//! The load clients: WebSocket ping-pong, CONNECT (or direct) bulk transfer, idle WebSockets.
//! Single-threaded: the script pins the load to one core, and a current-thread runtime has the
//! lowest cost per message (no cross-thread wake-ups).

use crate::{find_head_end, ws};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

fn routing_header(port: Option<u16>) -> String {
    port.map(|p| format!("X-Cmux-Port-Internal: {p}\r\n"))
        .unwrap_or_default()
}

/// Sends `CONNECT` with the routing header and waits for the 200 (read byte by byte, so no
/// tunnel byte is consumed).
async fn connect_tunnel(s: &mut TcpStream, port: u16) -> io::Result<()> {
    let req = format!(
        "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Cmux-Port-Internal: {port}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut head = Vec::new();
    while find_head_end(&head).is_none() {
        let b = s.read_u8().await?;
        head.push(b);
        if head.len() > 8192 {
            return Err(other("CONNECT answer too long".into()));
        }
    }
    if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
        return Err(other(format!(
            "CONNECT answered {:?}",
            String::from_utf8_lossy(&head)
        )));
    }
    Ok(())
}

/// Connects and performs the WebSocket handshake, optionally with the routing header, or
/// (`via_connect`) inside a CONNECT tunnel to `port`.
pub async fn ws_connect(addr: &str, port: Option<u16>, via_connect: bool) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let port = match (via_connect, port) {
        (true, Some(p)) => {
            connect_tunnel(&mut s, p).await?;
            None
        }
        (true, None) => return Err(other("--via-connect needs --port".into())),
        (false, p) => p,
    };
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
        ws::CLIENT_KEY,
        routing_header(port)
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    let end = loop {
        if let Some(end) = find_head_end(&buf[..len]) {
            break end;
        }
        if len == buf.len() {
            return Err(other("handshake response head too long".into()));
        }
        let n = s.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err(other(format!(
                "closed during handshake: {:?}",
                String::from_utf8_lossy(&buf[..len])
            )));
        }
        len += n;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    if !head.starts_with("HTTP/1.1 101") {
        return Err(other(format!(
            "no 101: {:?}",
            head.lines().next().unwrap_or("")
        )));
    }
    let expect = ws::accept_key(ws::CLIENT_KEY);
    if crate::header_value(&buf[..end], "sec-websocket-accept").as_deref() != Some(&expect) {
        return Err(other("bad Sec-WebSocket-Accept".into()));
    }
    if len != end {
        return Err(other("unexpected bytes after the 101 head".into()));
    }
    Ok(s)
}

async fn round_trip(s: &mut TcpStream, frame: &[u8], reply: &mut [u8]) -> io::Result<()> {
    s.write_all(frame).await?;
    s.read_exact(reply).await?;
    Ok(())
}

fn rt() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

/// `conns` connections, each with one message in flight: send, wait for the echo, repeat.
/// Prints `msgs= secs= rate= p50_us= p99_us= p999_us=` on one line.
pub fn ws_pingpong(
    addr: &str,
    port: Option<u16>,
    conns: usize,
    size: usize,
    secs: f64,
    warmup: f64,
    via_connect: bool,
) -> io::Result<()> {
    let rt = rt()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut streams = Vec::with_capacity(conns);
        for _ in 0..conns {
            streams.push(ws_connect(addr, port, via_connect).await?);
        }
        let payload: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        let frame = Rc::new(ws::client_frame(&payload));
        let reply_len = ws::server_frame_len(size);
        // Check the first echo on each connection before timing anything.
        for s in &mut streams {
            let mut reply = vec![0u8; reply_len];
            round_trip(s, &frame, &mut reply).await?;
            let mut r = reply.clone();
            let f = ws::parse_frame(&mut r).ok_or_else(|| other("bad echo frame".into()))?;
            if f.b0 != 0x82 || f.payload_len != size || r[f.header_len..] != payload[..] {
                return Err(other("echo does not match the message".into()));
            }
        }
        let start = Instant::now();
        let measure_from = start + Duration::from_secs_f64(warmup);
        let deadline = measure_from + Duration::from_secs_f64(secs);
        let all: Rc<RefCell<Vec<u32>>> = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for mut s in streams {
            let frame = frame.clone();
            let all = all.clone();
            tasks.push(tokio::task::spawn_local(async move {
                let mut reply = vec![0u8; reply_len];
                let mut rtts: Vec<u32> = Vec::with_capacity(1 << 16);
                loop {
                    let t0 = Instant::now();
                    if t0 >= deadline {
                        break;
                    }
                    round_trip(&mut s, &frame, &mut reply).await?;
                    if t0 >= measure_from {
                        let dt = t0.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32;
                        rtts.push(dt);
                    }
                }
                all.borrow_mut().extend_from_slice(&rtts);
                Ok::<_, io::Error>(s)
            }));
        }
        let mut keep = Vec::new();
        for t in tasks {
            keep.push(t.await.map_err(|e| other(e.to_string()))??);
        }
        let mut v = all.borrow_mut();
        v.sort_unstable();
        println!(
            "msgs={} secs={:.3} rate={:.1} p50_us={:.1} p99_us={:.1} p999_us={:.1}",
            v.len(),
            secs,
            v.len() as f64 / secs,
            percentile(&v, 50.0),
            percentile(&v, 99.0),
            percentile(&v, 99.9)
        );
        drop(keep);
        Ok(())
    })
}

/// Bulk transfer through one connection: direct to the sink, or through a proxy's CONNECT
/// tunnel when `connect_port` is set. Blocking std I/O: one connection, nothing to multiplex.
/// Prints `bytes= secs= mbps=` (MB = 10^6 bytes).
pub fn connect_bulk(
    addr: &str,
    connect_port: Option<u16>,
    bytes: u64,
    download: bool,
    chunk: usize,
) -> io::Result<()> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    if let Some(p) = connect_port {
        let req = format!(
            "CONNECT 127.0.0.1:{p} HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nX-Cmux-Port-Internal: {p}\r\n\r\n"
        );
        s.write_all(req.as_bytes())?;
        // Read the answer byte by byte so no tunnel byte is consumed by mistake.
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while find_head_end(&head).is_none() {
            if s.read(&mut b)? == 0 || head.len() > 8192 {
                return Err(other(format!(
                    "CONNECT refused: {:?}",
                    String::from_utf8_lossy(&head)
                )));
            }
            head.push(b[0]);
        }
        let status = String::from_utf8_lossy(&head);
        if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
            return Err(other(format!(
                "CONNECT answered {:?}",
                status.lines().next()
            )));
        }
    }
    let mut buf = vec![0xa5u8; chunk];
    let word = bytes | if download { 1 << 63 } else { 0 };
    let t0 = Instant::now();
    s.write_all(&word.to_be_bytes())?;
    if download {
        let mut left = bytes;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = s.read(&mut buf[..want])?;
            if n == 0 {
                return Err(other(format!("EOF with {left} bytes to go")));
            }
            left -= n as u64;
        }
    } else {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            s.write_all(&buf[..n])?;
            left -= n as u64;
        }
        let mut ack = [0u8; 8];
        s.read_exact(&mut ack)?;
        if u64::from_be_bytes(ack) != bytes {
            return Err(other("sink acknowledged a different byte count".into()));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "bytes={bytes} secs={secs:.4} mbps={:.1}",
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

/// Opens `conns` WebSocket connections (each exchanges one message, then stays idle), prints
/// `ready N` (and creates `ready_file`), then holds them for `hold` seconds.
pub fn idle_ws(
    addr: &str,
    port: Option<u16>,
    conns: usize,
    concurrency: usize,
    hold: f64,
    ready_file: Option<&str>,
    via_connect: bool,
) -> io::Result<()> {
    let rt = rt()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let next = Rc::new(std::cell::Cell::new(0usize));
        let t0 = Instant::now();
        let frame = Rc::new(ws::client_frame(b"hello, idle"));
        let reply_len = ws::server_frame_len(11);
        let mut workers = Vec::new();
        for _ in 0..concurrency.max(1) {
            let next = next.clone();
            let addr = addr.to_string();
            let frame = frame.clone();
            workers.push(tokio::task::spawn_local(async move {
                let mut held = Vec::new();
                loop {
                    let i = next.get();
                    if i >= conns {
                        break;
                    }
                    next.set(i + 1);
                    let open = async {
                        let mut s = ws_connect(&addr, port, via_connect).await?;
                        let mut reply = vec![0u8; reply_len];
                        round_trip(&mut s, &frame, &mut reply).await?;
                        Ok::<_, io::Error>(s)
                    };
                    match tokio::time::timeout(Duration::from_secs(20), open).await {
                        Ok(Ok(s)) => held.push(s),
                        Ok(Err(e)) => return Err(e),
                        Err(_) => return Err(other("timed out opening a connection".into())),
                    }
                }
                Ok(held)
            }));
        }
        let mut held = Vec::new();
        for w in workers {
            held.extend(w.await.map_err(|e| other(e.to_string()))??);
        }
        println!("ready {} in {:.2}s", held.len(), t0.elapsed().as_secs_f64());
        if let Some(f) = ready_file {
            std::fs::write(f, format!("{}\n", held.len()))?;
        }
        // Hold until the timeout; the script normally ends us earlier with SIGTERM.
        tokio::time::sleep(Duration::from_secs_f64(hold)).await;
        drop(held);
        Ok(())
    })
}

/// Reads one HTTP/1.1 response (Content-Length or chunked body) from `s`; `buf` carries
/// bytes read past the previous response. Returns the status code.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<u16> {
    async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut tmp = [0u8; 4096];
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Err(other("connection closed mid-response".into()));
        }
        buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }
    let head_end = loop {
        if let Some(end) = find_head_end(buf) {
            break end;
        }
        if buf.len() > 64 * 1024 {
            return Err(other("response head too long".into()));
        }
        fill(s, buf).await?;
    };
    let head = &buf[..head_end];
    let status = std::str::from_utf8(head.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| other("bad status line".into()))?;
    let chunked = crate::header_value(head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = crate::header_value(head, "content-length").and_then(|v| v.parse::<usize>().ok());
    buf.drain(..head_end);
    if chunked {
        // size line, data, CRLF; ... a zero-size chunk, then (no trailers) a CRLF.
        loop {
            let line_end = loop {
                if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                fill(s, buf).await?;
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]);
            let size_hex = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| other(format!("bad chunk size {size_hex:?}")))?;
            let need = line_end + 2 + size + 2;
            while buf.len() < need {
                fill(s, buf).await?;
            }
            buf.drain(..need);
            if size == 0 {
                return Ok(status);
            }
        }
    }
    let len = length.ok_or_else(|| other("response with neither length nor chunks".into()))?;
    while buf.len() < len {
        fill(s, buf).await?;
    }
    buf.drain(..len);
    Ok(status)
}

/// Small requests at a fixed rate (open loop): request i is due at start + i / rate and
/// goes out on connection i % conns; the first `warmup` seconds at that rate are not
/// recorded (JIT-compiled proxies, lazily grown pools). Its latency runs from when it was sent, or from when
/// it was due if its connection was still busy then (a stall counts against every request
/// it delays, not only the one that met it; timer slack before an on-time send does not
/// count). Prints `reqs= errors= secs= rate= p50_us= p99_us= p999_us= max_us=`; with
/// `timeline`, also each second's p99 and maximum on stderr (are slow requests spread out
/// or bunched?).
pub struct RateOpts<'a> {
    pub addr: &'a str,
    pub port: Option<u16>,
    pub path: &'a str,
    pub rate: f64,
    pub secs: f64,
    pub warmup: f64,
    pub conns: usize,
    pub timeline: bool,
}

pub fn http_rate(o: &RateOpts) -> io::Result<()> {
    let RateOpts {
        addr,
        port,
        path,
        rate,
        secs,
        warmup,
        conns,
        timeline,
    } = *o;
    let rt = rt()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let conns = conns.max(1);
        let skip = (rate * warmup).round() as usize;
        let total = skip + (rate * secs).round().max(1.0) as usize;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n",
            routing_header(port)
        );
        let req = Rc::new(req.into_bytes());
        let mut streams = Vec::with_capacity(conns);
        for _ in 0..conns {
            let s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        // One request per connection first (opens the proxy's upstream connections).
        let mut buf = Vec::new();
        for s in &mut streams {
            s.write_all(&req).await?;
            read_response(s, &mut buf).await?;
            buf.clear();
        }
        let start = tokio::time::Instant::now() + Duration::from_millis(50);
        let gap = Duration::from_secs_f64(1.0 / rate);
        let all: Rc<RefCell<(Vec<u32>, usize)>> = Rc::new(RefCell::new((Vec::new(), 0)));
        // (second of the run, latency) of every request, for --timeline.
        let series: Rc<RefCell<Vec<(u32, u32)>>> = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for (k, mut s) in streams.into_iter().enumerate() {
            let req = req.clone();
            let all = all.clone();
            let series = series.clone();
            tasks.push(tokio::task::spawn_local(async move {
                let mut lat: Vec<u32> = Vec::with_capacity(total / conns + 1);
                let mut when: Vec<(u32, u32)> = Vec::new();
                let mut errors = 0usize;
                let mut buf = Vec::with_capacity(4096);
                let mut i = k;
                while i < total {
                    let due = start + gap * i as u32;
                    let now = tokio::time::Instant::now();
                    let t0 = if now < due {
                        tokio::time::sleep_until(due).await;
                        tokio::time::Instant::now()
                    } else {
                        due // late: the connection was busy when this one was due
                    };
                    let ok = async {
                        s.write_all(&req).await?;
                        read_response(&mut s, &mut buf).await
                    };
                    match tokio::time::timeout(Duration::from_secs(10), ok).await {
                        Ok(Ok(200)) if i < skip => {}
                        Ok(Ok(200)) => {
                            let dt = t0.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32;
                            lat.push(dt);
                            if timeline {
                                when.push((((i - skip) as f64 / rate) as u32, dt));
                            }
                        }
                        Ok(Ok(_)) => errors += 1,
                        _ => {
                            errors += 1;
                            break; // the connection's state is unknown now
                        }
                    }
                    i += conns;
                }
                let mut a = all.borrow_mut();
                a.0.extend_from_slice(&lat);
                series.borrow_mut().extend_from_slice(&when);
                a.1 += errors;
            }));
        }
        for t in tasks {
            t.await.map_err(|e| other(e.to_string()))?;
        }
        let elapsed = start.elapsed().as_secs_f64() - warmup;
        let mut a = all.borrow_mut();
        let errors = a.1;
        if timeline {
            // Per second of the run: requests, p99 and the slowest, on stderr.
            let mut by_sec: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
            for &(sec, dt) in series.borrow().iter() {
                by_sec.entry(sec).or_default().push(dt);
            }
            for (sec, mut v) in by_sec {
                v.sort_unstable();
                eprintln!(
                    "second {sec}: {} requests, p99 {:.0} µs, max {:.0} µs",
                    v.len(),
                    percentile(&v, 99.0),
                    percentile(&v, 100.0)
                );
            }
        }
        let v = &mut a.0;
        v.sort_unstable();
        println!(
            "reqs={} errors={} secs={:.3} rate={:.1} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1}",
            v.len(),
            errors,
            elapsed,
            v.len() as f64 / elapsed,
            percentile(v, 50.0),
            percentile(v, 99.0),
            percentile(v, 99.9),
            percentile(v, 100.0)
        );
        Ok(())
    })
}
