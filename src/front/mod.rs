//! What arrives on the listener, and where does it go? The dispatcher ([`FrontDoor`])
//! reads each request head itself, bounded in size and time ([`head`]), then hands a
//! `CONNECT` to the tunnel, an HTTP/2 preface to pingora's HTTP/2 server ([`h2c`]),
//! refuses at once what cannot be served ([`early`]; an h2c stream over the connection
//! limits: [`stream_refusal`]), and gives everything else to pingora's HTTP proxy.

mod dispatch;
mod early;
mod h2c;
mod head;
mod stream_refusal;

pub use dispatch::FrontDoor;
pub use head::MAX_HEAD_BYTES;
