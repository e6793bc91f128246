//! The built-in defaults the merge falls back on, and the bounds it checks against.

/// Listen addresses used when nothing else says otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080,127.0.0.1:8080";
pub const DEFAULT_UPSTREAM_HOST: &str = "127.0.0.1";
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_REQUEST_HEAD_TIMEOUT_MS: u64 = 30_000;
/// A dev server restart (Vite, Next, nodemon) usually re-opens its port within a second
/// or two; waiting up to 2 s turns those into a slow answer instead of a 502, while a
/// port nobody will open still fails quickly.
pub const DEFAULT_WAIT_FOR_PORT_MS: u64 = 2_000;
pub const DEFAULT_MAX_WAIT_FOR_PORT_MS: u64 = 30_000;
/// pingora's default retry cap (16) would cut a wait-for-port budget short; the budget
/// itself bounds the retries.
pub const MIN_MAX_RETRIES: usize = 1_000;
/// Grace periods for a dev machine: pingora's own default is 300 s.
pub const DEFAULT_GRACE_PERIOD_SECONDS: u64 = 5;
pub const DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9091";
pub const DEFAULT_PID_FILE: &str = "/tmp/cmux-proxy.pid";
pub const DEFAULT_UPGRADE_SOCK: &str = "/tmp/cmux-proxy-upgrade.sock";
/// SO_SNDBUF of a CONNECT tunnel's socket to a loopback target. Left to autotuning, the
/// kernel grows it to 4 MiB and megabytes queue between the proxy and the target; capped,
/// the bytes in flight stay cache-sized. Measured with a 1 GiB upload through one tunnel
/// on a 2-core VM: 0.35-0.49x direct uncapped, 1.02-1.17x at 256 KiB (128 KiB:
/// 0.92-1.09x; 1 MiB: no gain); proxy CPU per MB 177-242 µs -> 93-102 µs.
pub const DEFAULT_TUNNEL_SEND_BUFFER_BYTES: usize = 256 * 1024;
/// Above this a send buffer size is surely a typo (the kernel caps it at
/// `net.core.wmem_max` anyway).
pub const MAX_TUNNEL_SEND_BUFFER_BYTES: usize = 1 << 30;
