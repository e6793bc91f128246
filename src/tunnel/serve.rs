//! Serving one CONNECT request: establish the tunnel, relay it, log it.
//!
//! The order matters to clients: parse the request head (already read, bounded in size
//! and time, by the dispatcher), route it with the same rules as HTTP, connect to the
//! target (waiting for a restarting one like HTTP does), and only then answer
//! `200 Connection Established`. A failure is answered with the same status and body as
//! the HTTP path would give. Bytes the client sent right after the head go upstream
//! before anything else.

use super::edge::{self, NodeAnswer};
use super::relay::{relay, TunnelStats};
use super::request::{self, ConnectRequest};
use super::upstream::{connect_waiting, NotConnected};
use crate::edge::{node_for, Edge};
use crate::error::reply::{answer_and_close, reject, write_all_flush};
use crate::error::wire::raw_response;
use crate::error::{BodyFormat, ProxyError, ProxyErrorKind};
use crate::observe::{peer_addr, EndReason, Entry, RequestKind};
use crate::routing::{Exchange, Head, Hop, Plan, Target};
use crate::state::ProxyState;
use pingora::protocols::Stream;
use std::net::IpAddr;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection Established\r\n\r\n";

/// What became of one CONNECT request, for the access log and metrics.
#[derive(Debug, Default)]
struct Outcome {
    target: Option<Target>,
    /// 200 once the tunnel was established; the error status otherwise; 0 if the client
    /// left before any answer.
    status: u16,
    end: Option<EndReason>,
    stats: TunnelStats,
    /// Edge mode: the machine the tunnel went to.
    machine: Option<String>,
}

/// A tunnel ready to relay.
struct Established {
    target: Target,
    upstream: TcpStream,
    /// Client bytes to send upstream first.
    early_data: Vec<u8>,
    machine: Option<String>,
}

impl Outcome {
    fn answered(err: &ProxyError) -> Self {
        Outcome {
            target: err.target.clone(),
            status: err.status(),
            end: Some(EndReason::Answered(err.code())),
            ..Default::default()
        }
    }

    fn client_left(target: Target) -> Self {
        Outcome {
            target: Some(target),
            end: Some(EndReason::ClientClosed),
            ..Default::default()
        }
    }
}

/// Serves one CONNECT request whose complete head (and any bytes after it) is `head`,
/// then logs it. The connection is not reused afterwards.
pub async fn serve(mut client: Stream, head: Vec<u8>, state: &ProxyState) {
    let started = Instant::now();
    let peer = peer_addr(&client);
    let outcome = tunnel(&mut client, &head, state, peer.map(|a| a.ip())).await;
    let mut entry = Entry::new(RequestKind::Connect, peer, started, outcome.target.as_ref());
    entry.method = "CONNECT";
    entry.status = outcome.status;
    entry.bytes_in = outcome.stats.client_to_target;
    entry.bytes_out = outcome.stats.target_to_client;
    entry.end = outcome.end;
    entry.machine = outcome.machine.as_deref();
    state.recorder.record(&entry);
}

async fn tunnel(
    client: &mut Stream,
    head: &[u8],
    state: &ProxyState,
    client_ip: Option<IpAddr>,
) -> Outcome {
    let established = establish(client, head, state, client_ip).await;
    let Established {
        target,
        mut upstream,
        early_data,
        machine,
    } = match established {
        Ok(established) => established,
        Err(outcome) => return outcome,
    };
    let _open = state.tunnels.open(RequestKind::Connect);
    let early = early_data.len() as u64;
    let (stats, end) = if early > 0 && upstream.write_all(&early_data).await.is_err() {
        (TunnelStats::default(), Some(EndReason::UpstreamClosed))
    } else {
        let (stats, end) = relay(client, &upstream, state, &target).await;
        let client_to_target = stats.client_to_target + early;
        (
            TunnelStats {
                client_to_target,
                ..stats
            },
            end,
        )
    };
    Outcome {
        target: Some(target),
        status: 200,
        end,
        stats,
        machine,
    }
}

