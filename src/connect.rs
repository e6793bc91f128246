//! `CONNECT` tunnels: pingora does not proxy CONNECT, so this module serves it on the
//! same connection the HTTP proxy uses.
//!
//! The order matters to clients: parse the request head (already read, bounded in size
//! and time, by the dispatcher), route it with the same rules as HTTP, connect to the
//! target (waiting for a restarting one like HTTP does), and only then answer
//! `200 Connection Established`. A failure is answered with the same status and body as
//! the HTTP path would give. Bytes the client sent right after the head go upstream
//! before anything else, then bytes move both ways with `splice(2)` (see
//! [`crate::splice`]), half-close included.

use crate::access_log::Entry;
use crate::error::{final_reply, raw_response, BodyFormat, ProxyError, ProxyErrorKind};
use crate::head;
use crate::metrics::ConnectFailure;
use crate::proxy::explain;
use crate::route::{self, RouteRequest, Target};
use crate::splice;
use crate::state::{ProxyState, WaitPolicy};
use crate::tunnels::TunnelKind;
use pingora::protocols::l4::stream::Stream as TcpStream4;
use pingora::protocols::Stream;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most header lines accepted in a CONNECT request head.
const MAX_HEADERS: usize = 128;

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection Established\r\n\r\n";

/// How a tunnel ended, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TunnelStats {
    pub client_to_target: u64,
    pub target_to_client: u64,
}

/// A CONNECT request head, parsed.
struct ConnectHead {
    ports: Vec<String>,
    workspaces: Vec<String>,
    host: Option<String>,
    wait: Option<String>,
    via: Vec<String>,
    format: BodyFormat,
    /// Bytes that followed the head in the same reads.
    early_data: Vec<u8>,
}

impl ConnectHead {
    fn route(&self, state: &ProxyState) -> Result<(Target, Duration), ProxyError> {
        let ports: Vec<&str> = self.ports.iter().map(String::as_str).collect();
        let workspaces: Vec<&str> = self.workspaces.iter().map(String::as_str).collect();
        let target = route::resolve(
            RouteRequest {
                port_values: &ports,
                workspace_values: &workspaces,
                host: self.host.as_deref(),
            },
            state.upstream_host,
        )?;
        if state.loops.seen_in(self.via.iter().map(String::as_str))
            || state.loops.is_own_listener(target.addr)
        {
            return Err(ProxyError::new(ProxyErrorKind::LoopDetected, &target));
        }
        let wait_ms = self.wait.as_deref().map(route::parse_wait_ms).transpose()?;
        Ok((target, state.wait.budget(wait_ms)))
    }
}

/// What became of one CONNECT request, for the access log and metrics.
#[derive(Debug, Default)]
struct Outcome {
    target: Option<Target>,
    /// 200 once the tunnel was established; the error status otherwise; 0 if the client
    /// left before any answer.
    status: u16,
    error: Option<&'static str>,
    stats: TunnelStats,
}

/// Serves one CONNECT request whose complete head (and any bytes after it) is `head`,
/// then logs it. The connection is not reused afterwards.
pub async fn serve(mut client: Stream, head: Vec<u8>, state: &ProxyState) {
    let started = Instant::now();
    let peer = client
        .get_socket_digest()
        .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
    let outcome = tunnel(&mut client, head, state).await;
    let target = outcome.target.as_ref();
    state.record(&Entry {
        client: peer,
        method: "CONNECT",
        path: "-",
        workspace: target.and_then(|t| t.workspace.as_deref()),
        target: target.map(|t| t.addr),
        kind: TunnelKind::Connect.as_str(),
        status: outcome.status,
        bytes_in: outcome.stats.client_to_target,
        bytes_out: outcome.stats.target_to_client,
        duration: started.elapsed(),
        error: outcome.error,
    });
}

