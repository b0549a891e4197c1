//! Pod and QoS cgroups, the pure part (upstream `pkg/kubelet/cm`: `qos_container_manager`,
//! `pod_container_manager`, `ResourceConfigForPod`).
//!
//! With `cgroupsPerQOS`, every pod runs in a cgroup of its own under its QoS class's:
//! `<cgroupRoot>/kubepods/pod<uid>` for Guaranteed pods, `.../kubepods/burstable/pod<uid>` and
//! `.../kubepods/besteffort/pod<uid>` for the others. The pod cgroup carries the pod's totals:
//! CPU shares from its requests, a CFS quota and a memory limit when every container declares the
//! limit. Names are [`CgroupName`]s, written out per driver: a path for `cgroupfs`
//! (`/kubepods/burstable/pod<uid>`), nested slices for `systemd`
//! (`kubepods-burstable-pod<uid with _ for ->.slice`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::kuberuntime::resources::{milli_cpu_to_quota, milli_cpu_to_shares};
use crate::status::{QOS_BEST_EFFORT, QOS_BURSTABLE, pod_qos_class};

/// The CFS period of pod cgroups with a quota (upstream's default `cpuCFSQuotaPeriod`, 100 ms).
pub const CFS_PERIOD_US: u64 = 100_000;
/// Shares of the BestEffort cgroup and of every BestEffort pod (upstream `MinShares`).
pub const MIN_SHARES: u64 = 2;

/// A cgroup as components under the hierarchy's root (`["kubepods", "burstable", "pod…"]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CgroupName(pub Vec<String>);

/// How cgroup names are written for the runtime (KubeletConfiguration `cgroupDriver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    /// Cgroups are directories in cgroupfs that the kubelet makes itself
    /// (`/kubepods/burstable/pod<uid>`).
    Cgroupfs,
    /// Cgroups are systemd slices (`kubepods-burstable-pod<uid>.slice`), made through systemd.
    Systemd,
}

impl CgroupName {
    /// `root` (`cgroupRoot`, `/` or empty for the top) followed by `parts`.
    pub fn new(root: &str, parts: &[&str]) -> Self {
        let mut v: Vec<String> = root.split('/').filter(|p| !p.is_empty()).map(String::from).collect();
        v.extend(parts.iter().map(|p| p.to_string()));
        CgroupName(v)
    }

    /// The path below a hierarchy's mount point, e.g. `kubepods/burstable`.
    pub fn relative_path(&self) -> String {
        self.0.join("/")
    }

    /// The directory below a hierarchy's mount point as `driver` lays it out: the plain path
    /// (cgroupfs), or nested slices (systemd: `kubepods.slice/kubepods-burstable.slice/…`).
    pub fn dir_for_driver(&self, driver: CgroupDriver) -> String {
        match driver {
            CgroupDriver::Cgroupfs => self.relative_path(),
            CgroupDriver::Systemd => {
                let escaped: Vec<String> = self.0.iter().map(|p| p.replace('-', "_")).collect();
                (1..=escaped.len()).map(|n| format!("{}.slice", escaped[..n].join("-"))).collect::<Vec<_>>().join("/")
            }
        }
    }

    /// The name the runtime gets as `cgroup_parent`: `/kubepods/burstable/pod<uid>` (cgroupfs) or
    /// `kubepods-burstable-pod<uid>.slice` (systemd, `-` in a component escaped as `_`).
    pub fn for_driver(&self, driver: CgroupDriver) -> String {
        match driver {
            CgroupDriver::Cgroupfs => format!("/{}", self.relative_path()),
            CgroupDriver::Systemd if self.0.is_empty() => "-.slice".into(),
            CgroupDriver::Systemd => {
                let escaped: Vec<String> = self.0.iter().map(|p| p.replace('-', "_")).collect();
                format!("{}.slice", escaped.join("-"))
            }
        }
    }
}

/// `kubepods` under `cgroup_root`: the parent of every pod cgroup.
pub fn pods_cgroup(cgroup_root: &str) -> CgroupName {
    CgroupName::new(cgroup_root, &["kubepods"])
}

