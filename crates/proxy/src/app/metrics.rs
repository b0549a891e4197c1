//! kube-proxy's Prometheus metrics, with upstream's names and buckets
//! (`pkg/proxy/metrics/metrics.go`), rendered in the text exposition format
//! by hand: a handful of counters, gauges and histograms does not need a
//! metrics library. Written by the sync loop, read by the `/metrics` handler.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// A cumulative histogram with fixed upper bounds.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: Vec<f64>) -> Self {
        Histogram { counts: vec![0; bounds.len()], bounds, sum: 0.0, count: 0 }
    }

    fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    /// `labels`: `ip_family="IPv4"`-style pairs put before `le`, as Prometheus' Go client orders them.
    fn render(&self, name: &str, help: &str, labels: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {}", self.sum, self.count);
    }
}

/// `prometheus.ExponentialBuckets(start, factor, n)`.
fn exponential(start: f64, factor: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| start * factor.powi(i as i32)).collect()
}

/// `prometheus.LinearBuckets(start, width, n)`.
fn linear(start: f64, width: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| start + width * i as f64).collect()
}

#[derive(Debug)]
struct State {
    sync_duration: Histogram,
    full_sync_duration: Histogram,
    partial_sync_duration: Histogram,
    network_programming: Histogram,
    gauges: BTreeMap<&'static str, f64>,
    counters: BTreeMap<&'static str, f64>,
    no_local_endpoints: BTreeMap<&'static str, f64>,
}

/// Every metric kube-proxy exports. As upstream 1.37, the sync metrics carry the proxier's
/// `ip_family` (`IPv4` or `IPv6`; this proxy runs one family).
#[derive(Debug)]
pub struct Metrics {
    state: Mutex<State>,
    ip_family: &'static str,
}

/// Gauges and counters upstream labels with `ip_family`.
const BY_FAMILY: &[&str] = &[
    "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
    "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
    "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
    "kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total",
    "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
    "kubeproxy_conntrack_reconciler_deleted_entries_total",
];

