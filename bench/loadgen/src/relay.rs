//! `tcp-relay`: a minimal TCP forwarder, as a yardstick for cmux-proxy's tunnels. It shows
//! what a bare relay reaches on this machine with a user-space copy loop (`--mode copy`, the
//! way tokio's `copy_bidirectional` works, with `--buf`-byte buffers) or with cmux-proxy's
//! own `splice(2)` pump (`--mode splice`, the code its CONNECT tunnels run, without the
//! proxy around it). `sndbuf` caps the send buffer toward the target, as the proxy's
//! `tunnel_send_buffer_bytes` does (0 leaves it to the kernel).
//! Not used by run.sh's table; see bench/README.md ("Reference relay").

use std::io;
use std::sync::atomic::AtomicU64;
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};

pub fn run(listen: &str, to: &str, mode: &str, buf: usize, sndbuf: usize) -> io::Result<()> {
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
                if sndbuf > 0 {
                    let _ = cmux_proxy::tunnel::splice::set_send_buffer(&upstream, sndbuf);
                }
                if mode == "splice" {
                    let activity = AtomicU64::new(0);
                    let _ = cmux_proxy::tunnel::splice::splice_bidirectional(
                        &client,
                        &upstream,
                        Instant::now(),
                        &activity,
                    )
                    .await;
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
