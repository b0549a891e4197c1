//! Numeric fields: counts and rates that must not be negative, ports, image
//! GC thresholds, iptables bits, OOM score and container log limits.

use super::{Problem, req};
use crate::types::KubeletConfiguration;

fn port_ok(p: i32) -> bool {
    (1..=65535).contains(&p)
}

pub(super) fn numbers(c: &KubeletConfiguration) -> Result<(), Problem> {
    req(c.node_lease_duration_seconds > 0, "nodeLeaseDurationSeconds", || "must be greater than 0".into())?;
    let non_negative: [(&str, i64); 9] = [
        ("eventBurst (--event-burst)", c.event_burst.into()),
        ("eventRecordQPS (--event-qps)", c.event_record_qps.into()),
        ("kubeAPIBurst (--kube-api-burst)", c.kube_api_burst.into()),
        ("kubeAPIQPS (--kube-api-qps)", c.kube_api_qps.into()),
        ("maxOpenFiles (--max-open-files)", c.max_open_files),
        ("maxPods (--max-pods)", c.max_pods.into()),
        ("podsPerCore (--pods-per-core)", c.pods_per_core.into()),
        ("registryBurst (--registry-burst)", c.registry_burst.into()),
        ("registryPullQPS (--registry-qps)", c.registry_pull_qps.into()),
    ];
    for (field, v) in non_negative {
        req(v >= 0, field.split(' ').next().unwrap_or(field), || format!("{field} {v} must not be a negative number"))?;
    }
    req(c.healthz_port == 0 || port_ok(c.healthz_port), "healthzPort", || {
        format!("healthzPort (--healthz-port) {} must be between 1 and 65535, inclusive", c.healthz_port)
    })?;
    req(port_ok(c.port), "port", || format!("port (--port) {} must be between 1 and 65535, inclusive", c.port))?;
    req(c.read_only_port == 0 || port_ok(c.read_only_port), "readOnlyPort", || {
        format!("readOnlyPort (--read-only-port) {} must be between 0 and 65535, inclusive", c.read_only_port)
    })?;
    for (field, v) in [
        ("imageGCHighThresholdPercent (--image-gc-high-threshold)", c.image_gc_high_threshold_percent),
        ("imageGCLowThresholdPercent (--image-gc-low-threshold)", c.image_gc_low_threshold_percent),
    ] {
        req((0..=100).contains(&v), field.split(' ').next().unwrap_or(field), || {
            format!("{field} {v} must be between 0 and 100, inclusive")
        })?;
    }
    req(c.image_gc_low_threshold_percent < c.image_gc_high_threshold_percent, "imageGCLowThresholdPercent", || {
        format!(
            "imageGCLowThresholdPercent (--image-gc-low-threshold) {} must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) {}",
            c.image_gc_low_threshold_percent, c.image_gc_high_threshold_percent
        )
    })?;
    for (field, v) in [("iptablesDropBit", c.iptables_drop_bit), ("iptablesMasqueradeBit", c.iptables_masquerade_bit)] {
        req((0..=31).contains(&v), field, || format!("{v} must be between 0 and 31, inclusive"))?;
    }
    req(c.node_status_max_images >= -1, "nodeStatusMaxImages", || {
        format!("nodeStatusMaxImages (--node-status-max-images) {} must be -1 or greater", c.node_status_max_images)
    })?;
    req((-1000..=1000).contains(&c.oom_score_adj), "oomScoreAdj", || {
        format!("oomScoreAdj (--oom-score-adj) {} must be between -1000 and 1000, inclusive", c.oom_score_adj)
    })?;
    req(c.container_log_max_workers >= 1, "containerLogMaxWorkers", || "must be greater than or equal to 1".into())?;
    req(c.container_log_max_files > 1, "containerLogMaxFiles", || {
        format!("containerLogMaxFiles (--container-log-max-files) {} must be greater than 1", c.container_log_max_files)
    })
}
