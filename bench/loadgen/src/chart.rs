//! The benchmark's chart (`bench/results.svg`), written by `summarize --svg`: for each
//! workload, one bar per proxy, its median divided by bare pingora's, so every proxy is
//! read against pingora's own limit (the line at 1.0). Plain SVG, no dependencies.

use crate::summarize::{fmt_num, REFERENCE, TARGETS};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// (metric, target) -> median
pub type Medians = BTreeMap<(String, String), f64>;

/// Two panels: (title, [(metric, short label)]).
const PANELS: &[(&str, &[(&str, &str)])] = &[
    (
        "Throughput ÷ bare pingora (higher is better)",
        &[
            ("small.rps", "small req/s"),
            ("large_cl.mbps", "large, Content-Length"),
            ("large_chunked.mbps", "large, chunked"),
            ("ws.rate", "WebSocket msgs/s"),
        ],
    ),
    (
        "Cost ÷ bare pingora (lower is better)",
        &[
            ("small.p99_us", "small p99"),
            ("small.proxy_cpu_us", "CPU per request"),
            ("ws.proxy_cpu_us", "CPU per WS message"),
            ("mem.per_conn_kib", "memory per idle WS"),
            ("scale.p99_idle_us", "p99, idle WS open"),
        ],
    ),
];

/// One colour per proxy, in TARGETS order (direct is not charted: it is no proxy).
fn colour(t: &str) -> &'static str {
    match t {
        "nginx" => "#7f7f7f",
        "haproxy" => "#bcbd22",
        "pingora" => "#1f77b4",
        "cmux" => "#d62728",
        "caddy" => "#2ca02c",
        "node" => "#9467bd",
        "go" => "#17becf",
        _ => "#000000",
    }
}

/// Ratios above this are drawn at the cap, with their value written on the bar.
const CAP: f64 = 3.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn svg(m: &Medians, date: &str) -> String {
    let proxies: Vec<(&str, &str)> = TARGETS
        .iter()
        .copied()
        .filter(|(t, _)| *t != "direct" && m.keys().any(|(_, mt)| mt == t))
        .collect();
    let ratio = |k: &str, t: &str| -> Option<f64> {
        let r = *m.get(&(k.to_string(), REFERENCE.to_string()))?;
        let v = *m.get(&(k.to_string(), t.to_string()))?;
        (r > 0.0).then_some(v / r)
    };
    let (bar_w, bar_gap, group_gap) = (14.0, 2.0, 26.0);
    let group_w = proxies.len() as f64 * (bar_w + bar_gap) + group_gap;
    let max_groups = PANELS.iter().map(|(_, r)| r.len()).max().unwrap_or(1) as f64;
    let (left, top_pad, plot_h, panel_gap) = (56.0, 64.0, 220.0, 70.0);
    let width = left + max_groups * group_w + 20.0;
    let legend_h = 30.0;
    let height = 30.0 + legend_h + PANELS.len() as f64 * (top_pad + plot_h + panel_gap) - 40.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="18" font-size="14" font-weight="bold">cmux-proxy benchmark: each proxy against bare pingora{}</text>"#,
        if date.is_empty() {
            String::new()
        } else {
            format!(" ({})", esc(date))
        }
    );
    // Legend.
    let mut x = left;
    for (t, name) in &proxies {
        let _ = writeln!(
            s,
            r#"<rect x="{x:.0}" y="30" width="12" height="12" fill="{}"/><text x="{:.0}" y="40">{}</text>"#,
            colour(t),
            x + 16.0,
            esc(name)
        );
        x += 22.0 + 7.0 * name.len() as f64;
    }

    let mut y0 = 30.0 + legend_h;
    for (title, rows) in PANELS {
        let rows: Vec<&(&str, &str)> = rows
            .iter()
            .filter(|(k, _)| proxies.iter().any(|(t, _)| ratio(k, t).is_some()))
            .collect();
        let top = y0 + top_pad;
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="{:.0}" font-size="13" font-weight="bold">{}</text>"#,
            y0 + 20.0,
            esc(title)
        );
        let max = rows
            .iter()
            .flat_map(|(k, _)| proxies.iter().filter_map(|(t, _)| ratio(k, t)))
            .fold(1.0_f64, f64::max)
            .min(CAP);
        let scale_max = (max * 1.05 * 2.0).ceil() / 2.0; // axis in steps of 0.5
        let yv = |v: f64| top + plot_h - v.min(scale_max) / scale_max * plot_h;
        // Grid and axis labels every 0.5.
        let mut g = 0.0;
        while g <= scale_max + 1e-9 {
            let y = yv(g);
            let (stroke, w) = if (g - 1.0).abs() < 1e-9 {
                ("#1f77b4", 1.5)
            } else {
                ("#dddddd", 1.0)
            };
            let _ = writeln!(
                s,
                r#"<line x1="{left}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}" stroke="{stroke}" stroke-width="{w}"/><text x="{:.0}" y="{:.1}" text-anchor="end">{g:.1}x</text>"#,
                left + rows.len() as f64 * group_w,
                left - 6.0,
                y + 4.0
            );
            g += 0.5;
        }
        for (i, (k, label)) in rows.iter().enumerate() {
            let gx = left + group_gap / 2.0 + i as f64 * group_w;
            for (j, (t, name)) in proxies.iter().enumerate() {
                let Some(r) = ratio(k, t) else { continue };
                let bx = gx + j as f64 * (bar_w + bar_gap);
                let by = yv(r);
                let v = m
                    .get(&(k.to_string(), t.to_string()))
                    .copied()
                    .unwrap_or(0.0);
                let _ = writeln!(
                    s,
                    r#"<rect x="{bx:.1}" y="{by:.1}" width="{bar_w}" height="{:.1}" fill="{}"><title>{}: {} ({r:.2}x bare pingora)</title></rect>"#,
                    (top + plot_h - by).max(0.5),
                    colour(t),
                    esc(name),
                    fmt_num(v)
                );
                // Ratio above the bar, vertical to fit; clipped bars say their value.
                let _ = writeln!(
                    s,
                    r#"<text transform="translate({:.1},{:.1}) rotate(-90)" font-size="9">{r:.2}{}</text>"#,
                    bx + bar_w - 3.0,
                    by - 3.0,
                    if r > scale_max { " ▲" } else { "" }
                );
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.0}" text-anchor="middle">{}</text>"#,
                gx + (group_w - group_gap) / 2.0,
                top + plot_h + 16.0,
                esc(label)
            );
        }
        y0 = top + plot_h + panel_gap - 20.0;
    }
    s.push_str("</svg>\n");
    s
}
