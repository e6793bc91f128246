//! The access log: one line per finished request or tunnel, as readable text or JSON.
//!
//! Lines go through a bounded queue to a writer thread, so a slow disk never stalls a
//! request: when the queue is full the line is dropped and counted
//! (`cmux_access_log_dropped_total`). A log file is reopened after `SIGHUP`, so that
//! logrotate can move it away.

use prometheus::IntCounter;
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lines that may wait for the writer before new ones are dropped.
const QUEUE_LINES: usize = 16 * 1024;

/// Text (one readable line) or JSON (one object per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Off,
    Stderr,
    File(PathBuf),
}

impl LogTarget {
    /// `off`, `stderr`, or a file path.
    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "off" | "" => LogTarget::Off,
            "stderr" | "-" => LogTarget::Stderr,
            path => LogTarget::File(PathBuf::from(path)),
        }
    }
}

/// One finished request or tunnel.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub client: Option<SocketAddr>,
    pub method: &'a str,
    pub path: &'a str,
    pub workspace: Option<&'a str>,
    pub target: Option<SocketAddr>,
    /// `http`, `websocket` or `connect`.
    pub kind: &'a str,
    /// 0 when no response was sent.
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: Duration,
    /// The error code (as in error bodies), if the request failed.
    pub error: Option<&'a str>,
}

/// The access log handle shared by every request path.
pub struct AccessLog {
    format: LogFormat,
    keep_query: bool,
    queue: Option<SyncSender<String>>,
    dropped: IntCounter,
    reopen: Arc<AtomicBool>,
}

impl AccessLog {
    /// Starts the writer thread (unless the log is off).
    pub fn start(
        target: LogTarget,
        format: LogFormat,
        keep_query: bool,
        dropped: IntCounter,
    ) -> io::Result<Self> {
        let reopen = Arc::new(AtomicBool::new(false));
        let queue = match target {
            LogTarget::Off => None,
            target => {
                let sink = Sink::open(&target)?;
                let (tx, rx) = sync_channel(QUEUE_LINES);
                let reopen = reopen.clone();
                std::thread::Builder::new()
                    .name("access-log".into())
                    .spawn(move || write_lines(rx, sink, target, reopen))?;
                Some(tx)
            }
        };
        Ok(AccessLog {
            format,
            keep_query,
            queue,
            dropped,
            reopen,
        })
    }

    /// Asks the writer to reopen its file before the next line (after `SIGHUP`).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Queues one line; never blocks.
    pub fn log(&self, entry: &Entry<'_>) {
        let Some(queue) = &self.queue else {
            return;
        };
        let line = self.format_line(entry);
        match queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }

    /// The line for one entry, without the newline.
    pub fn format_line(&self, e: &Entry<'_>) -> String {
        let path = if self.keep_query {
            e.path
        } else {
            e.path.split('?').next().unwrap_or_default()
        };
        let time = rfc3339_utc(SystemTime::now());
        let millis = e.duration.as_secs_f64() * 1000.0;
        match self.format {
            LogFormat::Json => serde_json::json!({
                "time": time,
                "client": e.client.map(|c| c.to_string()),
                "method": e.method,
                "path": path,
                "workspace": e.workspace,
                "target": e.target.map(|t| t.to_string()),
                "kind": e.kind,
                "status": e.status,
                "bytes_in": e.bytes_in,
                "bytes_out": e.bytes_out,
                "duration_ms": (millis * 1000.0).round() / 1000.0,
                "error": e.error,
            })
            .to_string(),
            LogFormat::Text => {
                let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
                format!(
                    "{time} {} \"{} {}\" {} {} {} {} in={} out={} {:.3}ms{}",
                    dash(e.client.map(|c| c.to_string())),
                    e.method,
                    path.escape_debug(),
                    e.kind,
                    dash(e.workspace.map(str::to_string)),
                    dash(e.target.map(|t| t.to_string())),
                    e.status,
                    e.bytes_in,
                    e.bytes_out,
                    millis,
                    e.error.map(|c| format!(" error={c}")).unwrap_or_default(),
                )
            }
        }
    }
}

/// The writer's destination.
enum Sink {
    Stderr,
    File(File),
}

impl Sink {
    fn open(target: &LogTarget) -> io::Result<Sink> {
        match target {
            LogTarget::File(path) => OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(Sink::File),
            _ => Ok(Sink::Stderr),
        }
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        match self {
            Sink::Stderr => writeln!(io::stderr().lock(), "{line}"),
            Sink::File(f) => {
                let mut buf = Vec::with_capacity(line.len() + 1);
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
                f.write_all(&buf)
            }
        }
    }
}

fn write_lines(rx: Receiver<String>, mut sink: Sink, target: LogTarget, reopen: Arc<AtomicBool>) {
    while let Ok(line) = rx.recv() {
        if reopen.swap(false, Ordering::Relaxed) {
            match Sink::open(&target) {
                Ok(s) => sink = s,
                Err(e) => log::error!("cannot reopen the access log: {e}"),
            }
        }
        if let Err(e) = sink.write_line(&line) {
            log::error!("cannot write the access log: {e}");
        }
    }
}

/// `2026-11-28T01:02:03.456Z`, from the civil-from-days algorithm (no time crate).
pub fn rfc3339_utc(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            client: Some("127.0.0.1:5555".parse().unwrap()),
            method: "GET",
            path: "/a?token=secret",
            workspace: Some("workspace-7"),
            target: Some("127.18.0.7:3000".parse().unwrap()),
            kind: "http",
            status: 200,
            bytes_in: 0,
            bytes_out: 12,
            duration: Duration::from_micros(1500),
            error: None,
        }
    }

    fn log(format: LogFormat, keep_query: bool) -> AccessLog {
        AccessLog::start(
            LogTarget::Off,
            format,
            keep_query,
            IntCounter::new("x", "x").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn text_line_drops_the_query() {
        let line = log(LogFormat::Text, false).format_line(&entry());
        assert!(
            line.ends_with(" 127.0.0.1:5555 \"GET /a\" http workspace-7 127.18.0.7:3000 200 in=0 out=12 1.500ms"),
            "{line}"
        );
        assert!(!line.contains("secret"));
        let line = log(LogFormat::Text, true).format_line(&entry());
        assert!(line.contains("/a?token=secret"));
    }

    #[test]
    fn json_line_parses() {
        let mut e = entry();
        e.error = Some("port_closed");
        e.status = 502;
        let line = log(LogFormat::Json, false).format_line(&e);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["path"], "/a");
        assert_eq!(v["status"], 502);
        assert_eq!(v["error"], "port_closed");
        assert_eq!(v["kind"], "http");
        assert_eq!(v["duration_ms"], 1.5);
    }

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_568_523_456);
        assert_eq!(rfc3339_utc(t), "2026-11-25T01:02:03.456Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