/// The cgroup of a QoS class (`kubepods` itself for Guaranteed).
pub fn qos_cgroup(cgroup_root: &str, qos: &str) -> CgroupName {
    match qos {
        QOS_BURSTABLE => CgroupName::new(cgroup_root, &["kubepods", "burstable"]),
        QOS_BEST_EFFORT => CgroupName::new(cgroup_root, &["kubepods", "besteffort"]),
        _ => pods_cgroup(cgroup_root),
    }
}

/// The cgroup of pod `uid` under QoS class `qos`'s.
pub fn pod_cgroup_in(cgroup_root: &str, qos: &str, uid: &str) -> CgroupName {
    let mut name = qos_cgroup(cgroup_root, qos);
    name.0.push(format!("pod{uid}"));
    name
}

/// The pod's own cgroup under its QoS class's.
pub fn pod_cgroup(cgroup_root: &str, pod: &Pod) -> CgroupName {
    pod_cgroup_in(cgroup_root, pod_qos_class(pod), pod.metadata.uid.as_deref().unwrap_or_default())
}

/// Limits a cgroup gets; `None` leaves the kernel's default (unlimited, 1024 shares).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupResources {
    /// CPU shares (v1 `cpu.shares`; written as `cpu.weight` on v2).
    pub cpu_shares: Option<u64>,
    /// CFS quota in µs per [`Self::cpu_period`]; `-1` for none.
    pub cpu_quota: Option<i64>,
    /// The CFS period in µs ([`CFS_PERIOD_US`] for pod cgroups with a quota).
    pub cpu_period: Option<u64>,
    /// Bytes.
    pub memory_limit: Option<i64>,
    /// Upstream `podPidsLimit` (`-1`: unlimited).
    pub pids_limit: Option<i64>,
}

/// `resource` in a list of quantities, as the node counts it (millicores for cpu).
pub fn listed(list: Option<&BTreeMap<String, Quantity>>, resource: &str) -> Option<i64> {
    let q = kubelet_config::quantity::parse(list?.get(resource)?.0.trim()).ok()?;
    Some(kubelet_types::resources::amount(resource, &q))
}

fn quantity(c: &Container, limits: bool, resource: &str) -> Option<i64> {
    let r = c.resources.as_ref()?;
    listed(if limits { r.limits.as_ref() } else { r.requests.as_ref() }, resource)
}

/// A pod total as upstream's `PodRequests`/`PodLimits`: the regular containers and restartable
/// init containers (sidecars) summed, at least each plain init container's value (plus the
/// sidecars started before it), plus the pod overhead. CPU in millicores.
fn pod_total(pod: &Pod, limits: bool, resource: &str) -> i64 {
    let Some(spec) = pod.spec.as_ref() else { return 0 };
    // Pod-level resources, when the pod sets this one, stand for the containers' (upstream
    // `PodRequests`/`PodLimits`); the overhead still adds.
    if let Some(v) = pod_level(pod, limits, resource) {
        return v + listed(spec.overhead.as_ref(), resource).unwrap_or(0);
    }
    let mut sum: i64 = spec.containers.iter().filter_map(|c| quantity(c, limits, resource)).sum();
    let mut sidecars = 0i64;
    let mut init_peak = 0i64;
    for c in spec.init_containers.iter().flatten() {
        let v = quantity(c, limits, resource).unwrap_or(0);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars += v;
            init_peak = init_peak.max(sidecars);
        } else {
            init_peak = init_peak.max(sidecars + v);
        }
    }
    sum += sidecars;
    sum.max(init_peak) + listed(spec.overhead.as_ref(), resource).unwrap_or(0)
}

/// The pod's request of `resource` as upstream's `PodRequests` totals it (millicores for cpu,
/// bytes for memory).
pub fn pod_request(pod: &Pod, resource: &str) -> i64 {
    pod_total(pod, false, resource)
}

/// The pod's CPU request in millicores, as upstream totals it (for the Burstable cgroup).
pub fn pod_cpu_request(pod: &Pod) -> i64 {
    pod_total(pod, false, "cpu")
}

