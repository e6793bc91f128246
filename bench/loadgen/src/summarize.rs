//! `summarize`: turns the per-round raw figures the script collected into medians, spreads,
//! ratios to bare pingora and a check against the targets; prints it and writes
//! Markdown (results.md and the block of docs/performance.md) and the SVG chart.
//!
//! Raw input: one line per figure, tab-separated: `metric target round value`.
//! Meta input: `key<TAB>value` lines (machine, date, settings), listed above the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

pub const TARGETS: &[(&str, &str)] = &[
    ("direct", "direct"),
    ("nginx", "nginx"),
    ("haproxy", "HAProxy"),
    ("pingora", "bare pingora"),
    ("cmux", "cmux-proxy"),
    ("cmuxb", "cmux-proxy B"),
    ("caddy", "Caddy"),
    ("node", "Node http-proxy"),
    ("go", "Go ReverseProxy"),
];

/// The reference every other target is divided by (issue 20: the design's limit).
pub const REFERENCE: &str = "pingora";

/// (key, label)
const METRICS: &[(&str, &str)] = &[
    ("small.rps", "1 small responses: req/s"),
    ("small.p50_us", "1 small: p50 latency (µs)"),
    ("small.p99_us", "1 small: p99 latency (µs)"),
    (
        "small.upconns_per_1k",
        "1 small: new upstream conns per 1000 req",
    ),
    ("small.proxy_cpu_us", "1 small: proxy CPU µs per request"),
    (
        "small.upstream_cpu_us",
        "1 small: upstream nginx CPU µs per request",
    ),
    ("large_cl.mbps", "2 large, Content-Length: MB/s"),
    ("large_chunked.mbps", "2 large, chunked: MB/s"),
    ("ws.rate", "3 WebSocket ping-pong: msgs/s"),
    ("ws.p50_us", "3 WebSocket: p50 round trip (µs)"),
    ("ws.p99_us", "3 WebSocket: p99 round trip (µs)"),
    ("ws.proxy_cpu_us", "3 WebSocket: proxy CPU µs per message"),
    ("connect.mbps", "4 CONNECT bulk: MB/s"),
    (
        "connect.proxy_cpu_us_per_mb",
        "4 CONNECT: proxy CPU µs per MB",
    ),
    ("h2c.rps", "7 h2c small responses (h2load): req/s"),
    ("h2c.proxy_cpu_us", "7 h2c: proxy CPU µs per request"),
    ("mem.idle_kib", "5 memory: RSS idle (KiB)"),
    ("mem.loaded_kib", "5 memory: RSS with idle WebSockets (KiB)"),
    ("mem.per_conn_kib", "5 memory per idle WebSocket (KiB)"),
    (
        "scale.p50_base_us",
        "6 scale, fixed rate, no idle WebSockets: p50 (µs)",
    ),
    (
        "scale.p99_base_us",
        "6 scale, fixed rate, no idle WebSockets: p99 (µs)",
    ),
    (
        "scale.p50_idle_us",
        "6 scale, fixed rate, idle WebSockets open: p50 (µs)",
    ),
    (
        "scale.p99_idle_us",
        "6 scale, fixed rate, idle WebSockets open: p99 (µs)",
    ),
    (
        "scale.p99_ratio",
        "6 scale: p99 with ÷ without idle WebSockets",
    ),
    (
        "scale.rss_kib",
        "6 scale: RSS during the run with idle WebSockets (KiB)",
    ),
];

/// The figures of the README's table, in order: (key, label).
const README_ROWS: &[(&str, &str)] = &[
    ("small.rps", "small responses, 50 connections: req/s"),
    ("small.p99_us", "small: p99 latency (µs)"),
    ("small.proxy_cpu_us", "small: proxy CPU per request (µs)"),
    ("large_cl.mbps", "large response, Content-Length: MB/s"),
    ("large_chunked.mbps", "large response, chunked: MB/s"),
    ("ws.rate", "WebSocket ping-pong, 10 connections: msgs/s"),
    ("ws.proxy_cpu_us", "WebSocket: proxy CPU per message (µs)"),
    ("connect.mbps", "CONNECT upload through one tunnel: MB/s"),
    ("mem.per_conn_kib", "memory per idle WebSocket (KiB)"),
    ("scale.p99_base_us", "fixed 1,000 req/s: p99 (µs)"),
    (
        "scale.p99_idle_us",
        "the same with the idle WebSockets open: p99 (µs)",
    ),
    ("scale.rss_kib", "RSS with the idle WebSockets open (MiB)"),
];

