//! The results table: per run and per kubelet (median over rounds) — per-pod create→Running
//! p50/p99, total (first create → last Running), Node Ready time, RSS and CPU idle and with
//! every pod, CPU and API requests over the steady window, the stats endpoints' latencies and
//! response sizes — and the ratios upstream/ours against the issues' goals (≥ 2× faster to
//! Running, ≤ 1/5 the RSS, no more API requests, ≤ 1/3 the steady CPU, every endpoint request
//! under 50 ms).

use std::fmt::Write;

use crate::endpoints;
use crate::run::RunResult;

/// The goals: ours at least this many times faster to Running…
pub const SPEED_GOAL: f64 = 2.0;
/// …and at most this fraction of upstream's RSS…
pub const RSS_GOAL: f64 = 0.2;
/// …and of its CPU over the steady window (stats collection on for both)…
pub const CPU_GOAL: f64 = 1.0 / 3.0;
/// …and every request to a stats endpoint answered within this many milliseconds.
pub const ENDPOINT_GOAL_MS: f64 = 50.0;

/// Nearest-rank percentile `p` (0–100) of `v`.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// Median (mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 { s[m] } else { (s[m - 1] + s[m]) / 2.0 }
}

/// The figures of one run, in table order.
fn figures(r: &RunResult) -> Vec<f64> {
    let to_running: Vec<f64> = r.pods.iter().filter_map(|(_, t)| Some(t.running_ms? - t.created_ms)).collect();
    let to_bound: Vec<f64> = r.pods.iter().filter_map(|(_, t)| Some(t.bound_ms? - t.created_ms)).collect();
    let first = r.pods.iter().map(|(_, t)| t.created_ms).fold(f64::INFINITY, f64::min);
    let last = r.pods.iter().filter_map(|(_, t)| t.running_ms).fold(f64::NEG_INFINITY, f64::max);
    let mib = |k: u64| k as f64 / 1024.0;
    vec![
        percentile(&to_running, 50.0) / 1000.0,
        percentile(&to_running, 99.0) / 1000.0,
        (last - first) / 1000.0,
        percentile(&to_bound, 50.0) / 1000.0,
        r.node_ready_s,
        mib(r.idle.rss_kib),
        mib(r.loaded.rss_kib),
        mib(r.loaded.hwm_kib),
        r.idle.cpu_s,
        r.ramp_cpu_s,
        r.loaded.cpu_s,
        r.steady_cpu_per_s,
        r.containerd_ramp_cpu_s,
        r.idle.threads as f64,
        r.loaded.threads as f64,
        r.teardown_s,
        r.steady_cpu_per_min,
        requests_per_min(r),
    ]
    .into_iter()
    .chain(endpoint_figures(r))
    .collect()
}

/// Per endpoint p50 and max (ms) and response size (KiB), then the kubelet's CPU seconds while
/// they were served; NaN for results from before the endpoints were timed.
fn endpoint_figures(r: &RunResult) -> Vec<f64> {
    let mut v = Vec::new();
    for path in endpoints::PATHS {
        match r.endpoints.iter().find(|l| l.path == path) {
            Some(l) => v.extend([l.p50_ms(), l.max_ms(), l.bytes as f64 / 1024.0]),
            None => v.extend([f64::NAN; 3]),
        }
    }
    v.push(if r.endpoints.is_empty() { f64::NAN } else { r.endpoints_cpu_s });
    v
}

/// API requests per minute the node made in the steady window.
fn requests_per_min(r: &RunResult) -> f64 {
    if r.steady_s <= 0.0 {
        return f64::NAN;
    }
    r.steady_requests.values().sum::<u64>() as f64 * 60.0 / r.steady_s
}

/// Index of the first endpoint row in [`names`].
const FIRST_ENDPOINT_ROW: usize = NAMES.len();

const NAMES: [(&str, &str); 18] = [
    ("pod create → Running, p50", "s"),
    ("pod create → Running, p99", "s"),
    ("total: first create → last Running", "s"),
    ("pod create → bound (scheduler), p50", "s"),
    ("kubelet start → Node Ready", "s"),
    ("RSS idle", "MiB"),
    ("RSS with all pods (settled)", "MiB"),
    ("peak RSS (VmHWM)", "MiB"),
    ("CPU seconds idle (since start)", "s"),
    ("CPU seconds during the ramp", "s"),
    ("CPU seconds at all pods (since start)", "s"),
    ("CPU with all pods, steady", "s/s"),
    ("containerd CPU during the ramp", "s"),
    ("threads idle", ""),
    ("threads with all pods", ""),
    ("teardown: delete (grace 0) → no container", "s"),
    ("CPU with all pods, steady window", "s/min"),
    ("API requests with all pods, steady window", "req/min"),
];

