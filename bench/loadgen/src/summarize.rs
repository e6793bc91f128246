//! `summarize`: turns the per-round raw figures the script collected into medians, spreads,
//! ratios to direct and a check against issue 5's targets; prints it and writes Markdown.
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
    ("cmux", "cmux-proxy"),
];

/// (key, label, show the ratio to direct)
const METRICS: &[(&str, &str, bool)] = &[
    ("small.rps", "1 small responses: req/s", true),
    ("small.p50_us", "1 small: p50 latency (µs)", true),
    ("small.p99_us", "1 small: p99 latency (µs)", true),
    (
        "small.upconns_per_1k",
        "1 small: new upstream conns per 1000 req",
        false,
    ),
    (
        "small.proxy_cpu_us",
        "1 small: proxy CPU µs per request",
        false,
    ),
    (
        "small.upstream_cpu_us",
        "1 small: upstream nginx CPU µs per request",
        false,
    ),
    ("large_cl.mbps", "2 large, Content-Length: MB/s", true),
    ("large_chunked.mbps", "2 large, chunked: MB/s", true),
    ("ws.rate", "3 WebSocket ping-pong: msgs/s", true),
    ("ws.p50_us", "3 WebSocket: p50 round trip (µs)", true),
    ("ws.p99_us", "3 WebSocket: p99 round trip (µs)", true),
    (
        "ws.proxy_cpu_us",
        "3 WebSocket: proxy CPU µs per message",
        false,
    ),
    ("connect.mbps", "4 CONNECT bulk: MB/s", true),
    (
        "connect.proxy_cpu_us_per_mb",
        "4 CONNECT: proxy CPU µs per MB",
        false,
    ),
    ("mem.idle_kib", "5 memory: RSS idle (KiB)", false),
    (
        "mem.loaded_kib",
        "5 memory: RSS with idle WebSockets (KiB)",
        false,
    ),
    (
        "mem.per_conn_kib",
        "5 memory per idle WebSocket (KiB)",
        false,
    ),
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

enum Check {
    /// cmux / other >= factor (higher is better)
    RatioAtLeast(&'static str, &'static str, f64),
    /// cmux > other
    Above(&'static str, &'static str),
    /// cmux <= other (lower is better)
    NoWorse(&'static str, &'static str),
    /// cmux < other (lower is better)
    Below(&'static str, &'static str),
    /// cmux <= value
    AtMost(&'static str, f64),
}

const CHECKS: &[(&str, Check)] = &[
    (
        "small req/s >= 1.10x nginx",
        Check::RatioAtLeast("small.rps", "nginx", 1.10),
    ),
    (
        "small req/s >= 1.10x HAProxy",
        Check::RatioAtLeast("small.rps", "haproxy", 1.10),
    ),
    (
        "small p99 no worse than nginx",
        Check::NoWorse("small.p99_us", "nginx"),
    ),
    (
        "small p99 no worse than HAProxy",
        Check::NoWorse("small.p99_us", "haproxy"),
    ),
    (
        "upstream conns per 1000 req <= 1",
        Check::AtMost("small.upconns_per_1k", 1.0),
    ),
    (
        "large (Content-Length) >= 0.75x direct",
        Check::RatioAtLeast("large_cl.mbps", "direct", 0.75),
    ),
    (
        "large (Content-Length) above nginx",
        Check::Above("large_cl.mbps", "nginx"),
    ),
    (
        "large (Content-Length) above HAProxy",
        Check::Above("large_cl.mbps", "haproxy"),
    ),
    (
        "large (chunked) >= 0.75x direct",
        Check::RatioAtLeast("large_chunked.mbps", "direct", 0.75),
    ),
    (
        "large (chunked) above nginx",
        Check::Above("large_chunked.mbps", "nginx"),
    ),
    (
        "large (chunked) above HAProxy",
        Check::Above("large_chunked.mbps", "haproxy"),
    ),
    (
        "WebSocket msgs/s >= 0.45x direct",
        Check::RatioAtLeast("ws.rate", "direct", 0.45),
    ),
    (
        "WebSocket msgs/s above nginx",
        Check::Above("ws.rate", "nginx"),
    ),
    (
        "WebSocket msgs/s above HAProxy",
        Check::Above("ws.rate", "haproxy"),
    ),
    (
        "CONNECT MB/s >= 0.65x direct",
        Check::RatioAtLeast("connect.mbps", "direct", 0.65),
    ),
    (
        "memory per idle WebSocket <= 16 KiB",
        Check::AtMost("mem.per_conn_kib", 16.0),
    ),
    (
        "memory per idle WebSocket below nginx",
        Check::Below("mem.per_conn_kib", "nginx"),
    ),
];

fn check(d: &Data, c: &Check) -> (String, Option<bool>) {
    let cm = |m: &str| median(d, m, "cmux");
    match *c {
        Check::RatioAtLeast(m, o, f) => match (cm(m), median(d, m, o)) {
            (Some(a), Some(b)) if b > 0.0 => (format!("{:.2}x", a / b), Some(a / b >= f)),
            _ => ("no data".into(), None),
        },
        Check::Above(m, o) => match (cm(m), median(d, m, o)) {
            (Some(a), Some(b)) if b > 0.0 => (
                format!("{} vs {} ({:.2}x)", fmt_num(a), fmt_num(b), a / b),
                Some(a > b),
            ),
            _ => ("no data".into(), None),
        },
        Check::NoWorse(m, o) | Check::Below(m, o) => match (cm(m), median(d, m, o)) {
            (Some(a), Some(b)) => {
                let ok = if matches!(c, Check::NoWorse(..)) {
                    a <= b
                } else {
                    a < b
                };
                (format!("{} vs {}", fmt_num(a), fmt_num(b)), Some(ok))
            }
            _ => ("no data".into(), None),
        },
        Check::AtMost(m, v) => match cm(m) {
            Some(a) => (fmt_num(a), Some(a <= v)),
            None => ("no data".into(), None),
        },
    }
}

pub fn summarize(raw_path: &str, meta_path: Option<&str>, md_path: Option<&str>) -> io::Result<()> {
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
    let mut metrics: Vec<(String, String, bool)> = METRICS
        .iter()
        .filter(|(k, _, _)| order.iter().any(|m| m == k))
        .map(|(k, l, r)| (k.to_string(), l.to_string(), *r))
        .collect();
    for m in &order {
        if !METRICS.iter().any(|(k, _, _)| k == m) {
            metrics.push((m.clone(), m.clone(), false));
        }
    }
    let targets: Vec<&(&str, &str)> = TARGETS
        .iter()
        .filter(|(t, _)| data.keys().any(|(_, dt)| dt == t))
        .collect();

    let mut md = String::new();
    if let Some(p) = meta_path {
        for line in std::fs::read_to_string(p)?.lines() {
            if let Some((k, v)) = line.split_once('\t') {
                let _ = writeln!(md, "- **{k}**: {v}");
            }
        }
        md.push('\n');
    }
    md.push_str("| workload: figure |");
    for (_, name) in &targets {
        let _ = write!(md, " {name} |");
    }
    md.push_str("\n|---|");
    for _ in &targets {
        md.push_str("---:|");
    }
    md.push('\n');
    for (key, label, show_ratio) in &metrics {
        let _ = write!(md, "| {label} |");
        let direct = median(&data, key, "direct");
        for (t, _) in &targets {
            match data.get(&(key.clone(), t.to_string())) {
                None => md.push_str(" n/a |"),
                Some(s) => {
                    let mut cell = fmt_num(s.median);
                    if s.n > 1 && s.median != 0.0 {
                        let half = (s.max - s.min) / 2.0 / s.median.abs() * 100.0;
                        let _ = write!(cell, " ±{half:.1}%");
                    }
                    if let (true, Some(d), false) = (*show_ratio, direct, *t == "direct") {
                        if d != 0.0 {
                            let _ = write!(cell, " ({:.2}x)", s.median / d);
                        }
                    }
                    let _ = write!(md, " {cell} |");
                }
            }
        }
        md.push('\n');
    }
    md.push_str(
        "\nCells: median over the rounds, ± half the range (max − min) relative to the median, \
         and (in parentheses) the ratio to direct. MB = 10^6 bytes. n/a: not applicable \
         (nginx and HAProxy have no CONNECT; direct has no proxy).\n",
    );

    md.push_str("\n### Targets of issue 5 (cmux-proxy, medians of this run)\n\n");
    md.push_str("| target | measured | met |\n|---|---|---|\n");
    for (name, c) in CHECKS {
        let (measured, ok) = check(&data, c);
        let met = match ok {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(md, "| {name} | {measured} | {met} |");
    }

    md.push_str("\n<details><summary>Per-round values</summary>\n\n");
    md.push_str("| figure | target | values in round order |\n|---|---|---|\n");
    for (key, _, _) in &metrics {
        for (t, name) in &targets {
            if let Some(v) = per_round.get(&(key.clone(), t.to_string())) {
                let vals: Vec<String> = v.iter().map(|x| fmt_num(*x)).collect();
                let _ = writeln!(md, "| {key} | {name} | {} |", vals.join(", "));
            }
        }
    }
    md.push_str("\n</details>\n");

    print!("{md}");
    if let Some(p) = md_path {
        let mut doc = String::from("# cmux-proxy benchmark results\n\n");
        doc.push_str("Written by `bench/run.sh` (`make bench`); see `bench/README.md`.\n\n");
        doc.push_str(&md);
        std::fs::write(p, doc)?;
    }
    Ok(())
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
