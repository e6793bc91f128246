//! The access log: one line per finished request or tunnel.
//!
//! Lines go through a bounded queue to a writer thread, so a slow disk never stalls a
//! request: when the queue is full the line is dropped and counted
//! (`cmux_access_log_dropped_total`). A log file is reopened after `SIGHUP`, so that
//! logrotate can move it away.
//!
//! The destination is opened at start-up (a bad path stops start-up with a clear
//! error), but the writer thread is started later, by a pingora background service:
//! in daemon mode pingora forks after start-up, and threads do not survive a fork.

use super::entry::Entry;
use super::log_line::{format_line, LogFormat};
use prometheus::IntCounter;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines that may wait for the writer before new ones are dropped.
const QUEUE_LINES: usize = 16 * 1024;

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

/// The access log's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSettings {
    /// Where lines go (`access_log`).
    pub target: LogTarget,
    /// Text or JSON (`access_log_format`).
    pub format: LogFormat,
    /// Whether lines keep the query string, which may carry secrets (`access_log_query`).
    pub keep_query: bool,
}

/// The access log handle shared by every request path.
pub struct AccessLog {
    format: LogFormat,
    keep_query: bool,
    queue: Option<SyncSender<String>>,
    dropped: IntCounter,
    reopen: Arc<AtomicBool>,
    /// Lines queued so far, and lines the writer has written (for [`AccessLog::flush`]).
    queued: AtomicU64,
    written: Arc<AtomicU64>,
    /// The writer, until [`AccessLog::start_writer`] runs it on its own thread.
    writer: Mutex<Option<Writer>>,
}

impl AccessLog {
    /// Opens the destination (unless the log is off); no thread is started yet.
    pub fn open(settings: &AccessLogSettings, dropped: IntCounter) -> io::Result<Self> {
        let reopen = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (queue, writer) = match settings.target.clone() {
            LogTarget::Off => (None, None),
            target => {
                let sink = Sink::open(&target)?;
                let (tx, rx) = sync_channel(QUEUE_LINES);
                let writer = Writer {
                    rx,
                    sink,
                    target,
                    reopen: reopen.clone(),
                    written: written.clone(),
                };
                (Some(tx), Some(writer))
            }
        };
        Ok(AccessLog {
            format: settings.format,
            keep_query: settings.keep_query,
            queue,
            dropped,
            reopen,
            queued: AtomicU64::new(0),
            written,
            writer: Mutex::new(writer),
        })
    }

    /// Starts the writer thread, once; lines queued before are written then.
    pub fn start_writer(&self) -> io::Result<()> {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            std::thread::Builder::new()
                .name("access-log".into())
                .spawn(move || writer.run())?;
        }
        Ok(())
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
        let line = format_line(self.format, self.keep_query, entry);
        match queue.try_send(line) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }

    /// Waits, at most `within`, until every queued line is written (before an exit).
    pub fn flush(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.written.load(Ordering::Relaxed) < self.queued.load(Ordering::Relaxed)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
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

/// The writer thread's state.
struct Writer {
    rx: Receiver<String>,
    sink: Sink,
    target: LogTarget,
    reopen: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
}

impl Writer {
    fn run(mut self) {
        while let Ok(line) = self.rx.recv() {
            if self.reopen.swap(false, Ordering::Relaxed) {
                match Sink::open(&self.target) {
                    Ok(s) => self.sink = s,
                    Err(e) => log::error!("cannot reopen the access log: {e}"),
                }
            }
            if let Err(e) = self.sink.write_line(&line) {
                log::error!("cannot write the access log: {e}");
            }
            self.written.fetch_add(1, Ordering::Relaxed);
        }
    }
}