struct Stat {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn stat(mut v: Vec<f64>) -> Option<Stat> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

pub fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        let s = format!("{:.0}", a);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if x < 0.0 {
            out.insert(0, '-');
        }
        out
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

type Data = BTreeMap<(String, String), Stat>;

fn median(d: &Data, metric: &str, target: &str) -> Option<f64> {
    d.get(&(metric.to_string(), target.to_string()))
        .map(|s| s.median)
}

/// One target of issue 20 for cmux-proxy, checked on this run's medians.
enum Check {
    /// cmux / other >= factor (higher is better)
    RatioAtLeast(&'static str, &'static str, f64),
    /// cmux / other <= factor (lower is better)
    RatioAtMost(&'static str, &'static str, f64),
    /// cmux - other <= delta (lower is better)
    PlusAtMost(&'static str, &'static str, f64),
    /// cmux < other (lower is better)
    Below(&'static str, &'static str),
    /// cmux <= value
    AtMost(&'static str, f64),
}

const CHECKS: &[(&str, Check)] = &[
    (
        "small req/s >= 0.95x bare pingora",
        Check::RatioAtLeast("small.rps", "pingora", 0.95),
    ),
    (
        "small p99 <= 1.05x bare pingora",
        Check::RatioAtMost("small.p99_us", "pingora", 1.05),
    ),
    (
        "small proxy CPU per request <= bare pingora + 3 µs",
        Check::PlusAtMost("small.proxy_cpu_us", "pingora", 3.0),
    ),
    (
        "small req/s >= 1.8x Caddy",
        Check::RatioAtLeast("small.rps", "caddy", 1.8),
    ),
    (
        "small req/s >= 3x Node http-proxy",
        Check::RatioAtLeast("small.rps", "node", 3.0),
    ),
    (
        "large (Content-Length) >= 0.97x bare pingora",
        Check::RatioAtLeast("large_cl.mbps", "pingora", 0.97),
    ),
    (
        "large (chunked) >= 0.97x bare pingora",
        Check::RatioAtLeast("large_chunked.mbps", "pingora", 0.97),
    ),
    (
        "WebSocket msgs/s >= bare pingora",
        Check::RatioAtLeast("ws.rate", "pingora", 1.0),
    ),
    (
        "(WebSocket msgs/s against Caddy, for reference)",
        Check::RatioAtLeast("ws.rate", "caddy", 0.0),
    ),
    (
        "memory per idle WebSocket <= 40 KiB",
        Check::AtMost("mem.per_conn_kib", 40.0),
    ),
    (
        "memory per idle WebSocket below bare pingora",
        Check::Below("mem.per_conn_kib", "pingora"),
    ),
    (
        "memory per idle WebSocket below Caddy",
        Check::Below("mem.per_conn_kib", "caddy"),
    ),
    (
        "scale: p99 with the idle WebSockets <= 2x without",
        Check::AtMost("scale.p99_ratio", 2.0),
    ),
];

fn check(d: &Data, c: &Check) -> (String, Option<bool>) {
    let cm = |m: &str| median(d, m, "cmux");
    let both = |m: &str, o: &str| match (cm(m), median(d, m, o)) {
        (Some(a), Some(b)) if b > 0.0 => Some((a, b)),
        _ => None,
    };
    let no_data = || ("no data".to_string(), None);
    match *c {
        Check::RatioAtLeast(m, o, f) => both(m, o).map_or_else(no_data, |(a, b)| {
            let ok = (f > 0.0).then_some(a / b >= f);
            (
                format!("{} vs {} ({:.2}x)", fmt_num(a), fmt_num(b), a / b),
                ok,
            )
        }),
        Check::RatioAtMost(m, o, f) => both(m, o).map_or_else(no_data, |(a, b)| {
            (
                format!("{} vs {} ({:.2}x)", fmt_num(a), fmt_num(b), a / b),
                Some(a / b <= f),
            )
        }),
        Check::PlusAtMost(m, o, delta) => both(m, o).map_or_else(no_data, |(a, b)| {
            (
                format!("{} vs {} ({:+.1})", fmt_num(a), fmt_num(b), a - b),
                Some(a - b <= delta),
            )
        }),
        Check::Below(m, o) => both(m, o).map_or_else(no_data, |(a, b)| {
            (format!("{} vs {}", fmt_num(a), fmt_num(b)), Some(a < b))
        }),
        Check::AtMost(m, v) => match cm(m) {
            Some(a) => (fmt_num(a), Some(a <= v)),
            None => no_data(),
        },
    }
}

/// Where the summary goes besides stdout.
pub struct Outputs<'a> {
    pub meta: Option<&'a str>,
    /// results.md: everything, with spreads and per-round values
    pub markdown: Option<&'a str>,
    /// the block of docs/performance.md: compact table and the target check
    pub readme: Option<&'a str>,
    /// the chart
    pub svg: Option<&'a str>,
}

fn ratio_to_ref(d: &Data, key: &str, t: &str) -> Option<f64> {
    let r = median(d, key, REFERENCE)?;
    let v = median(d, key, t)?;
    (r != 0.0 && t != REFERENCE).then_some(v / r)
}

pub fn summarize(raw_path: &str, out: &Outputs) -> io::Result<()> {
    let raw = std::fs::read_to_string(raw_path)?;
    let mut values: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for line in raw.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            continue;
        }
        let Ok(v) = f[3].trim().parse::<f64>() else {
            continue;
        };
        if !order.iter().any(|m| m == f[0]) {
            order.push(f[0].to_string());
        }
        values
            .entry((f[0].to_string(), f[1].to_string()))
            .or_default()
            .push(v);
    }
    let per_round = values.clone();
    let data: Data = values
        .into_iter()
        .filter_map(|(k, v)| stat(v).map(|s| (k, s)))
        .collect();

    // Metrics in the canonical order first, then any unknown ones as they came.
    let mut metrics: Vec<(String, String)> = METRICS
        .iter()
        .filter(|(k, _)| order.iter().any(|m| m == k))
        .map(|(k, l)| (k.to_string(), l.to_string()))
        .collect();
    for m in &order {
        if !METRICS.iter().any(|(k, _)| k == m) {
            metrics.push((m.clone(), m.clone()));
        }
    }
    let targets: Vec<&(&str, &str)> = TARGETS
        .iter()
        .filter(|(t, _)| data.keys().any(|(_, dt)| dt == t))
        .collect();
    let has_ref = targets.iter().any(|(t, _)| *t == REFERENCE);

    let mut meta = String::new();
    if let Some(p) = out.meta {
        for line in std::fs::read_to_string(p)?.lines() {
            if let Some((k, v)) = line.split_once('\t') {
                let _ = writeln!(meta, "- **{k}**: {v}");
            }
        }
        meta.push('\n');
    }

    // The full table: each target's median ± spread, then (every target but the
    // reference) its ratio to bare pingora in a column of its own.
    let mut md = meta.clone();
    md.push_str("| workload: figure |");
    for (t, name) in &targets {
        let _ = write!(md, " {name} |");
        if has_ref && *t != REFERENCE {
            md.push_str(" ÷ pingora |");
        }
    }
    md.push_str("\n|---|");
    for (t, _) in &targets {
        md.push_str("---:|");
        if has_ref && *t != REFERENCE {
            md.push_str("---:|");
        }
    }
    md.push('\n');
    for (key, label) in &metrics {
        let _ = write!(md, "| {label} |");
        for (t, _) in &targets {
            match data.get(&(key.clone(), t.to_string())) {
                None => md.push_str(" n/a |"),
                Some(s) => {
                    let mut cell = fmt_num(s.median);
                    if s.n > 1 && s.median != 0.0 {
                        let half = (s.max - s.min) / 2.0 / s.median.abs() * 100.0;
                        let _ = write!(cell, " ±{half:.0}%");
                    }
                    let _ = write!(md, " {cell} |");
                }
            }
            if has_ref && *t != REFERENCE {
                match ratio_to_ref(&data, key, t) {
                    Some(r) => {
                        let _ = write!(md, " {r:.2}x |");
                    }
                    None => md.push_str(" |"),
                }
            }
        }
        md.push('\n');
    }
    md.push_str(
        "\nCells: median over the rounds, ± half the range (max − min) relative to the median; \
         `÷ pingora`: that median divided by bare pingora's (for times and memory, lower is \
         better). MB = 10^6 bytes. n/a: not applicable (only cmux-proxy does CONNECT; direct \
         has no proxy).\n",
    );

    let mut checks = String::from("| target (cmux-proxy) | measured | met |\n|---|---|---|\n");
    for (name, c) in CHECKS {
        let (measured, ok) = check(&data, c);
        let met = match ok {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(checks, "| {name} | {measured} | {met} |");
    }
    md.push_str("\n### Targets (cmux-proxy, medians of this run)\n\n");
    md.push_str(&checks);

    md.push_str("\n<details><summary>Per-round values</summary>\n\n");
    md.push_str("| figure | target | values in round order |\n|---|---|---|\n");
    for (key, _) in &metrics {
        for (t, name) in &targets {
            if let Some(v) = per_round.get(&(key.clone(), t.to_string())) {
                let vals: Vec<String> = v.iter().map(|x| fmt_num(*x)).collect();
                let _ = writeln!(md, "| {key} | {name} | {} |", vals.join(", "));
            }
        }
    }
    md.push_str("\n</details>\n");

    print!("{md}");
    if let Some(p) = out.markdown {
        let mut doc = String::from("# cmux-proxy benchmark results\n\n");
        doc.push_str("Written by `bench/run.sh` (`make bench`); see `bench/README.md`. ");
        doc.push_str("Chart: [`results.svg`](results.svg).\n\n");
        doc.push_str(&md);
        std::fs::write(p, doc)?;
    }
    if let Some(p) = out.readme {
        std::fs::write(p, readme_block(&data, &targets, &checks))?;
    }
    if let Some(p) = out.svg {
        std::fs::write(
            p,
            crate::chart::svg(&data_medians(&data), &meta_date(out.meta)),
        )?;
    }
    Ok(())
}

