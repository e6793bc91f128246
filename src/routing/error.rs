//! Why a request head names no usable target: each is a 400 with a stable code (its
//! status, code, hint and message are rows of the error table, `error::table`).

/// Why a request could not be routed as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Neither the port header nor a `<workspace>-<port>.localhost` Host.
    MissingPort,
    /// The port header's value is not a decimal number in 1..=65535.
    BadPort(String),
    /// The port header appears more than once with different values.
    ConflictingPorts(String, String),
    /// The workspace name was refused by the name rule.
    BadWorkspace { name: String, reason: &'static str },
    /// The workspace header appears more than once with different values.
    ConflictingWorkspaces(String, String),
    /// The wait header's value is not a whole number of milliseconds.
    BadWait(String),
    /// `X-Cmux-Host-Override` is not `HOST[:PORT]`, or its copies differ; the values as
    /// sent.
    BadHostOverride(String),
    /// `X-Cmux-Upstream-Protocol` is neither `h2c` nor `http/1.1`, or its copies
    /// differ; the values as sent.
    BadUpstreamProtocol(String),
    /// Edge mode: neither the machine header nor the Host names a machine.
    MissingMachine,
    /// Edge mode: the machine name is not one DNS label; the name as sent.
    BadMachine(String),
}
