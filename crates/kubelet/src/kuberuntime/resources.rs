//! Container resources → CRI Linux resources, and `resourceFieldRef` values.
//!
//! Pure arithmetic as upstream `pkg/kubelet/cm` does it: CPU requests become cgroup shares, CPU
//! limits a CFS quota over a 100 ms period, memory limits a byte limit; the OOM score follows the
//! pod's QoS class.

use std::collections::BTreeMap;

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
    // A container without its own limit has the pod-level one (upstream `getCPULimit`,
    // `getMemoryLimit`).
    let pod_limit = |resource: &str| {
        let q = pod.spec.as_ref()?.resources.as_ref()?.limits.as_ref()?.get(resource)?;
        kubelet_config::quantity::parse(q.0.trim()).ok().map(|q| q.as_f64())
    };
    let cpu_limit = amount(c, "limits", "cpu").or_else(|| pod_limit("cpu"));
    let memory_limit = amount(c, "limits", "memory").or_else(|| pod_limit("memory"));
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

/// The node's allocatable resources as the node status reports them (`cpu`, `memory`,
/// `ephemeral-storage`, ...): what a container's unset limit reads as in the downward API.
pub type NodeAllocatable = BTreeMap<String, Quantity>;

/// The resources an unset limit defaults to (upstream `MergeContainerResourceLimits`).
const DEFAULTED_LIMITS: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

fn parsed(q: &Quantity) -> Option<kubelet_config::quantity::Quantity> {
    kubelet_config::quantity::parse(q.0.trim()).ok()
}

/// `pod` as the downward API reads it (upstream `defaultPodLimitsForDownwardAPI`): every
/// container's unset (or zero) cpu, memory and ephemeral-storage limit is the pod-level limit
/// when `spec.resources` sets one, else the node's allocatable.
pub fn with_default_limits(pod: &Pod, allocatable: &NodeAllocatable) -> Pod {
    let mut defaults = allocatable.clone();
    let pod_limits = pod.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.limits.as_ref());
    for name in DEFAULTED_LIMITS {
        if let Some(q) = pod_limits.and_then(|l| l.get(name)).filter(|q| parsed(q).is_some_and(|v| !v.is_zero()))
            && defaults.contains_key(name)
        {
            defaults.insert(name.to_string(), q.clone());
        }
    }
    let mut out = pod.clone();
    let spec = out.spec.get_or_insert_with(Default::default);
    let containers = spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten());
    for c in containers {
        let limits = c.resources.get_or_insert_with(Default::default).limits.get_or_insert_with(BTreeMap::new);
        for name in DEFAULTED_LIMITS {
            let unset = limits.get(name).is_none_or(|q| parsed(q).is_none_or(|v| v.is_zero()));
            if let (true, Some(d)) = (unset, defaults.get(name)) {
                limits.insert(name.to_string(), d.clone());
            }
        }
    }
    out
}

/// Why a `resourceFieldRef` has no value (upstream's messages where upstream has one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResourceFieldError {
    /// The selector's `resource` is not a limit or request of cpu, memory, ephemeral-storage or hugepages.
    #[error("unsupported container resource : {0}")]
    UnsupportedResource(String),
    /// The selector's `divisor` is not a quantity.
    #[error("resourceFieldRef divisor {divisor:?}: {source}")]
    Divisor {
        /// The divisor as given.
        divisor: String,
        /// Why it does not parse.
        #[source]
        source: kubelet_config::quantity::QuantityError,
    },
    /// The divisor, in the resource's unit (thousandths for cpu), is not above zero.
    #[error("resourceFieldRef divisor must be positive, not {0}")]
    NonPositiveDivisor(i64),
    /// The selector's `containerName` is not a container of the pod (the name).
    #[error("container {0} not found")]
    ContainerNotFound(String),
}

/// Value of a `resourceFieldRef` (`limits.cpu`, `requests.memory`, `limits.hugepages-2Mi`, ...)
/// of container `c` (already defaulted by [`with_default_limits`]), divided by its divisor and
/// rounded up as upstream `ExtractContainerResourceValue`: cpu in thousandths, the rest in units.
/// An unset divisor, which the API server stores as `"0"`, means 1.
pub fn resource_field_value(c: &Container, r: &ResourceFieldSelector) -> Result<String, ResourceFieldError> {
    let unsupported = || ResourceFieldError::UnsupportedResource(r.resource.clone());
    let (which, resource) = r.resource.split_once('.').ok_or_else(unsupported)?;
    if !matches!(which, "limits" | "requests")
        || !(matches!(resource, "cpu" | "memory" | "ephemeral-storage") || resource.starts_with("hugepages-"))
    {
        return Err(unsupported());
    }
    let divisor = match &r.divisor {
        Some(Quantity(d)) => {
            kubelet_config::quantity::parse(d.trim()).map_err(|source| ResourceFieldError::Divisor { divisor: d.clone(), source })?
        }
        None => kubelet_config::quantity::Quantity::default(),
    };
    let divisor = if divisor.is_zero() { kubelet_config::quantity::parse("1").expect("1 is a quantity") } else { divisor };
    let r = c.resources.as_ref();
    let map = if which == "limits" { r.and_then(|r| r.limits.as_ref()) } else { r.and_then(|r| r.requests.as_ref()) };
    let value = map.and_then(|m| m.get(resource)).and_then(parsed).unwrap_or_default();
    let (value, divisor) = if resource == "cpu" { (value.milli_value(), divisor.milli_value()) } else { (value.value(), divisor.value()) };
    if divisor <= 0 {
        return Err(ResourceFieldError::NonPositiveDivisor(divisor));
    }
    Ok((value as f64 / divisor as f64).ceil().to_string())
}

