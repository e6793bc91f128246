//! Test fixtures, by role: the proxy under test ([`proxy`]: start, conf, readiness, a
//! clean environment), the upstreams it forwards to ([`upstreams`]: real HTTP,
//! WebSocket and TCP servers), and the clients that talk to it ([`clients`]: curl, raw
//! TCP, the WebSocket handshake). This file keeps the small helpers all three use.
//!
//! Every server binds port 0 (or a workspace address on port 0) and reports the port it
//! got; every wait is bounded.
#![allow(dead_code, unused_imports)]

mod clients;
mod proxy;
mod upstreams;

pub use clients::*;
pub use proxy::*;
pub use upstreams::*;

use sha2::{Digest, Sha256};
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A port that was free a moment ago (pingora cannot listen on port 0 and report it).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh temporary directory.
pub fn tempdir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cmux-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The deterministic byte pattern the upstream serves for `/download/N`.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where the tests note what they skipped: `make cargo-tests` prints the count and the
/// reasons at the end (cargo hides a passing test's output).
pub const SKIPPED_FILE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/skipped.txt");

/// Records that part of a test was skipped, and why: a `SKIP` line on stderr and one in
/// [`SKIPPED_FILE`].
pub fn skip(reason: &str) {
    use std::io::Write;
    eprintln!("SKIP {reason}");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(SKIPPED_FILE)
    {
        let _ = writeln!(f, "SKIP {reason}");
    }
}

/// Whether this host has an IPv6 loopback address to bind.
pub fn have_ipv6_loopback() -> bool {
    StdListener::bind("[::1]:0").is_ok()
}