/// Parses, checks the token, plans the route and connects, then answers `200`; on failure,
/// answers the client and says what became of the request.
async fn establish(
    client: &mut Stream,
    head: &[u8],
    state: &ProxyState,
    client_ip: Option<IpAddr>,
) -> Result<Established, Outcome> {
    let request = match request::parse(head) {
        Ok(r) => r,
        Err(why) => {
            let err = ProxyError::without_target(ProxyErrorKind::Malformed(why));
            reject(client, &err).await;
            return Err(Outcome::answered(&err));
        }
    };
    let access = &state.access;
    if access.token_required(client_ip) && !access.connect_token_ok(&request.headers) {
        let err = ProxyError::without_target(ProxyErrorKind::Unauthorized { proxy: true });
        return Err(answer(client, err, request.format).await);
    }
    let head = Head {
        headers: &request.headers,
        uri_host: None,
        exchange: Exchange::Connect,
        vouched: false,
    };
    let direct = match (state.router.plan(&head), &state.edge) {
        (Ok(Plan::Direct(direct)), _) => direct,
        (Ok(Plan::Edge(hop)), Some(edge)) => {
            return through_edge(client, request, *hop, edge, state).await
        }
        (Ok(Plan::Edge(_)), None) => {
            let why = "an edge plan on a proxy without edge state".to_string();
            let err = ProxyError::without_target(ProxyErrorKind::ConnectFailed(why));
            return Err(answer(client, err, request.format).await);
        }
        (Err(refusal), _) => return Err(answer(client, refusal.into(), request.format).await),
    };
    let target = direct.target;
    if let Some(why) = state.host_service_refusal(&target).await {
        let err = ProxyError::new(ProxyErrorKind::TargetForbidden(why), &target);
        return Err(answer(client, err, request.format).await);
    }
    let mut early_data = request.early_data;
    let budget = direct.wait;
    let upstream = match connect_waiting(&target, state, budget, client, &mut early_data).await {
        Ok(s) => s,
        Err(NotConnected::ClientLeft) => return Err(Outcome::client_left(target)),
        Err(NotConnected::Failed(kind)) => {
            let err = ProxyError::new(kind, &target);
            return Err(answer(client, err, request.format).await);
        }
    };
    if write_all_flush(client, ESTABLISHED).await.is_err() {
        return Err(Outcome::client_left(target));
    }
    Ok(Established {
        target,
        upstream,
        early_data,
        machine: None,
    })
}

/// Edge mode: finds the machine's proxy and asks it for the tunnel; answers `200` only
/// when the node did.
async fn through_edge(
    client: &mut Stream,
    request: ConnectRequest,
    hop: Hop,
    edge: &Edge,
    state: &ProxyState,
) -> Result<Established, Outcome> {
    let with_machine = |mut outcome: Outcome| {
        outcome.machine = Some(hop.machine.clone());
        outcome
    };
    let node = match node_for(edge, &state.router.loops, &hop, &request.headers).await {
        Ok(node) => node,
        Err(err) => return Err(with_machine(answer(client, err, request.format).await)),
    };
    let (upstream, from_node) = match edge::open(client, &request, &hop, &node, edge, state).await {
        Ok(NodeAnswer::Open(upstream, from_node)) => (upstream, from_node),
        Ok(NodeAnswer::Refused(status)) => {
            return Err(with_machine(Outcome {
                target: Some(node),
                status,
                ..Default::default()
            }))
        }
        Err(err) => return Err(with_machine(answer(client, err, request.format).await)),
    };
    if write_all_flush(client, ESTABLISHED).await.is_err()
        || write_all_flush(client, &from_node).await.is_err()
    {
        return Err(with_machine(Outcome::client_left(node)));
    }
    Ok(Established {
        target: node,
        upstream,
        early_data: request.early_data,
        machine: Some(hop.machine),
    })
}

/// Answers `err` in the form the request asked for, and closes.
async fn answer(client: &mut Stream, err: ProxyError, format: BodyFormat) -> Outcome {
    answer_and_close(client, &raw_response(&err, format)).await;
    Outcome::answered(&err)
}
