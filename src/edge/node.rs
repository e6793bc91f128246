//! From a hop to the node that serves it: DNS, then the loop check, as one step that the
//! HTTP hooks and the CONNECT tunnel share.

use super::discovery::NotFound;
use super::Edge;
use crate::error::{ProxyError, ProxyErrorKind};
use crate::routing::{Hop, LoopGuard, Target};

/// The node of `hop`'s machine, as a target; the error to answer when there is none,
/// or when it would be this proxy again.
pub async fn node_for(
    edge: &Edge,
    loops: &LoopGuard,
    hop: &Hop,
    headers: &http::HeaderMap,
) -> Result<Target, ProxyError> {
    let addr = match edge.locate(&hop.machine).await {
        Ok(found) => found.addr,
        Err(NotFound::Unknown(name)) => {
            let machine = hop.machine.clone();
            let kind = ProxyErrorKind::MachineUnknown { machine, name };
            return Err(ProxyError::without_target(kind));
        }
        Err(NotFound::LookupFailed(why)) => {
            let machine = hop.machine.clone();
            let kind = ProxyErrorKind::DnsFailed { machine, why };
            return Err(ProxyError::without_target(kind));
        }
    };
    let target = Target {
        addr,
        workspace: hop.workspace.clone(),
    };
    if loops.refuses(headers, addr) {
        return Err(ProxyError::new(ProxyErrorKind::LoopDetected, &target));
    }
    Ok(target)
}
