//! One access log line, as readable text or JSON.

use super::entry::Entry;
use crate::access::without_query_token;
use serde::Deserialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// Text (one readable line) or JSON (one object per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `2026-11-28T01:02:03.456Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, since.subsec_nanos())
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The line for one entry, without the newline; the query string is dropped unless
/// `keep_query` (it may carry secrets), and `cmux_token=` is dropped even then.
pub fn format_line(format: LogFormat, keep_query: bool, e: &Entry<'_>) -> String {
    let path = if keep_query {
        without_query_token(e.path)
    } else {
        e.path.split('?').next().unwrap_or_default().into()
    };
    let time = rfc3339_utc(SystemTime::now());
    let millis = e.duration.as_secs_f64() * 1000.0;
    let end = e.end.map(|r| r.as_str());
    match format {
        LogFormat::Json => {
            let mut line = serde_json::json!({
            "time": time,
            "client": e.client.map(|c| c.to_string()),
            "method": e.method,
            "path": path,
            "workspace": e.workspace,
            "target": e.target.map(|t| t.to_string()),
            "kind": e.kind.as_str(),
            "status": e.status,
            "bytes_in": e.bytes_in,
            "bytes_out": e.bytes_out,
            "duration_ms": (millis * 1000.0).round() / 1000.0,
            "error": end,
            });
            if let Some(machine) = e.machine {
                line["machine"] = machine.into();
            }
            line.to_string()
        }
        LogFormat::Text => {
            let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
            format!(
                "{time} {} \"{} {}\" {} {} {} {} in={} out={} {:.3}ms{}{}",
                dash(e.client.map(|c| c.to_string())),
                e.method,
                path.escape_debug(),
                e.kind.as_str(),
                dash(e.workspace.map(str::to_string)),
                dash(e.target.map(|t| t.to_string())),
                e.status,
                e.bytes_in,
                e.bytes_out,
                millis,
                end.map(|c| format!(" error={c}")).unwrap_or_default(),
                e.machine
                    .map(|m| format!(" machine={m}"))
                    .unwrap_or_default(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::kinds::{EndReason, RequestKind};
    use std::time::Duration;

    fn entry() -> Entry<'static> {
        Entry {
            client: Some("127.0.0.1:5555".parse().unwrap()),
            method: "GET",
            path: "/a?token=secret",
            workspace: Some("workspace-7"),
            machine: None,
            target: Some("127.18.0.7:3000".parse().unwrap()),
            kind: RequestKind::Http,
            status: 200,
            bytes_in: 0,
            bytes_out: 12,
            duration: Duration::from_micros(1500),
            end: None,
        }
    }

    #[test]
    fn text_line_drops_the_query() {
        let line = format_line(LogFormat::Text, false, &entry());
        assert!(
            line.ends_with(" 127.0.0.1:5555 \"GET /a\" http workspace-7 127.18.0.7:3000 200 in=0 out=12 1.500ms"),
            "{line}"
        );
        assert!(!line.contains("secret"));
        let line = format_line(LogFormat::Text, true, &entry());
        assert!(line.contains("/a?token=secret"));
    }

    #[test]
    fn json_line_parses() {
        let mut e = entry();
        e.end = Some(EndReason::Answered("port_closed"));
        e.status = 502;
        let line = format_line(LogFormat::Json, false, &e);
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