async fn tunnel(client: &mut Stream, head: Vec<u8>, state: &ProxyState) -> Outcome {
    let mut outcome = Outcome::default();
    let request = match parse_head(head) {
        Ok(r) => r,
        Err(why) => {
            let err = ProxyError::without_target(ProxyErrorKind::Malformed(why));
            outcome.status = err.status();
            outcome.error = Some(err.code());
            reject(client, &err).await;
            return outcome;
        }
    };
    let (target, wait_budget) = match request.route(state) {
        Ok(routed) => routed,
        Err(err) => {
            outcome.target = err.target.clone();
            outcome.status = err.status();
            outcome.error = Some(err.code());
            answer_and_close(client, &raw_response(&err, request.format)).await;
            return outcome;
        }
    };
    outcome.target = Some(target.clone());
    let mut early_data = request.early_data;

    let upstream = connect_waiting(&target, state, wait_budget, client, &mut early_data).await;
    let mut upstream = match upstream {
        Ok(s) => s,
        Err(None) => {
            outcome.error = Some("client_closed");
            return outcome;
        }
        Err(Some(kind)) => {
            let err = ProxyError::new(kind, &target);
            outcome.status = err.status();
            outcome.error = Some(err.code());
            answer_and_close(client, &raw_response(&err, request.format)).await;
            return outcome;
        }
    };

    if write_all_flush(client, ESTABLISHED).await.is_err() {
        outcome.error = Some("client_closed");
        return outcome;
    }
    outcome.status = 200;
    let _open = state.tunnels.open(TunnelKind::Connect);
    if !early_data.is_empty() && upstream.write_all(&early_data).await.is_err() {
        outcome.error = Some("upstream_closed");
        return outcome;
    }
    let early = early_data.len() as u64;
    // The client's socket, as a tokio stream of our own for splice(2).
    let client_socket = client
        .as_any()
        .downcast_ref::<TcpStream4>()
        .ok_or_else(|| io::Error::other("not a TCP stream"))
        .and_then(|s| splice::take_socket(s.as_raw_fd()));
    let client_socket = match client_socket {
        Ok(s) => s,
        Err(e) => {
            log::warn!(
                "CONNECT to {}: cannot take the client socket: {e}",
                target.describe()
            );
            outcome.error = Some("tunnel_closed");
            return outcome;
        }
    };
    let started = Instant::now();
    let last_activity = AtomicU64::new(0);
    let copy = splice::splice_bidirectional(&client_socket, &upstream, started, &last_activity);
    let mut went_idle = false;
    let result = tokio::select! {
        r = copy => r,
        _ = state.tunnels.deadline_reached() => Err(io::Error::other("closed at the shutdown deadline")),
        _ = idle_watch(state.tunnel_idle_timeout, started, &last_activity) => {
            went_idle = true;
            Err(io::Error::other("idle timeout"))
        }
    };
    match result {
        Ok((up, down)) => {
            outcome.stats = TunnelStats {
                client_to_target: up + early,
                target_to_client: down,
            };
        }
        Err(e) => {
            log::debug!("CONNECT tunnel to {} ended: {e}", target.describe());
            if state.tunnels.is_past_deadline() {
                // A clean end for both peers rather than a reset at process exit.
                for fd in [client_socket.as_raw_fd(), upstream.as_raw_fd()] {
                    // SAFETY: shutdown(2) on sockets that stay open until this returns.
                    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
                }
                outcome.error = Some("shutdown");
            } else if went_idle {
                outcome.error = Some("idle_timeout");
            } else {
                outcome.error = Some("tunnel_closed");
            }
            outcome.stats.client_to_target = early;
        }
    }
    outcome
}

/// Resolves once no byte has crossed the tunnel for `timeout`; never without a timeout.
async fn idle_watch(timeout: Option<Duration>, started: Instant, last_ms: &AtomicU64) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        let last = started + Duration::from_millis(last_ms.load(Ordering::Relaxed));
        let idle = last.elapsed();
        if idle >= timeout {
            return;
        }
        tokio::time::sleep(timeout - idle).await;
    }
}

/// Connects to the target; while it refuses and the budget lasts, retries with backoff.
/// Bytes the client sends meanwhile are kept as early data; `Err(None)` means the
/// client hung up while waiting.
async fn connect_waiting(
    target: &Target,
    state: &ProxyState,
    budget: Duration,
    client: &mut Stream,
    early_data: &mut Vec<u8>,
) -> Result<TcpStream, Option<ProxyErrorKind>> {
    let started = Instant::now();
    let mut refusals = 0;
    loop {
        let err = match connect(target, state).await {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        state.metrics.connect_failed(match err {
            ProxyErrorKind::PortClosed(_) => ConnectFailure::Refused,
            ProxyErrorKind::ConnectTimeout => ConnectFailure::Timeout,
            _ => ConnectFailure::Other,
        });
        let elapsed = started.elapsed();
        if !matches!(err, ProxyErrorKind::PortClosed(_)) || elapsed >= budget {
            return Err(Some(match err {
                ProxyErrorKind::PortClosed(_) => {
                    ProxyErrorKind::PortClosed(Some(explain(target).await))
                }
                other => other,
            }));
        }
        refusals += 1;
        state.metrics.wait_retries.inc();
        let pause = WaitPolicy::backoff(refusals).min(budget - elapsed);
        let mut buf = [0u8; 4096];
        let sleep = tokio::time::sleep(pause);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                read = client.read(&mut buf), if early_data.len() < head::MAX_HEAD_BYTES => match read {
                    Ok(0) | Err(_) => return Err(None),
                    Ok(n) => early_data.extend_from_slice(&buf[..n]),
                },
            }
        }
    }
}