/// The pod-level (`spec.resources`) request or limit of `resource`, when set.
pub fn pod_level(pod: &Pod, limits: bool, resource: &str) -> Option<i64> {
    let r = pod.spec.as_ref()?.resources.as_ref()?;
    listed(if limits { r.limits.as_ref() } else { r.requests.as_ref() }, resource)
}

/// Whether the pod's `resource` is limited: a pod-level limit, or a non-zero limit on every
/// container (init ones too).
fn all_limited(pod: &Pod, resource: &str) -> bool {
    if pod_level(pod, true, resource).is_some_and(|v| v > 0) {
        return true;
    }
    let Some(spec) = pod.spec.as_ref() else { return false };
    spec.containers.iter().chain(spec.init_containers.iter().flatten()).all(|c| quantity(c, true, resource).is_some_and(|v| v > 0))
}

/// Upstream `ResourceConfigForPod` (CFS quota enforced, the default `cpuCFSQuota: true`).
pub fn pod_cgroup_resources(pod: &Pod, pids_limit: Option<i64>) -> CgroupResources {
    let shares = milli_cpu_to_shares(pod_total(pod, false, "cpu")) as u64;
    let quota = match milli_cpu_to_quota(pod_total(pod, true, "cpu")) {
        0 => -1,
        q => q,
    };
    let memory = pod_total(pod, true, "memory");
    let mut r = CgroupResources { pids_limit, ..Default::default() };
    match pod_qos_class(pod) {
        QOS_BEST_EFFORT => r.cpu_shares = Some(MIN_SHARES),
        QOS_BURSTABLE => {
            r.cpu_shares = Some(shares);
            if all_limited(pod, "cpu") {
                (r.cpu_quota, r.cpu_period) = (Some(quota), Some(CFS_PERIOD_US));
            }
            if all_limited(pod, "memory") {
                r.memory_limit = Some(memory);
            }
        }
        _ => {
            r.cpu_shares = Some(shares);
            (r.cpu_quota, r.cpu_period) = (Some(quota), Some(CFS_PERIOD_US));
            r.memory_limit = Some(memory);
        }
    }
    r
}

