//! Zero-copy tunnel relaying with `splice(2)`: bytes go socket -> pipe -> socket inside
//! the kernel, never through a user-space buffer.
//!
//! Measured on this kind of machine with a bare relay: 205 µs of CPU per MB moved
//! against 344 µs for a read/write loop with 64 KiB buffers, and no per-tunnel 64 KiB
//! user buffers (a copy loop holds two, zeroed, for the tunnel's whole life).

use crate::host::sys;
use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Pipe capacity asked for (the kernel may give less): larger pipes move more per call.
const PIPE_BYTES: usize = 1 << 20;

/// A pipe, both ends closed on drop.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (read, write) = sys::pipe()?;
        // Best effort: a smaller pipe still works, only with more calls.
        let _ = sys::set_pipe_size(write.as_fd(), PIPE_BYTES);
        Ok(Pipe { read, write })
    }
}

/// Moves bytes from `src` to `dst` until `src` reaches end-of-file, then half-closes
/// `dst`. Stamps `last_activity` (ms since `started`) whenever bytes move.
async fn pump(
    src: &TcpStream,
    dst: &TcpStream,
    started: Instant,
    last_activity: &AtomicU64,
) -> io::Result<u64> {
    let pipe = Pipe::new()?;
    let mut total = 0u64;
    loop {
        let n = loop {
            src.readable().await?;
            match src.try_io(Interest::READABLE, || {
                sys::splice(src.as_fd(), pipe.write.as_fd(), PIPE_BYTES)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            sys::shutdown_write(dst.as_fd());
            return Ok(total);
        }
        let mut left = n;
        while left > 0 {
            dst.writable().await?;
            match dst.try_io(Interest::WRITABLE, || {
                sys::splice(pipe.read.as_fd(), dst.as_fd(), left)
            }) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        total += n as u64;
        last_activity.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Copies both ways until both directions reached end-of-file, propagating each
/// half-close. Returns the bytes moved (a to b, b to a).
pub async fn splice_bidirectional(
    a: &TcpStream,
    b: &TcpStream,
    started: Instant,
    last_activity: &AtomicU64,
) -> io::Result<(u64, u64)> {
    tokio::try_join!(
        pump(a, b, started, last_activity),
        pump(b, a, started, last_activity)
    )
}

/// Sets the socket's send buffer (SO_SNDBUF; Linux doubles the value for its own
/// bookkeeping). A fixed size also turns the kernel's autotuning off for this socket; see
/// `app::defaults::DEFAULT_TUNNEL_SEND_BUFFER_BYTES` for why tunnels want that.
pub fn set_send_buffer(socket: &TcpStream, bytes: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    pingora::protocols::l4::ext::set_snd_buf(socket.as_raw_fd(), bytes).map_err(io::Error::other)
}

/// A second, tokio-registered handle on a socket that pingora owns, so that pingora's
/// stream can be dropped and the socket used with `splice`. The socket stays open as
/// long as either handle does; pingora's stream does not shut it down when dropped.
pub fn take_socket(fd: RawFd) -> io::Result<TcpStream> {
    let std_stream = std::net::TcpStream::from(sys::duplicate(fd)?);
    std_stream.set_nonblocking(true)?;
    TcpStream::from_std(std_stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A connected pair of loopback sockets.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn moves_bytes_both_ways_and_propagates_half_close() {
        let (mut client, proxy_client_side) = pair().await;
        let (proxy_upstream_side, mut upstream) = pair().await;
        let activity = AtomicU64::new(0);
        let relay = tokio::spawn(async move {
            splice_bidirectional(
                &proxy_client_side,
                &proxy_upstream_side,
                Instant::now(),
                &activity,
            )
            .await
        });
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        upstream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, data);
        upstream.write_all(b"reply after half-close").await.unwrap();
        upstream.shutdown().await.unwrap();
        assert_eq!(writer.await.unwrap(), b"reply after half-close");
        let (up, down) = relay.await.unwrap().unwrap();
        assert_eq!((up, down), (3_000_000, 22));
    }
}