/// The container of `pod` named `name` (regular, then init), for a `resourceFieldRef` with a
/// `containerName`.
pub fn find_container<'a>(pod: &'a Pod, name: &str) -> Result<&'a Container, ResourceFieldError> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
        .find(|c| c.name == name)
        .ok_or_else(|| ResourceFieldError::ContainerNotFound(name.to_string()))
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

    fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
    }

    fn selector(resource: &str, divisor: Option<&str>) -> ResourceFieldSelector {
        ResourceFieldSelector { resource: resource.into(), divisor: divisor.map(|d| Quantity(d.into())), container_name: None }
    }

    fn container(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Container {
        Container {
            name: "c".into(),
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                limits: Some(quantities(limits)),
                requests: Some(quantities(requests)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn divisors_as_upstream_including_the_api_servers_zero() {
        let c = container(&[("cpu", "1250m"), ("memory", "64Mi")], &[("cpu", "250m"), ("memory", "32Mi"), ("hugepages-2Mi", "4Mi")]);
        let v = |res: &str, d: Option<&str>| resource_field_value(&c, &selector(res, d)).unwrap();
        // Unset and the API server's "0" both mean 1.
        assert_eq!((v("limits.cpu", None), v("limits.cpu", Some("0"))), ("2".into(), "2".into()));
        assert_eq!(v("limits.cpu", Some("1m")), "1250");
        assert_eq!(v("requests.cpu", Some("100m")), "3");
        assert_eq!(v("limits.memory", Some("0")), "67108864");
        assert_eq!(v("limits.memory", Some("1Mi")), "64");
        assert_eq!(v("requests.memory", Some("1k")), "33555");
        // A memory divisor under one byte counts as one byte, as Go's Value() rounds up.
        assert_eq!(v("requests.memory", Some("1m")), "33554432");
        assert_eq!(v("requests.hugepages-2Mi", Some("1Mi")), "4");
        assert_eq!(v("requests.ephemeral-storage", None), "0");
        let err = resource_field_value(&c, &selector("limits.gpu", None)).unwrap_err();
        assert_eq!(err, ResourceFieldError::UnsupportedResource("limits.gpu".into()));
        assert_eq!(err.to_string(), "unsupported container resource : limits.gpu");
        let err = resource_field_value(&c, &selector("limits.cpu", Some("x"))).unwrap_err();
        assert!(matches!(&err, ResourceFieldError::Divisor { divisor, .. } if divisor == "x"), "{err}");
        assert!(err.to_string().starts_with("resourceFieldRef divisor \"x\": invalid quantity \"x\""), "{err}");
    }

    #[test]
    fn a_container_without_limits_gets_the_pod_level_ones() {
        let mut pod = Pod { spec: Some(Default::default()), ..Default::default() };
        pod.spec.as_mut().unwrap().resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
            limits: Some(quantities(&[("cpu", "100m"), ("memory", "100Mi")])),
            ..Default::default()
        });
        let free = container(&[], &[("cpu", "10m")]);
        let r = linux_resources(&pod, &free, 1 << 30);
        assert_eq!((r.cpu_quota, r.memory_limit_in_bytes, r.cpu_shares), (10_000, 100 << 20, 10));
        let own = container(&[("memory", "20Mi")], &[]);
        assert_eq!(linux_resources(&pod, &own, 1 << 30).memory_limit_in_bytes, 20 << 20);
    }

    #[test]
    fn unset_limits_read_as_pod_limits_or_node_allocatable() {
        let alloc = quantities(&[("cpu", "2"), ("memory", "8Gi"), ("ephemeral-storage", "100Gi"), ("pods", "110")]);
        let mut pod = Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![container(&[("memory", "0")], &[]), container(&[("cpu", "500m")], &[])],
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = with_default_limits(&pod, &alloc);
        let limits = |i: usize| d.spec.as_ref().unwrap().containers[i].resources.as_ref().unwrap().limits.clone().unwrap();
        assert_eq!(limits(0), quantities(&[("cpu", "2"), ("memory", "8Gi"), ("ephemeral-storage", "100Gi")]), "zero counts as unset");
        assert_eq!(limits(1)["cpu"], Quantity("500m".into()), "a set limit stays");
        pod.spec.as_mut().unwrap().resources =
            Some(k8s_openapi::api::core::v1::ResourceRequirements { limits: Some(quantities(&[("memory", "1Gi")])), ..Default::default() });
        let d = with_default_limits(&pod, &alloc);
        assert_eq!(
            d.spec.as_ref().unwrap().containers[0].resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"],
            Quantity("1Gi".into()),
            "pod-level limit first"
        );
    }
}