/// Upstream's conversion of CPU shares (cgroup v1) to `cpu.weight` (cgroup v2).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    fn container(name: &str, requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| kv.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect::<BTreeMap<_, _>>())
        };
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements { requests: map(requests), limits: map(limits), ..Default::default() }),
            ..Default::default()
        }
    }

    /// Limits only: requests defaulted to them, as the API server does.
    fn limited(name: &str, limits: &[(&str, &str)]) -> Container {
        container(name, limits, limits)
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        let mut p = Pod { spec: Some(PodSpec { containers, init_containers: Some(init), ..Default::default() }), ..Default::default() };
        p.metadata.uid = Some("0f2c-11".into());
        p
    }

    #[test]
    fn names_per_qos_class_and_driver() {
        let guaranteed = pod(vec![limited("a", &[("cpu", "500m"), ("memory", "64Mi")])], vec![]);
        let burstable = pod(vec![container("a", &[("cpu", "100m")], &[])], vec![]);
        let best_effort = pod(vec![container("a", &[], &[])], vec![]);
        assert_eq!(pod_cgroup("", &guaranteed).for_driver(CgroupDriver::Cgroupfs), "/kubepods/pod0f2c-11");
        assert_eq!(pod_cgroup("/", &burstable).for_driver(CgroupDriver::Cgroupfs), "/kubepods/burstable/pod0f2c-11");
        assert_eq!(pod_cgroup("/knode", &best_effort).for_driver(CgroupDriver::Cgroupfs), "/knode/kubepods/besteffort/pod0f2c-11");
        assert_eq!(pod_cgroup("", &burstable).for_driver(CgroupDriver::Systemd), "kubepods-burstable-pod0f2c_11.slice");
        assert_eq!(pod_cgroup("/knode", &best_effort).relative_path(), "knode/kubepods/besteffort/pod0f2c-11");
        assert_eq!(CgroupName::new("/", &[]).for_driver(CgroupDriver::Systemd), "-.slice");
        assert_eq!(
            pod_cgroup("", &burstable).dir_for_driver(CgroupDriver::Systemd),
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f2c_11.slice"
        );
        assert_eq!(pod_cgroup("", &burstable).dir_for_driver(CgroupDriver::Cgroupfs), "kubepods/burstable/pod0f2c-11");
    }

    #[test]
    fn pod_level_resources_stand_for_the_containers() {
        let map = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| kv.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect::<BTreeMap<_, _>>())
        };
        // Requests and limits at pod level, containers without resources: Burstable with both.
        let mut p = pod(vec![container("a", &[], &[]), container("b", &[], &[])], vec![]);
        p.spec.as_mut().unwrap().resources = Some(ResourceRequirements {
            requests: map(&[("cpu", "50m"), ("memory", "50Mi")]),
            limits: map(&[("cpu", "100m"), ("memory", "100Mi")]),
            ..Default::default()
        });
        let r = pod_cgroup_resources(&p, None);
        assert_eq!((r.cpu_shares, r.cpu_quota, r.memory_limit), (Some(51), Some(10_000), Some(100 << 20)));
        assert_eq!(pod_request(&p, "memory"), 50 << 20);
        // Pod-level requests only, one container limited: no pod limits.
        let mut q = pod(vec![container("a", &[], &[("cpu", "50m"), ("memory", "50Mi")]), container("b", &[], &[])], vec![]);
        q.spec.as_mut().unwrap().resources =
            Some(ResourceRequirements { requests: map(&[("cpu", "100m"), ("memory", "100Mi")]), ..Default::default() });
        let r = pod_cgroup_resources(&q, None);
        assert_eq!((r.cpu_shares, r.cpu_quota, r.memory_limit), (Some(102), None, None));
    }

    #[test]
    fn resources_as_upstream_resource_config_for_pod() {
        // Guaranteed: shares, quota and memory from the totals.
        let g = pod(vec![limited("a", &[("cpu", "500m"), ("memory", "64Mi")]), limited("b", &[("cpu", "1"), ("memory", "64Mi")])], vec![]);
        assert_eq!(
            pod_cgroup_resources(&g, Some(1024)),
            CgroupResources {
                cpu_shares: Some(1536),
                cpu_quota: Some(150_000),
                cpu_period: Some(CFS_PERIOD_US),
                memory_limit: Some(128 << 20),
                pids_limit: Some(1024)
            }
        );
        // Burstable: limits only when every container declares them.
        let b = pod(
            vec![
                container("a", &[("cpu", "100m")], &[("cpu", "200m"), ("memory", "32Mi")]),
                container("b", &[("memory", "10Mi")], &[("memory", "16Mi")]),
            ],
            vec![],
        );
        let r = pod_cgroup_resources(&b, None);
        assert_eq!((r.cpu_shares, r.cpu_quota, r.memory_limit), (Some(102), None, Some(48 << 20)));
        // An init container larger than the sum sets the total; a sidecar adds to everything after it.
        let init = pod(vec![container("a", &[("cpu", "100m")], &[])], vec![container("i", &[("cpu", "1")], &[])]);
        assert_eq!(pod_cgroup_resources(&init, None).cpu_shares, Some(1024));
        let mut sidecar = container("s", &[("cpu", "200m")], &[]);
        sidecar.restart_policy = Some("Always".into());
        let with_sidecar = pod(vec![container("a", &[("cpu", "100m")], &[])], vec![sidecar, container("i", &[("cpu", "250m")], &[])]);
        assert_eq!(pod_cgroup_resources(&with_sidecar, None).cpu_shares, Some(milli_cpu_to_shares(450) as u64));
        // BestEffort: the minimum shares and nothing else.
        let be = pod(vec![container("a", &[], &[])], vec![]);
        assert_eq!(pod_cgroup_resources(&be, None), CgroupResources { cpu_shares: Some(2), ..Default::default() });
        // Overhead counts.
        let mut o = g.clone();
        o.spec.as_mut().unwrap().overhead = Some(BTreeMap::from([("cpu".to_string(), Quantity("250m".into()))]));
        assert_eq!(pod_cgroup_resources(&o, None).cpu_quota, Some(175_000));
    }

    #[test]
    fn weight_from_shares() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
