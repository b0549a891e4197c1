//! Counter and histogram families in the Prometheus text format (0.0.4), with upstream's
//! `component-base` conventions: `# HELP <name> [<STABILITY>] <help>`, labels in declaration
//! order, histogram buckets as `le` with `+Inf`, `_sum` and `_count`. Thread-safe; a series is
//! created on first use.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::prober::metrics::escape;

/// Upstream's `metrics.DefBuckets`.
pub const DEF_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// `count` buckets from `start`, each `factor` times the previous (upstream `ExponentialBuckets`).
pub fn exponential_buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    (0..count).map(|i| start * factor.powi(i as i32)).collect()
}

fn header(out: &mut String, name: &str, stability: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} [{stability}] {help}\n# TYPE {name} {kind}");
}

fn labels(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = names.iter().zip(values).map(|(n, v)| format!("{n}=\"{}\"", escape(v))).collect();
    if let Some((n, v)) = extra {
        parts.push(format!("{n}=\"{v}\""));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

fn number(v: f64) -> String {
    if v.is_infinite() { "+Inf".into() } else { format!("{v}") }
}

/// A counter per label set.
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    stability: &'static str,
    label_names: &'static [&'static str],
    series: Mutex<BTreeMap<Vec<String>, f64>>,
}

impl CounterVec {
    /// A counter family `name` with its `help` text, `stability` (`ALPHA`, `STABLE`, ...) and
    /// label names, in the order values are given.
    pub fn new(name: &'static str, help: &'static str, stability: &'static str, label_names: &'static [&'static str]) -> Self {
        CounterVec { name, help, stability, label_names, series: Mutex::default() }
    }

    /// Adds one to the series of label `values` (in `label_names` order).
    pub fn inc(&self, values: &[&str]) {
        let key = values.iter().map(|v| v.to_string()).collect();
        *self.series.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1.0;
    }

    /// The count for `values` (0 when never incremented).
    pub fn get(&self, values: &[&str]) -> f64 {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        self.series.lock().unwrap_or_else(|e| e.into_inner()).get(&key).copied().unwrap_or(0.0)
    }

    /// Appends the family in the text format; nothing before the first increment.
    pub fn render(&self, out: &mut String) {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if series.is_empty() {
            return;
        }
        header(out, self.name, self.stability, self.help, "counter");
        for (values, v) in series.iter() {
            let _ = writeln!(out, "{}{} {}", self.name, labels(self.label_names, values, None), number(*v));
        }
    }
}

#[derive(Clone, Default)]
struct HistogramSeries {
    /// Observations at or below each bucket's bound (cumulative on render).
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// A histogram per label set.
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    stability: &'static str,
    label_names: &'static [&'static str],
    bounds: Vec<f64>,
    series: Mutex<BTreeMap<Vec<String>, HistogramSeries>>,
}

impl HistogramVec {
    /// A histogram family with bucket upper bounds `bounds` (ascending; `+Inf` is added on
    /// render).
    pub fn new(
        name: &'static str,
        help: &'static str,
        stability: &'static str,
        label_names: &'static [&'static str],
        bounds: Vec<f64>,
    ) -> Self {
        HistogramVec { name, help, stability, label_names, bounds, series: Mutex::default() }
    }

    /// Records `v` in the series of label `values`.
    pub fn observe(&self, values: &[&str], v: f64) {
        let key = values.iter().map(|v| v.to_string()).collect();
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = series.entry(key).or_insert_with(|| HistogramSeries { buckets: vec![0; self.bounds.len()], ..Default::default() });
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            s.buckets[i] += 1;
        }
        s.sum += v;
        s.count += 1;
    }

    /// Keeps only the series whose label values satisfy `keep`.
    pub fn retain(&self, keep: impl Fn(&[String]) -> bool) {
        self.series.lock().unwrap_or_else(|e| e.into_inner()).retain(|values, _| keep(values));
    }

    /// Observations for `values`.
    pub fn count(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        self.series.lock().unwrap_or_else(|e| e.into_inner()).get(&key).map_or(0, |s| s.count)
    }

    /// Appends the family in the text format: a labelled family not before its first observation,
    /// an unlabelled one always (with zero counts until then).
    pub fn render(&self, out: &mut String) {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if series.is_empty() && !self.label_names.is_empty() {
            return;
        }
        header(out, self.name, self.stability, self.help, "histogram");
        let empty = HistogramSeries { buckets: vec![0; self.bounds.len()], ..Default::default() };
        let unlabelled = [(Vec::new(), empty)];
        let rows: Vec<(&Vec<String>, &HistogramSeries)> =
            if series.is_empty() { unlabelled.iter().map(|(k, v)| (k, v)).collect() } else { series.iter().collect() };
        for (values, s) in rows {
            let mut cumulative = 0;
            for (bound, n) in self.bounds.iter().zip(&s.buckets) {
                cumulative += n;
                let _ =
                    writeln!(out, "{}_bucket{} {cumulative}", self.name, labels(self.label_names, values, Some(("le", &number(*bound)))));
            }
            let _ = writeln!(out, "{}_bucket{} {}", self.name, labels(self.label_names, values, Some(("le", "+Inf"))), s.count);
            let _ = writeln!(out, "{}_sum{} {}", self.name, labels(self.label_names, values, None), number(s.sum));
            let _ = writeln!(out, "{}_count{} {}", self.name, labels(self.label_names, values, None), s.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_inf_sum_and_count() {
        let h = HistogramVec::new("x_seconds", "X.", "ALPHA", &["operation_type"], vec![0.1, 1.0]);
        h.observe(&["sync"], 0.05);
        h.observe(&["sync"], 0.5);
        h.observe(&["sync"], 5.0);
        let mut out = String::new();
        h.render(&mut out);
        assert!(out.starts_with("# HELP x_seconds [ALPHA] X.\n# TYPE x_seconds histogram\n"), "{out}");
        for line in [
            "x_seconds_bucket{operation_type=\"sync\",le=\"0.1\"} 1",
            "x_seconds_bucket{operation_type=\"sync\",le=\"1\"} 2",
            "x_seconds_bucket{operation_type=\"sync\",le=\"+Inf\"} 3",
            "x_seconds_sum{operation_type=\"sync\"} 5.55",
            "x_seconds_count{operation_type=\"sync\"} 3",
        ] {
            assert!(out.contains(&format!("{line}\n")), "{line} in {out}");
        }
    }

    #[test]
    fn an_unlabelled_histogram_is_shown_empty_and_counters_only_once_used() {
        let h = HistogramVec::new("y_seconds", "Y.", "ALPHA", &[], vec![1.0]);
        let c = CounterVec::new("z_total", "Z.", "ALPHA", &["op"]);
        let mut out = String::new();
        h.render(&mut out);
        c.render(&mut out);
        assert!(out.contains("y_seconds_bucket{le=\"+Inf\"} 0\ny_seconds_sum 0\ny_seconds_count 0\n"), "{out}");
        assert!(!out.contains("z_total"));
        c.inc(&["a"]);
        c.inc(&["a"]);
        c.render(&mut out);
        assert!(out.contains("z_total{op=\"a\"} 2\n") && c.get(&["a"]) == 2.0, "{out}");
        assert_eq!(exponential_buckets(0.005, 2.5, 3), vec![0.005, 0.0125, 0.03125]);
    }
}
