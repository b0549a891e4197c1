//! The results table: per-run lines, medians (with min–max) of every figure, the
//! kubelet/baseline ratio, and the goals checked against the medians.

use std::fmt::Write;
use std::time::Duration;

use crate::baseline::BaselineRun;
use crate::kubelet_run::KubeletRun;

/// RSS goals of the issue, in KiB.
pub const IDLE_RSS_GOAL_KIB: u64 = 15 * 1024;
pub const LOADED_RSS_GOAL_KIB: u64 = 30 * 1024;
/// The kubelet may take at most this much longer than the baseline.
pub const TIME_GOAL_RATIO: f64 = 1.10;

/// Median of `v` (mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

fn row(out: &mut String, name: &str, unit: &str, v: Vec<f64>) -> f64 {
    let med = median(v.clone());
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // CPU figures come in clock ticks (10 ms): three decimals show them whole.
    let p = if unit == "s/s" || name.contains("CPU") { 3 } else { 2 };
    let _ = writeln!(out, "| {name:<44} | {med:>9.p$} | {min:>9.p$} | {max:>9.p$} | {unit:<5} |");
    med
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The markdown table and the goal verdicts.
pub fn table(pods: usize, base: &[BaselineRun], kube: &[KubeletRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{pods} pods, {} baseline runs, {} kubelet runs (median, min, max)\n", base.len(), kube.len());
    let _ = writeln!(out, "| {:<44} | {:>9} | {:>9} | {:>9} | {:<5} |", "figure", "median", "min", "max", "unit");
    let _ = writeln!(out, "|{}|{}|{}|{}|{}|", "-".repeat(46), "-".repeat(11), "-".repeat(11), "-".repeat(11), "-".repeat(7));
    let b = |f: fn(&BaselineRun) -> f64| base.iter().map(f).collect::<Vec<_>>();
    let k = |f: fn(&KubeletRun) -> f64| kube.iter().map(f).collect::<Vec<_>>();
    let base_time = row(&mut out, "baseline: all containers running", "s", b(|r| secs(r.all_running)));
    row(&mut out, "baseline: last StartContainer returned", "s", b(|r| secs(r.last_start_returned)));
    row(&mut out, "baseline: containerd CPU until running", "s", b(|r| r.containerd_cpu_s));
    row(&mut out, "baseline: teardown (stop+remove sandboxes)", "s", b(|r| secs(r.teardown)));
    let kube_time = row(&mut out, "kubelet: all containers running (CRI)", "s", k(|r| secs(r.all_running)));
    row(&mut out, "kubelet: all pods Running on /pods", "s", k(|r| secs(r.all_reported)));
    row(&mut out, "kubelet: kubelet CPU until running", "s", k(|r| r.startup_cpu_s));
    row(&mut out, "kubelet: containerd CPU until running", "s", k(|r| r.containerd_cpu_s));
    row(&mut out, "kubelet: teardown (manifests removed → gone)", "s", k(|r| secs(r.teardown)));
    let idle = row(&mut out, "kubelet: RSS idle", "MiB", k(|r| mib(r.idle.rss_kib)));
    let loaded = row(&mut out, &format!("kubelet: RSS with {pods} pods (settled)"), "MiB", k(|r| mib(r.loaded.rss_kib)));
    row(&mut out, "kubelet: peak RSS (VmHWM)", "MiB", k(|r| mib(r.loaded.hwm_kib)));
    row(&mut out, "kubelet: threads idle", "", k(|r| r.idle.threads as f64));
    row(&mut out, &format!("kubelet: threads with {pods} pods"), "", k(|r| r.loaded.threads as f64));
    row(&mut out, &format!("kubelet: CPU with {pods} pods, steady"), "s/s", k(|r| r.loaded_cpu_per_s));
    let ratio = kube_time / base_time;
    let _ = writeln!(out, "\nratio kubelet/baseline (medians, all containers running): {ratio:.2}");
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let _ = writeln!(out, "goal time ≤ {TIME_GOAL_RATIO:.2}× baseline: {}", verdict(ratio <= TIME_GOAL_RATIO));
    let _ = writeln!(out, "goal RSS idle < {} MiB: {} ({idle:.1} MiB)", IDLE_RSS_GOAL_KIB / 1024, verdict(idle < mib(IDLE_RSS_GOAL_KIB)));
    let _ = writeln!(
        out,
        "goal RSS with {pods} pods < {} MiB: {} ({loaded:.1} MiB)",
        LOADED_RSS_GOAL_KIB / 1024,
        verdict(loaded < mib(LOADED_RSS_GOAL_KIB))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
