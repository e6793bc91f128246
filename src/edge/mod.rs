//! Where is a machine's proxy, when this proxy is an edge (`mode: edge`)? The routing
//! plan names the machine (`routing::Hop`); DNS says where its proxy listens
//! ([`discovery`]), the last answers are shown on the admin listener ([`book`]), and
//! [`node_for`] puts both together with the loop guard. The HTTP hooks and the CONNECT
//! tunnel call in here; the node proxy does the rest, as for any client.

pub mod book;
pub mod discovery;
mod node;
pub mod settings;

pub use book::MachineBook;
pub use discovery::{Discovery, Found, NotFound};
pub use node::node_for;
pub use settings::EdgeSettings;

use http::HeaderValue;
use std::sync::Arc;
use std::time::Duration;

/// Why an edge cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("node_token must be printable ASCII")]
    NodeToken,
    #[error("cannot read the system's DNS configuration: {0}")]
    SystemDns(String),
    #[error("cannot set up the DNS resolver: {0}")]
    Resolver(String),
}

/// An edge's shared state.
pub struct Edge {
    pub settings: EdgeSettings,
    discovery: Discovery,
    pub book: Arc<MachineBook>,
    /// `node_token` as a header value, ready to send.
    pub node_token: Option<HeaderValue>,
}

impl Edge {
    /// `connect_timeout` also bounds every DNS look-up.
    pub fn new(settings: EdgeSettings, connect_timeout: Duration) -> Result<Self, EdgeError> {
        let node_token = match &settings.node_token {
            Some(t) => Some(HeaderValue::from_str(t).map_err(|_| EdgeError::NodeToken)?),
            None => None,
        };
        Ok(Edge {
            discovery: Discovery::new(&settings, connect_timeout)?,
            book: Arc::new(MachineBook::new(settings.dns_negative_ttl)),
            node_token,
            settings,
        })
    }

    /// Where `machine`'s proxy listens now; the answer is noted for `GET /machines`.
    pub async fn locate(&self, machine: &str) -> Result<Found, NotFound> {
        let answer = self.discovery.find(machine).await;
        self.book.note(machine, &answer);
        answer
    }
}
