//! `/metrics/resource`: what metrics-server scrapes, under upstream's names and stability
//! levels, from the latest snapshot (each sample stamped with its sampling time in ms).

use std::fmt::Write as _;

use super::api::{PodStats, Summary};
use super::collector::StatsSnapshot;
use crate::prober::metrics::escape;
use crate::status::system_time;

/// One metric family's header.
fn family(out: &mut String, name: &str, stability: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} [{stability}] {help}\n# TYPE {name} {kind}");
}

fn millis(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> u128 {
    system_time(t).duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// The sampling time in ms (the summary's times are whole seconds, as the API writes them).
fn sampled_ms(s: &StatsSnapshot) -> u128 {
    s.taken.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The body for `snapshot` (`None`: nothing sampled yet, reported as a scrape error).
pub fn render(snapshot: Option<&StatsSnapshot>) -> String {
    let mut out = String::new();
    let summary = snapshot.map(|s| &s.summary);
    if let Some(s) = snapshot {
        render_summary(&mut out, &s.summary, sampled_ms(s));
    }
    let error = u8::from(summary.is_none());
    family(&mut out, "resource_scrape_error", "STABLE", "1 if there was an error while getting container metrics, 0 otherwise", "gauge");
    let _ = writeln!(out, "resource_scrape_error {error}");
    family(
        &mut out,
        "scrape_error",
        "ALPHA",
        "(Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    let _ = writeln!(out, "scrape_error {error}");
    out
}

fn labels(container: Option<&str>, pod: &PodStats) -> String {
    let p = &pod.pod_ref;
    match container {
        Some(c) => format!("container=\"{}\",namespace=\"{}\",pod=\"{}\"", escape(c), escape(&p.namespace), escape(&p.name)),
        None => format!("namespace=\"{}\",pod=\"{}\"", escape(&p.namespace), escape(&p.name)),
    }
}

fn render_summary(out: &mut String, s: &Summary, ts: u128) {
    family(out, "container_cpu_usage_seconds_total", "STABLE", "Cumulative cpu time consumed by the container in core-seconds", "counter");
    for p in &s.pods {
        for c in &p.containers {
            if let Some(cpu) = &c.cpu
                && let Some(u) = cpu.usage_core_nano_seconds
            {
                let _ = writeln!(out, "container_cpu_usage_seconds_total{{{}}} {} {}", labels(Some(&c.name), p), seconds(u), ts);
            }
        }
    }
    family(out, "container_memory_working_set_bytes", "STABLE", "Current working set of the container in bytes", "gauge");
    for p in &s.pods {
        for c in &p.containers {
            if let Some(m) = &c.memory
                && let Some(w) = m.working_set_bytes
            {
                let _ = writeln!(out, "container_memory_working_set_bytes{{{}}} {} {}", labels(Some(&c.name), p), w, ts);
            }
        }
    }
    family(out, "container_start_time_seconds", "STABLE", "Start time of the container since unix epoch in seconds", "gauge");
    for p in &s.pods {
        for c in &p.containers {
            let ms = millis(&c.start_time);
            if ms > 0 {
                let _ = writeln!(out, "container_start_time_seconds{{{}}} {}", labels(Some(&c.name), p), ms as f64 / 1e3);
            }
        }
    }
    family(
        out,
        "container_swap_usage_bytes",
        "ALPHA",
        "Current amount of the container swap usage in bytes. Reported only on non-windows systems",
        "gauge",
    );
    for p in &s.pods {
        for c in &p.containers {
            if let Some(sw) = &c.swap
                && let Some(u) = sw.swap_usage_bytes
            {
                let _ = writeln!(out, "container_swap_usage_bytes{{{}}} {} {}", labels(Some(&c.name), p), u, ts);
            }
        }
    }
    if let Some(cpu) = &s.node.cpu
        && let Some(u) = cpu.usage_core_nano_seconds
    {
        family(out, "node_cpu_usage_seconds_total", "STABLE", "Cumulative cpu time consumed by the node in core-seconds", "counter");
        let _ = writeln!(out, "node_cpu_usage_seconds_total {} {}", seconds(u), ts);
    }
    if let Some(m) = &s.node.memory
        && let Some(w) = m.working_set_bytes
    {
        family(out, "node_memory_working_set_bytes", "STABLE", "Current working set of the node in bytes", "gauge");
        let _ = writeln!(out, "node_memory_working_set_bytes {} {}", w, ts);
    }
    if let Some(sw) = &s.node.swap
        && let Some(u) = sw.swap_usage_bytes
    {
        family(
            out,
            "node_swap_usage_bytes",
            "ALPHA",
            "Current swap usage of the node in bytes. Reported only on non-windows systems",
            "gauge",
        );
        let _ = writeln!(out, "node_swap_usage_bytes {} {}", u, ts);
    }
    family(out, "pod_cpu_usage_seconds_total", "STABLE", "Cumulative cpu time consumed by the pod in core-seconds", "counter");
    for p in &s.pods {
        if let Some(cpu) = &p.cpu
            && let Some(u) = cpu.usage_core_nano_seconds
        {
            let _ = writeln!(out, "pod_cpu_usage_seconds_total{{{}}} {} {}", labels(None, p), seconds(u), ts);
        }
    }
    family(out, "pod_memory_working_set_bytes", "STABLE", "Current working set of the pod in bytes", "gauge");
    for p in &s.pods {
        if let Some(m) = &p.memory
            && let Some(w) = m.working_set_bytes
        {
            let _ = writeln!(out, "pod_memory_working_set_bytes{{{}}} {} {}", labels(None, p), w, ts);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::stats::api::*;
    use crate::status::api_time;

    #[test]
    fn samples_carry_the_sampling_time_in_ms_and_no_snapshot_is_an_error() {
        let taken = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let t = api_time(taken);
        let cpu = CpuStats { time: t.clone(), usage_nano_cores: None, usage_core_nano_seconds: Some(2_500_000_000), psi: None };
        let pod = PodStats {
            pod_ref: PodReference { name: "web".into(), namespace: "default".into(), uid: "u".into() },
            start_time: t.clone(),
            containers: vec![ContainerStats {
                name: "app".into(),
                start_time: t.clone(),
                cpu: Some(cpu.clone()),
                memory: None,
                io: None,
                rootfs: None,
                logs: None,
                swap: None,
            }],
            cpu: Some(cpu.clone()),
            memory: None,
            io: None,
            network: None,
            volume_stats: vec![],
            ephemeral_storage: None,
            process_stats: None,
            swap: None,
        };
        let node = NodeStats {
            node_name: "n".into(),
            system_containers: vec![],
            start_time: t,
            cpu: Some(cpu),
            memory: None,
            io: None,
            network: None,
            fs: None,
            runtime: None,
            rlimit: None,
            swap: None,
        };
        let snap = StatsSnapshot {
            taken,
            summary: Summary { node, pods: vec![pod] },
            cgroups: vec![],
            num_cores: 1,
            memory_capacity: 1,
            machine: Default::default(),
            root_disk: None,
        };
        let body = render(Some(&snap));
        assert!(
            body.contains("container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web\"} 2.5 1700000000123\n"),
            "{body}"
        );
        assert!(body.contains("pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"web\"} 2.5 1700000000123\n"), "{body}");
        assert!(
            body.contains("# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n"),
            "{body}"
        );
        assert!(body.contains("resource_scrape_error 0\n"));
        assert!(render(None).contains("resource_scrape_error 1\n"));
    }
}
