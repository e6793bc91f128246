//! The body forms of an error: plain text (the default), JSON, or a page for browsers,
//! chosen by the request's `Accept`.

use super::{ProxyError, ProxyErrorKind, Row};
use bytes::Bytes;

/// The body forms of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Text,
    Json,
    Html,
}

impl BodyFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Text => "text/plain; charset=utf-8",
            BodyFormat::Json => "application/json",
            BodyFormat::Html => "text/html; charset=utf-8",
        }
    }

    /// The form the `Accept` header prefers: JSON (`application/json`, `*/json`,
    /// `+json`), HTML (`text/html`, as browsers send), else plain text. Ties go to
    /// plain text, then JSON.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return BodyFormat::Text;
        };
        let (mut json, mut html, mut text) = (0.0f32, 0.0f32, 0.0f32);
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if media == "application/json" || media.ends_with("+json") {
                json = json.max(q);
            } else if media == "text/html" || media == "application/xhtml+xml" {
                html = html.max(q);
            } else if media.starts_with("text/") {
                text = text.max(q);
            }
        }
        if text >= json && text >= html {
            BodyFormat::Text
        } else if json >= html {
            BodyFormat::Json
        } else {
            BodyFormat::Html
        }
    }
}

/// The body of `err`, whose table row is `row`, in the chosen form.
pub fn render(err: &ProxyError, row: &Row, format: BodyFormat) -> Bytes {
    match format {
        BodyFormat::Text => Bytes::from(format!("{}\n", row.message)),
        BodyFormat::Json => Bytes::from(json(err, row)),
        BodyFormat::Html => Bytes::from(html(err, row)),
    }
}

fn json(err: &ProxyError, row: &Row) -> String {
    let mut body = serde_json::json!({
        "status": row.status,
        "code": row.code,
        "message": row.message,
        "hint": row.hint,
    });
    if let Some(machine) = err.kind.machine() {
        body["machine"] = machine.into();
    }
    if let Some(t) = &err.target {
        body["target"] = t.addr.to_string().into();
        if let Some(ws) = &t.workspace {
            body["workspace"] = ws.as_str().into();
        }
    }
    if let ProxyErrorKind::PortClosed(Some(e)) = &err.kind {
        body["listeners"] = e.listeners.iter().map(|l| l.to_string()).collect();
    }
    body.to_string() + "\n"
}

/// A small self-contained page for browsers. While the port is closed it reloads
/// itself every few seconds, so the app appears as soon as the dev server is up. Its
/// empty icon keeps the browser from asking for `/favicon.ico`, a request that would
/// wait for the closed port too, or reach the dev server once it is up (a 404 in the
/// console).
fn html(err: &ProxyError, row: &Row) -> String {
    let reloads = matches!(err.kind, ProxyErrorKind::PortClosed(_));
    let refresh = if reloads {
        "<meta http-equiv=\"refresh\" content=\"3\">\n"
    } else {
        ""
    };
    let retrying = if reloads {
        "<p class=\"note\">This page reloads itself every 3 seconds.</p>\n"
    } else {
        ""
    };
    let target = err
        .target
        .as_ref()
        .map(|t| {
            format!(
                "<p>Target: <code>{}</code></p>\n",
                html_escape(&t.describe())
            )
        })
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n{refresh}<link rel=\"icon\" href=\"data:,\">\n<title>{status} {code} - cmux-proxy</title>\n\
<style>body{{font-family:system-ui,sans-serif;max-width:42em;margin:3em auto;padding:0 1em;color:#222}}\
code{{background:#f2f2f2;padding:0 .25em}}.note{{color:#666}}</style></head>\n\
<body><h1>{status} {code}</h1>\n<p>{message}</p>\n{target}<p><strong>Hint:</strong> {hint}</p>\n{retrying}</body></html>\n",
        status = row.status,
        code = row.code,
        message = html_escape(&row.message),
        hint = html_escape(&row.hint),
    )
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{RouteError, Target};

    #[test]
    fn accept_negotiation() {
        assert_eq!(BodyFormat::from_accept(None), BodyFormat::Text);
        assert_eq!(BodyFormat::from_accept(Some("*/*")), BodyFormat::Text);
        assert_eq!(
            BodyFormat::from_accept(Some("application/json")),
            BodyFormat::Json
        );
        assert_eq!(
            BodyFormat::from_accept(Some("text/plain;q=0.5, application/json")),
            BodyFormat::Json
        );
        assert_eq!(
            BodyFormat::from_accept(Some("text/plain, application/json;q=0.1")),
            BodyFormat::Text
        );
        assert_eq!(
            BodyFormat::from_accept(Some("application/problem+json")),
            BodyFormat::Json
        );
        // What a browser sends for a page.
        assert_eq!(
            BodyFormat::from_accept(Some(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            BodyFormat::Html
        );
    }

    #[test]
    fn html_page_names_the_target_and_reloads_while_closed() {
        let target = Target {
            addr: "127.18.0.7:3000".parse().unwrap(),
            workspace: Some("<ws>".into()),
        };
        let e = ProxyError::new(ProxyErrorKind::PortClosed(None), &target);
        let page = String::from_utf8(e.body(BodyFormat::Html).to_vec()).unwrap();
        assert!(page.contains("http-equiv=\"refresh\""), "{page}");
        assert!(
            page.contains("<link rel=\"icon\" href=\"data:,\">"),
            "{page}"
        );
        assert!(page.contains("127.18.0.7:3000 (&lt;ws&gt;)"), "{page}");
        assert!(!page.contains("<ws>"), "{page}");
        let e = ProxyError::new(ProxyErrorKind::ConnectTimeout, &target);
        let page = String::from_utf8(e.body(BodyFormat::Html).to_vec()).unwrap();
        assert!(!page.contains("refresh"), "{page}");
    }

    #[test]
    fn bodies_name_the_target() {
        let target = Target {
            addr: "127.18.0.7:3000".parse().unwrap(),
            workspace: Some("workspace-7".into()),
        };
        let e = ProxyError::new(ProxyErrorKind::PortClosed(None), &target);
        assert_eq!(e.status(), 502);
        let text = String::from_utf8(e.body(BodyFormat::Text).to_vec()).unwrap();
        assert!(text.contains("127.18.0.7:3000 (workspace-7)"), "{text}");
        assert!(text.ends_with('\n') && text.lines().count() == 1);
        let json = String::from_utf8(e.body(BodyFormat::Json).to_vec()).unwrap();
        assert!(json.contains("\"code\":\"port_closed\""), "{json}");
        assert!(json.contains("\"target\":\"127.18.0.7:3000\""), "{json}");
        assert!(json.contains("\"workspace\":\"workspace-7\""), "{json}");
    }

    #[test]
    fn json_escapes() {
        let e = ProxyError::from(RouteError::BadPort("a\"b\\\u{1}\n".into()));
        let json = e.body(BodyFormat::Json);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["message"].as_str().unwrap(), e.message());
        assert_eq!(v["code"], "bad_port");
        assert_eq!(v["status"], 400);
    }
}