/// [`NAMES`], then the rows of [`endpoint_figures`].
fn names() -> Vec<(String, &'static str)> {
    let mut v: Vec<(String, &str)> = NAMES.iter().map(|(n, u)| (n.to_string(), *u)).collect();
    for path in endpoints::PATHS {
        v.push((format!("GET {path}, p50 of {}", endpoints::REQUESTS), "ms"));
        v.push((format!("GET {path}, max of {}", endpoints::REQUESTS), "ms"));
        v.push((format!("GET {path}, response size"), "KiB"));
    }
    v.push(("CPU seconds during the endpoint requests".into(), "s"));
    v
}

fn fmt(v: f64, unit: &str) -> String {
    if unit == "s/s" { format!("{v:.3}") } else { format!("{v:.2}") }
}

/// The markdown report of every run in `results`.
pub fn table(results: &[RunResult]) -> String {
    let mut out = String::new();
    let of = |k: &str| results.iter().filter(|r| r.kubelet == k).collect::<Vec<_>>();
    let (ours, upstream) = (of("ours"), of("upstream"));
    let pods = results.first().map_or(0, |r| r.pods.len());
    let _ =
        writeln!(out, "{pods} pods; ours: {} round(s), upstream: {} round(s); cells: median (each round)\n", ours.len(), upstream.len());
    for r in results {
        let _ = writeln!(
            out,
            "- {} round {}: load average {} → {}; allocatable {}",
            r.kubelet, r.round, r.load_before, r.load_after, r.allocatable
        );
    }
    let _ = writeln!(out, "\n| figure | unit | ours | upstream 1.37 | upstream/ours |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    let per = |runs: &[&RunResult]| runs.iter().map(|r| figures(r)).collect::<Vec<_>>();
    let (fo, fu) = (per(&ours), per(&upstream));
    let mut med = Vec::new();
    for (i, (name, unit)) in names().iter().enumerate() {
        let col = |f: &[Vec<f64>]| {
            let v: Vec<f64> = f.iter().map(|x| x[i]).collect();
            let each = v.iter().map(|x| fmt(*x, unit)).collect::<Vec<_>>().join(", ");
            (median(&v), each)
        };
        let ((mo, eo), (mu, eu)) = (col(&fo), col(&fu));
        let _ = writeln!(out, "| {name} | {unit} | {} ({eo}) | {} ({eu}) | {:.2} |", fmt(mo, unit), fmt(mu, unit), mu / mo);
        med.push((mo, mu));
    }
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let speed_p50 = med[0].1 / med[0].0;
    let speed_total = med[2].1 / med[2].0;
    let rss_idle = med[5].0 / med[5].1;
    let rss_loaded = med[6].0 / med[6].1;
    let _ = writeln!(
        out,
        "\ngoal ≥ {SPEED_GOAL}× faster to Running: p50 {speed_p50:.2}×, p99 {:.2}×, total {speed_total:.2}× — {}",
        med[1].1 / med[1].0,
        verdict(speed_p50 >= SPEED_GOAL && speed_total >= SPEED_GOAL)
    );
    let _ = writeln!(
        out,
        "goal RSS ≤ 1/5 of upstream: idle {rss_idle:.3}, with all pods {rss_loaded:.3} — {}",
        verdict(rss_idle <= RSS_GOAL && rss_loaded <= RSS_GOAL)
    );
    let api = med[17];
    let _ = writeln!(out, "goal API requests per minute ≤ upstream's: {:.1} vs {:.1} — {}", api.0, api.1, verdict(api.0 <= api.1));
    let cpu = med[16];
    let _ = writeln!(out, "goal steady CPU ≤ 1/3 of upstream's: {:.3} — {}", cpu.0 / cpu.1, verdict(cpu.0 / cpu.1 <= CPU_GOAL));
    for (i, path) in endpoints::PATHS.iter().enumerate() {
        let (p50, max) = (med[FIRST_ENDPOINT_ROW + 3 * i].0, med[FIRST_ENDPOINT_ROW + 3 * i + 1].0);
        let _ = writeln!(
            out,
            "goal GET {path} under {ENDPOINT_GOAL_MS} ms (ours): p50 {p50:.1} ms, max {max:.1} ms — {}",
            verdict(max < ENDPOINT_GOAL_MS)
        );
    }
    for r in results {
        let kinds: Vec<String> = r.steady_requests.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "- {} round {} requests in {:.0} s: {}", r.kubelet, r.round, r.steady_s, kinds.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_and_medians() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