/// Gauges (name, help).
const GAUGES: &[(&str, &str)] = &[
    ("kubeproxy_sync_proxy_rules_last_timestamp_seconds", "[ALPHA] The last time proxy rules were successfully synced"),
    ("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "[ALPHA] The last time a sync of proxy rules was queued"),
    ("kubeproxy_sync_proxy_rules_endpoint_changes_pending", "[ALPHA] Pending proxy rules Endpoint changes"),
    ("kubeproxy_sync_proxy_rules_service_changes_pending", "[ALPHA] Pending proxy rules Service changes"),
    ("kubeproxy_sync_proxy_rules_nftables_elements", "[ALPHA] Number of nftables commands written in the last sync"),
    ("kubeproxy_sync_proxy_rules_iptables_total", "[ALPHA] Total number of iptables rules owned by kube-proxy"),
];

/// Counters (name, help).
const COUNTERS: &[(&str, &str)] = &[
    ("kubeproxy_sync_proxy_rules_endpoint_changes_total", "[ALPHA] Cumulative proxy rules Endpoint changes"),
    ("kubeproxy_sync_proxy_rules_service_changes_total", "[ALPHA] Cumulative proxy rules Service changes"),
    ("kubeproxy_sync_proxy_rules_nftables_sync_failures_total", "[ALPHA] Cumulative proxy nftables sync failures"),
    ("kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total", "[ALPHA] Cumulative proxy nftables cleanup failures"),
    ("kubeproxy_sync_proxy_rules_iptables_restore_failures_total", "[ALPHA] Cumulative proxy iptables restore failures"),
    ("kubeproxy_conntrack_reconciler_deleted_entries_total", "[ALPHA] Cumulative conntrack flows deleted by conntrack reconciler"),
];

impl Default for Metrics {
    fn default() -> Self {
        Self::for_family("IPv4")
    }
}

impl Metrics {
    /// The metrics of a proxier of `ip_family` (`"IPv4"` or `"IPv6"`).
    pub fn for_family(ip_family: &'static str) -> Self {
        let sync = || Histogram::new(exponential(0.001, 2.0, 15));
        let mut np = linear(0.25, 0.25, 2);
        np.extend(linear(1.0, 1.0, 59));
        np.extend(linear(60.0, 5.0, 12));
        np.extend(linear(120.0, 30.0, 7));
        Metrics {
            state: Mutex::new(State {
                sync_duration: sync(),
                full_sync_duration: sync(),
                partial_sync_duration: sync(),
                network_programming: Histogram::new(np),
                gauges: GAUGES.iter().map(|(n, _)| (*n, 0.0)).collect(),
                counters: COUNTERS.iter().map(|(n, _)| (*n, 0.0)).collect(),
                no_local_endpoints: [("internal", 0.0), ("external", 0.0)].into_iter().collect(),
            }),
            ip_family,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A sync took `secs` (`full`: a full rather than partial sync).
    pub fn observe_sync(&self, secs: f64, full: bool) {
        self.with(|s| {
            s.sync_duration.observe(secs);
            if full {
                s.full_sync_duration.observe(secs);
            } else {
                s.partial_sync_duration.observe(secs);
            }
        });
    }

    /// Records one network programming latency of `secs`: from an EndpointSlice change's trigger
    /// time to the sync that programmed it (upstream `kubeproxy_network_programming_duration_seconds`).
    pub fn observe_network_programming(&self, secs: f64) {
        self.with(|s| s.network_programming.observe(secs));
    }

    /// Sets a gauge; unknown names are ignored.
    pub fn set(&self, name: &'static str, v: f64) {
        self.with(|s| {
            if let Some(g) = s.gauges.get_mut(name) {
                *g = v;
            }
        });
    }

    /// Adds to a counter; unknown names are ignored.
    pub fn inc(&self, name: &'static str, by: f64) {
        self.with(|s| {
            if let Some(c) = s.counters.get_mut(name) {
                *c += by;
            }
        });
    }

    /// `kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy}`.
    pub fn set_no_local_endpoints(&self, internal: usize, external: usize) {
        self.with(|s| {
            s.no_local_endpoints.insert("internal", internal as f64);
            s.no_local_endpoints.insert("external", external as f64);
        });
    }

    /// The text exposition format (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let fam = format!("ip_family=\"{}\"", self.ip_family);
        let series = |name: &str| if BY_FAMILY.contains(&name) { format!("{name}{{{fam}}}") } else { name.to_string() };
        self.with(|s| {
            let mut out = String::new();
            s.sync_duration.render(
                "kubeproxy_sync_proxy_rules_duration_seconds",
                "[ALPHA] SyncProxyRules latency in seconds",
                &fam,
                &mut out,
            );
            s.full_sync_duration.render(
                "kubeproxy_sync_full_proxy_rules_duration_seconds",
                "[ALPHA] SyncProxyRules latency in seconds for full resyncs",
                &fam,
                &mut out,
            );
            s.partial_sync_duration.render(
                "kubeproxy_sync_partial_proxy_rules_duration_seconds",
                "[ALPHA] SyncProxyRules latency in seconds for partial resyncs",
                &fam,
                &mut out,
            );
            s.network_programming.render(
                "kubeproxy_network_programming_duration_seconds",
                "[ALPHA] In Cluster Network Programming Latency in seconds",
                &fam,
                &mut out,
            );
            for (name, help) in GAUGES {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{} {}", series(name), s.gauges[name]);
            }
            for (name, help) in COUNTERS {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{} {}", series(name), s.counters[name]);
            }
            let n = "kubeproxy_sync_proxy_rules_no_local_endpoints_total";
            let _ = writeln!(out, "# HELP {n} [ALPHA] Number of services with a Local traffic policy and no endpoints\n# TYPE {n} gauge");
            for (policy, v) in &s.no_local_endpoints {
                let _ = writeln!(out, "{n}{{{fam},traffic_policy=\"{policy}\"}} {v}");
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstream_names() {
        let m = Metrics::default();
        m.observe_sync(0.003, true);
        m.set("kubeproxy_sync_proxy_rules_last_timestamp_seconds", 1700000000.5);
        m.inc("kubeproxy_sync_proxy_rules_nftables_sync_failures_total", 1.0);
        let text = m.render();
        assert!(text.contains("kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.004\"} 1\n"));
        assert!(text.contains("kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.002\"} 0\n"));
        assert!(text.contains("kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 1\n"));
        assert!(text.contains("kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"IPv4\"} 1700000000.5\n"));
        assert!(text.contains("kubeproxy_sync_proxy_rules_nftables_sync_failures_total{ip_family=\"IPv4\"} 1\n"));
        assert!(text.contains("kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.25\"} 0\n"));
        // Not labelled upstream either.
        assert!(text.contains("kubeproxy_sync_proxy_rules_endpoint_changes_total 0\n"));
        assert!(Metrics::for_family("IPv6").render().contains("kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv6\"} 0\n"));
        assert!(text.contains("# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram\n"));
    }
}
