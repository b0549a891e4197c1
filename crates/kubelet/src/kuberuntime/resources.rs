//! Container resources → CRI Linux resources, and `resourceFieldRef` values.
//!
//! Pure arithmetic as upstream `pkg/kubelet/cm` does it: CPU requests become cgroup shares, CPU
//! limits a CFS quota over a 100 ms period, memory limits a byte limit; the OOM score follows the
//! pod's QoS class.

use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubelet_cri::api::LinuxContainerResources;

use crate::status::pod_qos_class;

const MIN_SHARES: i64 = 2;
const SHARES_PER_CPU: i64 = 1024;
const QUOTA_PERIOD: i64 = 100_000;
const MIN_QUOTA_PERIOD: i64 = 1000;

fn amount(c: &Container, which: &str, resource: &str) -> Option<f64> {
    let r = c.resources.as_ref()?;
    let map = if which == "limits" { r.limits.as_ref() } else { r.requests.as_ref() };
    map?.get(resource).and_then(|Quantity(q)| kubelet_config::quantity::parse(q.trim()).ok()).map(|q| q.as_f64())
}

/// Upstream `MilliCPUToShares`.
pub fn milli_cpu_to_shares(milli: i64) -> i64 {
    if milli == 0 {
        return MIN_SHARES;
    }
    (milli * SHARES_PER_CPU / 1000).max(MIN_SHARES)
}

/// Upstream `MilliCPUToQuota`: 0 when unlimited.
pub fn milli_cpu_to_quota(milli: i64) -> i64 {
    if milli == 0 {
        return 0;
    }
    (milli * QUOTA_PERIOD / 1000).max(MIN_QUOTA_PERIOD)
}

/// OOM score adjustment by QoS class (upstream `GetContainerOOMScoreAdjust`).
pub fn oom_score_adj(pod: &Pod, c: &Container, memory_capacity: i64) -> i64 {
    match pod_qos_class(pod) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let request = amount(c, "requests", "memory").unwrap_or(0.0) as i64;
            if memory_capacity <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * request) / memory_capacity;
            adj.clamp(3, 999)
        }
    }
}

/// CRI resources of a container.
pub fn linux_resources(pod: &Pod, c: &Container, memory_capacity: i64) -> LinuxContainerResources {
    let cpu_request = amount(c, "requests", "cpu").or_else(|| amount(c, "limits", "cpu"));
    let cpu_limit = amount(c, "limits", "cpu");
    let memory_limit = amount(c, "limits", "memory");
    let quota = cpu_limit.map(|l| milli_cpu_to_quota((l * 1000.0).ceil() as i64)).unwrap_or(0);
    LinuxContainerResources {
        cpu_shares: milli_cpu_to_shares(cpu_request.map(|r| (r * 1000.0).ceil() as i64).unwrap_or(0)),
        cpu_quota: quota,
        cpu_period: if quota > 0 { QUOTA_PERIOD } else { 0 },
        memory_limit_in_bytes: memory_limit.map(|m| m.ceil() as i64).unwrap_or(0),
        oom_score_adj: oom_score_adj(pod, c, memory_capacity),
        ..Default::default()
    }
}

/// Value of a `resourceFieldRef` (`limits.cpu`, `requests.memory`, ...), divided by its divisor and
/// rounded up as upstream. Unset limits report the node's allocatable in upstream; standalone we
/// report 0 for an unset request and the node figure is left to the caller.
pub fn resource_field_value(_pod: &Pod, c: &Container, r: &ResourceFieldSelector) -> Result<String, String> {
    let (which, resource) = r
        .resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported resourceFieldRef resource {:?}", r.resource))?;
    if !matches!(which, "limits" | "requests") {
        return Err(format!("unsupported resourceFieldRef resource {:?}", r.resource));
    }
    let value = amount(c, which, resource).unwrap_or(0.0);
    let divisor = match &r.divisor {
        Some(Quantity(d)) => kubelet_config::quantity::parse(d.trim())
            .map_err(|e| format!("resourceFieldRef divisor: {e}"))?
            .as_f64(),
        None => 1.0,
    };
    if divisor <= 0.0 {
        return Err("resourceFieldRef divisor must be positive".into());
    }
    Ok(format!("{}", (value / divisor).ceil() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_arithmetic_matches_upstream() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(250), 256);
        assert_eq!(milli_cpu_to_shares(2000), 2048);
        assert_eq!(milli_cpu_to_quota(0), 0);
        assert_eq!(milli_cpu_to_quota(5), 1000);
        assert_eq!(milli_cpu_to_quota(500), 50_000);
    }
}