async fn write_all_flush<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// Answers with an error in plain text (the request's `Accept` is unknown or moot)
/// and closes; returns the bytes of the answer.
pub async fn reject(client: &mut Stream, err: &ProxyError) -> usize {
    let reply = final_reply(err);
    answer_and_close(client, &reply).await;
    reply.len()
}

/// Answers a request whose head could not be read (too slow, too large) and logs it:
/// it never reached a proxy path that would.
pub async fn reject_head(client: &mut Stream, err: &ProxyError, kind: &str, state: &ProxyState) {
    let started = Instant::now();
    let peer = client
        .get_socket_digest()
        .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
    let bytes_out = reject(client, err).await as u64;
    state.record(&Entry {
        client: peer,
        method: "-",
        path: "-",
        workspace: None,
        target: None,
        kind,
        status: err.status(),
        bytes_in: 0,
        bytes_out,
        duration: started.elapsed(),
        error: Some(err.code()),
    });
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
    let _ = AsyncWriteExt::shutdown(client).await;
    let _ = tokio::time::timeout(LINGER, async {
        // On the heap: an array here would sit inside every connection's task (the
        // dispatcher awaits this future inline), 8 KiB per idle WebSocket.
        let mut sink = vec![0u8; 8192];
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

fn parse_head(bytes: Vec<u8>) -> Result<ConnectHead, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(&bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete request head".into()),
        Err(e) => return Err(e.to_string()),
    };
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let mut parsed = ConnectHead {
        ports: Vec::new(),
        workspaces: Vec::new(),
        host: None,
        wait: None,
        via: Vec::new(),
        format: BodyFormat::Text,
        early_data: Vec::new(),
    };
    let mut accept = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case(route::PORT_HEADER) {
            parsed.ports.push(text(h.value));
        } else if name.eq_ignore_ascii_case(route::WORKSPACE_HEADER) {
            parsed.workspaces.push(text(h.value));
        } else if name.eq_ignore_ascii_case(route::WAIT_HEADER) {
            parsed.wait.get_or_insert_with(|| text(h.value));
        } else if name.eq_ignore_ascii_case("host") {
            parsed.host.get_or_insert_with(|| text(h.value));
        } else if name.eq_ignore_ascii_case("via") {
            parsed.via.push(text(h.value));
        } else if name.eq_ignore_ascii_case("accept") {
            accept.get_or_insert_with(|| text(h.value));
        }
    }
    parsed.format = BodyFormat::from_accept(accept.as_deref());
    parsed.early_data = bytes[head_len..].to_vec();
    Ok(parsed)
}

/// Connects to the target, classifying failures as the HTTP path does, and sets the new
/// socket up for the tunnel.
async fn connect(target: &Target, state: &ProxyState) -> Result<TcpStream, ProxyErrorKind> {
    let connecting = TcpStream::connect(target.addr);
    match tokio::time::timeout(state.connect_timeout, connecting).await {
        Err(_) => Err(ProxyErrorKind::ConnectTimeout),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(ProxyErrorKind::PortClosed(None))
        }
        Ok(Err(e)) => Err(ProxyErrorKind::ConnectFailed(e.to_string())),
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            if let Some(bytes) = state.tunnel_send_buffer {
                cap_send_buffer(&stream, target, bytes);
            }
            Ok(stream)
        }
    }
}

/// Caps the send buffer of the socket to a loopback target (see
/// `config::DEFAULT_TUNNEL_SEND_BUFFER_BYTES` for the measurement). Only loopback: over a
/// real network a fixed buffer would cap throughput at buffer / round trip.
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