/// The README's compact table: median and, in its own column, the ratio to bare pingora;
/// then the target check.
fn readme_block(d: &Data, targets: &[&(&str, &str)], checks: &str) -> String {
    let mut s = String::from("| workload |");
    let cols: Vec<&(&str, &str)> = targets.to_vec();
    for (t, name) in &cols {
        let _ = write!(s, " {name} |");
        if *t != REFERENCE && *t != "direct" {
            s.push_str(" ÷ |");
        }
    }
    s.push_str("\n|---|");
    for (t, _) in &cols {
        s.push_str("---:|");
        if *t != REFERENCE && *t != "direct" {
            s.push_str("---:|");
        }
    }
    s.push('\n');
    for (key, label) in README_ROWS {
        if !d.keys().any(|(k, _)| k == key) {
            continue;
        }
        let _ = write!(s, "| {label} |");
        for (t, _) in &cols {
            let v = median(d, key, t).map(|v| {
                if *key == "scale.rss_kib" {
                    fmt_num(v / 1024.0)
                } else {
                    fmt_num(v)
                }
            });
            let _ = write!(s, " {} |", v.unwrap_or_else(|| "-".into()));
            if *t != REFERENCE && *t != "direct" {
                match ratio_to_ref(d, key, t) {
                    Some(r) => {
                        let _ = write!(s, " {r:.2} |");
                    }
                    None => s.push_str(" |"),
                }
            }
        }
        s.push('\n');
    }
    s.push_str(
        "\n÷: ratio to bare pingora (for latency, CPU and memory, lower is better); \
         medians of the run's rounds, spreads in [`bench/results.md`](../bench/results.md).\n\n",
    );
    s.push_str(checks);
    s
}

fn data_medians(d: &Data) -> crate::chart::Medians {
    let mut m = crate::chart::Medians::new();
    for ((k, t), st) in d {
        m.insert((k.clone(), t.clone()), st.median);
    }
    m
}

fn meta_date(meta: Option<&str>) -> String {
    meta.and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("date\t").map(str::to_string))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(69512.4), "69,512");
        assert_eq!(fmt_num(1234567.0), "1,234,567");
        assert_eq!(fmt_num(512.3), "512");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(0.123), "0.12");
    }

    #[test]
    fn medians() {
        assert_eq!(stat(vec![3.0, 1.0, 2.0]).unwrap().median, 2.0);
        assert_eq!(stat(vec![4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(stat(vec![f64::NAN]).is_none());
    }
}
