//! `tcp-relay`: a minimal TCP forwarder, as a yardstick for cmux-proxy's tunnels. It shows
//! what a bare relay reaches on this machine with a user-space copy loop (`--mode copy`, the
//! way tokio's `copy_bidirectional` works) or with `splice(2)` through a pipe (`--mode
//! splice`: the bytes never enter user space, as in HAProxy's kernel splicing).
//! Not used by run.sh's table; see bench/README.md ("Reference relay").

use std::io;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};

mod sys {
    extern "C" {
        pub fn splice(
            fd_in: i32,
            off_in: *mut i64,
            fd_out: i32,
            off_out: *mut i64,
            len: usize,
            flags: u32,
        ) -> isize;
        pub fn pipe2(fds: *mut i32, flags: i32) -> i32;
        pub fn fcntl(fd: i32, cmd: i32, ...) -> i32;
        pub fn close(fd: i32) -> i32;
    }
    pub const SPLICE_F_MOVE: u32 = 1;
    pub const SPLICE_F_NONBLOCK: u32 = 2;
    pub const F_SETPIPE_SZ: i32 = 1031;
    pub const O_NONBLOCK: i32 = 0o4000;
    pub const O_CLOEXEC: i32 = 0o2000000;
}

struct Pipe {
    r: i32,
    w: i32,
}

impl Pipe {
    fn new(size: usize) -> io::Result<Pipe> {
        let mut fds = [0i32; 2];
        // SAFETY: fds has room for the two descriptors pipe2 writes.
        if unsafe { sys::pipe2(fds.as_mut_ptr(), sys::O_NONBLOCK | sys::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // A larger pipe moves more per splice call; failure just keeps the default 64 KiB.
        // SAFETY: plain fcntl on a descriptor we own.
        unsafe { sys::fcntl(fds[1], sys::F_SETPIPE_SZ, size as i32) };
        Ok(Pipe {
            r: fds[0],
            w: fds[1],
        })
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: both descriptors are owned by this Pipe.
        unsafe {
            sys::close(self.r);
            sys::close(self.w);
        }
    }
}

fn splice(from: i32, to: i32, len: usize) -> io::Result<usize> {
    // SAFETY: null offsets (sockets and pipes have none); the kernel checks the descriptors.
    let n = unsafe {
        sys::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            sys::SPLICE_F_MOVE | sys::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One direction: socket -> pipe -> socket, waiting on readiness in between.
async fn splice_one_way(src: &TcpStream, dst: &TcpStream, pipe_size: usize) -> io::Result<u64> {
    let pipe = Pipe::new(pipe_size)?;
    let mut total = 0u64;
    loop {
        src.readable().await?;
        let n = match src.try_io(Interest::READABLE, || {
            splice(src.as_raw_fd(), pipe.w, pipe_size)
        }) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let mut pending = n;
        while pending > 0 {
            dst.writable().await?;
            match dst.try_io(Interest::WRITABLE, || {
                splice(pipe.r, dst.as_raw_fd(), pending)
            }) {
                Ok(m) => pending -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        total += n as u64;
    }
    // Propagate the half-close.
    let _ = shutdown_write(dst);
    Ok(total)
}

fn shutdown_write(s: &TcpStream) -> io::Result<()> {
    extern "C" {
        fn shutdown(fd: i32, how: i32) -> i32;
    }
    // SAFETY: shutdown(SHUT_WR = 1) on a socket we hold.
    if unsafe { shutdown(s.as_raw_fd(), 1) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn run(listen: &str, to: &str, mode: &str, buf: usize) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let (to, mode) = (to.to_string(), mode.to_string());
    local.block_on(&rt, async move {
        let listener = TcpListener::bind(listen).await?;
        println!(
            "listening {} -> {to} ({mode}, {buf} bytes)",
            listener.local_addr()?
        );
        loop {
            let (mut client, _) = listener.accept().await?;
            let (to, mode) = (to.clone(), mode.clone());
            tokio::task::spawn_local(async move {
                let Ok(mut upstream) = TcpStream::connect(&to).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                if mode == "splice" {
                    let _ = tokio::join!(
                        splice_one_way(&client, &upstream, buf),
                        splice_one_way(&upstream, &client, buf)
                    );
                } else {
                    let _ = tokio::io::copy_bidirectional_with_sizes(
                        &mut client,
                        &mut upstream,
                        buf,
                        buf,
                    )
                    .await;
                }
            });
        }
    })
}
