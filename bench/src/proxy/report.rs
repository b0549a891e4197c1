//! The proxy benchmark's result table: medians (min–max) per proxy, and the
//! issue's goals as ratios of knode's figures to upstream's (the first row run, normally
//! upstream's nftables mode) from the same run.

use std::fmt::Write;

use crate::probe::ProcStats;
use crate::run::Measurement;

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn cell(v: &[f64], scale: f64, unit: &str) -> String {
    match median(v) {
        None => "–".into(),
        Some(m) => {
            let (lo, hi) = (v.iter().copied().fold(f64::MAX, f64::min), v.iter().copied().fold(f64::MIN, f64::max));
            if v.len() > 1 {
                format!("{:.1} {unit} ({:.1}–{:.1})", m * scale, lo * scale, hi * scale)
            } else {
                format!("{:.1} {unit}", m * scale)
            }
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn ratio(upstream: Option<f64>, ours: Option<f64>) -> String {
    match (upstream, ours) {
        (Some(u), Some(o)) if o > 0.0 => format!("{:.1}×", u / o),
        _ => "–".into(),
    }
}

/// A Markdown table of every measured proxy, the first being the reference.
pub fn table(services: usize, endpoints: usize, rows: &[(&str, Measurement)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n#### {services} Services × {endpoints} endpoints\n");
    let _ = writeln!(out, "| | {} |", rows.iter().map(|(l, _)| *l).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(rows.len()));
    let line = |out: &mut String, name: &str, f: &dyn Fn(&Measurement) -> String| {
        let cells: Vec<String> = rows.iter().map(|(_, m)| f(m)).collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    };
    line(&mut out, "first (full) sync", &|m| cell(&m.first_sync_s, 1e3, "ms"));
    line(&mut out, "start → first sync done", &|m| cell(&m.start_to_synced_s, 1.0, "s"));
    line(&mut out, "one-Service change: write → synced", &|m| cell(&m.change_e2e_s, 1e3, "ms"));
    line(&mut out, "one-Service change: sync duration", &|m| cell(&m.change_sync_s, 1e3, "ms"));
    line(&mut out, "one-Service scale-up (+1 endpoint): write → synced", &|m| cell(&m.scale_e2e_s, 1e3, "ms"));
    line(&mut out, "one-Service scale-up: sync duration", &|m| cell(&m.scale_sync_s, 1e3, "ms"));
    line(&mut out, "RSS after first sync", &|m| mib(m.after_sync.rss_kib));
    line(&mut out, "RSS at end / peak (VmHWM)", &|m| format!("{} / {}", mib(m.end.rss_kib), mib(m.end.hwm_kib)));
    line(&mut out, "CPU self / children (last start)", &|m: &Measurement| {
        let ProcStats { cpu_s, children_cpu_s, .. } = m.end;
        format!("{cpu_s:.2} s / {children_cpu_s:.2} s")
    });
    line(&mut out, "lines of rules", &|m| m.rule_lines.to_string());
    if let Some((up_label, up)) = rows.first() {
        let _ = writeln!(out, "\nRatios against {up_label} (goal in brackets):\n");
        for (label, m) in rows[1..].iter().filter(|(l, _)| l.starts_with("knode")) {
            let _ = writeln!(
                out,
                "- {label}: full sync {} faster [≥ 3×]; one-Service change {} faster ({} ms) [≥ 10×]; scale-up {} faster ({} ms); RSS {:.2} of upstream's [≤ 0.33]",
                ratio(median(&up.first_sync_s), median(&m.first_sync_s)),
                ratio(median(&up.change_e2e_s), median(&m.change_e2e_s)),
                median(&m.change_e2e_s).map(|v| format!("{:.1}", v * 1e3)).unwrap_or("–".into()),
                ratio(median(&up.scale_e2e_s), median(&m.scale_e2e_s)),
                median(&m.scale_e2e_s).map(|v| format!("{:.1}", v * 1e3)).unwrap_or("–".into()),
                m.end.rss_kib as f64 / up.end.rss_kib.max(1) as f64,
            );
        }
    }
    out
}
