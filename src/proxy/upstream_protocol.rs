//! Speaking the protocol the plan chose (`routing::UpstreamProtocol`) to the target:
//! pingora pools h2c connections per target and multiplexes streams over them.

use crate::routing::UpstreamProtocol;
use pingora::prelude::*;

/// Streams one upstream h2c connection carries at once before pingora opens another
/// (pingora's default of 1 would open a connection per request).
pub const MAX_STREAMS_PER_CONNECTION: usize = 100;

/// Makes `peer` speak `protocol`: for h2c, HTTP/2 only (over plaintext pingora then
/// trusts that the target speaks h2c: there is no ALPN to ask), multiplexed.
pub fn apply(peer: &mut HttpPeer, protocol: UpstreamProtocol) {
    if protocol == UpstreamProtocol::H2c {
        peer.options.set_http_version(2, 2);
        peer.options.max_h2_streams = MAX_STREAMS_PER_CONNECTION;
    }
}
