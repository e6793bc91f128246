//! The access log: one line per finished request or tunnel.
//!
//! Lines go through a bounded queue to a writer thread, so a slow disk never stalls a
//! request: when the queue is full the line is dropped and counted
//! (`cmux_access_log_dropped_total`). A log file is reopened after `SIGHUP`, so that
//! logrotate can move it away.

use super::entry::Entry;
use super::log_line::{format_line, LogFormat};
use prometheus::IntCounter;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

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
        let line = format_line(self.format, self.keep_query, entry);
        match queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped.inc(),
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
