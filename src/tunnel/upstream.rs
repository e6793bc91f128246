//! Connecting a tunnel to its target, waiting for a restarting one as the HTTP path does.

use super::splice;
use crate::error::ProxyErrorKind;
use crate::host::explain_refused;
use crate::routing::{Target, WaitPolicy};
use crate::state::ProxyState;
use pingora::protocols::Stream;
use std::io;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Most bytes kept from a client that writes before its tunnel is established.
const MAX_EARLY_BYTES: usize = 64 * 1024;

/// Why no tunnel was made.
pub enum NotConnected {
    /// The client hung up while the proxy waited for the target.
    ClientLeft,
    /// The target could not be reached: answer the client with this.
    Failed(ProxyErrorKind),
}

/// Connects to the target; while it refuses and the budget lasts, retries with backoff.
/// Bytes the client sends meanwhile are kept as early data.
pub async fn connect_waiting(
    target: &Target,
    state: &ProxyState,
    budget: Duration,
    client: &mut Stream,
    early_data: &mut Vec<u8>,
) -> Result<TcpStream, NotConnected> {
    let started = Instant::now();
    let mut refusals = 0;
    loop {
        let err = match connect(target, state).await {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        let metrics = &state.recorder.metrics;
        metrics.connect_failed((&err).into());
        let elapsed = started.elapsed();
        if !matches!(err, ProxyErrorKind::PortClosed(_)) || elapsed >= budget {
            return Err(NotConnected::Failed(match err {
                ProxyErrorKind::PortClosed(_) => {
                    let explained = explain_refused(target, &state.disclosure()).await;
                    ProxyErrorKind::PortClosed(Some(explained))
                }
                other => other,
            }));
        }
        refusals += 1;
        metrics.wait_retries.inc();
        let pause = WaitPolicy::backoff(refusals).min(budget - elapsed);
        keep_early_data(client, pause, early_data).await?;
    }
}

/// For `pause`, reads what the client sends into `early_data` (up to a head's worth).
async fn keep_early_data(
    client: &mut Stream,
    pause: Duration,
    early_data: &mut Vec<u8>,
) -> Result<(), NotConnected> {
    let mut buf = [0u8; 4096];
    let sleep = tokio::time::sleep(pause);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return Ok(()),
            read = client.read(&mut buf), if early_data.len() < MAX_EARLY_BYTES => match read {
                Ok(0) | Err(_) => return Err(NotConnected::ClientLeft),
                Ok(n) => early_data.extend_from_slice(&buf[..n]),
            },
        }
    }
}

/// Connects to the target, classifying failures as the HTTP path does, and sets the new
/// socket up for the tunnel.
pub(super) async fn connect(
    target: &Target,
    state: &ProxyState,
) -> Result<TcpStream, ProxyErrorKind> {
    let connecting = TcpStream::connect(target.addr);
    match tokio::time::timeout(state.timeouts.connect, connecting).await {
        Err(_) => Err(ProxyErrorKind::ConnectTimeout),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(ProxyErrorKind::PortClosed(None))
        }
        Ok(Err(e)) => Err(ProxyErrorKind::ConnectFailed(e.to_string())),
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            if let Some(bytes) = state.tunnel.send_buffer {
                cap_send_buffer(&stream, target, bytes);
            }
            Ok(stream)
        }
    }
}

/// Caps the send buffer of the socket to a loopback target (see
/// `app::defaults::DEFAULT_TUNNEL_SEND_BUFFER_BYTES` for the measurement). Only loopback:
/// over a real network a fixed buffer would cap throughput at buffer / round trip.
fn cap_send_buffer(stream: &TcpStream, target: &Target, bytes: usize) {
    if !target.addr.ip().is_loopback() {
        return;
    }
    if let Err(e) = splice::set_send_buffer(stream, bytes) {
        log::debug!("CONNECT to {}: {e}", target.describe());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::protocols::l4::ext::get_snd_buf;
    use std::os::fd::AsRawFd;
    use tokio::net::TcpListener;

    async fn socket_to(listener: &TcpListener) -> TcpStream {
        TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn send_buffer_is_capped_for_loopback_targets_only() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target {
            addr: listener.local_addr().unwrap(),
            workspace: None,
        };
        let stream = socket_to(&listener).await;
        let autotuned = get_snd_buf(stream.as_raw_fd()).unwrap();
        cap_send_buffer(&stream, &target, 256 * 1024);
        // Linux doubles the value for its own bookkeeping.
        assert_eq!(get_snd_buf(stream.as_raw_fd()).unwrap(), 512 * 1024);
        assert_ne!(autotuned, 512 * 1024);

        let elsewhere = Target {
            addr: "192.0.2.1:80".parse().unwrap(),
            workspace: None,
        };
        let untouched = socket_to(&listener).await;
        cap_send_buffer(&untouched, &elsewhere, 256 * 1024);
        assert_eq!(get_snd_buf(untouched.as_raw_fd()).unwrap(), autotuned);
    }
}
