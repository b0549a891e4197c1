//! The container manager's cgroups (upstream `pkg/kubelet/cm`): with `cgroupsPerQOS` the kubelet
//! makes `kubepods`, `kubepods/burstable` and `kubepods/besteffort` under `cgroupRoot` at start,
//! gives every pod a cgroup of its own under its QoS class's ([`pod_cgroups`]), hands that
//! cgroup to the runtime as the sandbox's `cgroup_parent`, and removes it with the pod. The
//! Burstable cgroup's CPU shares follow the sum of its pods' requests.
//!
//! [`PodCgroups`] is the boundary the runtime manager uses; [`QosCgroups`] implements it on this
//! host's cgroupfs ([`cgroupfs`], v1 and v2). With the `systemd` driver the names are systemd
//! slices, which the runtime creates through systemd; the kubelet writes no limits then.

pub mod cgroupfs;
pub mod driver;
pub mod pod_cgroups;
pub mod swap;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;

pub use self::cgroupfs::CgroupLimits;
use self::cgroupfs::Cgroupfs;
use self::pod_cgroups::{
    CgroupDriver, CgroupName, CgroupResources, MIN_SHARES, pod_cgroup, pod_cgroup_in, pod_cgroup_resources, pod_cpu_request, pods_cgroup,
    qos_cgroup,
};
use crate::kuberuntime::resources::milli_cpu_to_shares;
use crate::status::{QOS_BEST_EFFORT, QOS_BURSTABLE, QOS_GUARANTEED, pod_qos_class};

/// A cgroup the kubelet could not make or remove.
#[derive(Debug, thiserror::Error)]
#[error("cgroup {name}: {source}")]
pub struct CgroupError {
    /// The cgroup's path below the hierarchy's root (`kubepods/burstable/pod<uid>`).
    pub name: String,
    /// The filesystem error.
    #[source]
    pub source: std::io::Error,
}

/// Makes `name` with `resources` on `fs`, naming the cgroup when it cannot.
fn ensure(fs: &Cgroupfs, name: &CgroupName, resources: &CgroupResources) -> Result<(), CgroupError> {
    fs.ensure(name, resources).map_err(|source| CgroupError { name: name.relative_path(), source })
}

/// Pod cgroups, as the runtime manager needs them.
pub trait PodCgroups: Send + Sync {
    /// Creates (or updates) the pod's cgroup; returns the `cgroup_parent` for its sandbox.
    fn ensure_pod(&self, pod: &Pod) -> Result<String, CgroupError>;
    /// The pod's `cgroup_parent` without touching the host (for a sandbox that exists).
    fn pod_parent(&self, pod: &Pod) -> String;
    /// Removes the cgroup of pod `uid` under whichever QoS class it was; gone is no error.
    fn remove_pod(&self, uid: &str) -> Result<(), CgroupError>;
    /// The UIDs of the pods that have a cgroup on this host.
    fn pod_uids(&self) -> Vec<String>;
    /// The pod cgroup's CPU quota, memory limit and memory use (in-place resize); `None` when
    /// the kubelet does not manage the values (the systemd driver).
    fn pod_limits(&self, pod: &Pod) -> Option<CgroupLimits>;
    /// Writes `resources` to the pod's cgroup (in-place resize) and keeps the Burstable
    /// cgroup's shares in step with the pod's new CPU request.
    fn set_pod_resources(&self, pod: &Pod, resources: &CgroupResources) -> Result<(), CgroupError>;
}

/// QoS and pod cgroups on this host (KubeletConfiguration `cgroupRoot`, `cgroupDriver`,
/// `podPidsLimit`).
pub struct QosCgroups {
    root: String,
    driver: CgroupDriver,
    /// `None` with the systemd driver.
    fs: Option<Cgroupfs>,
    pids_limit: Option<i64>,
    /// CPU requests (millicores) of the Burstable pods with a cgroup, by UID: the Burstable
    /// cgroup's shares are their sum (upstream's QoS container manager).
    burstable: Mutex<BTreeMap<String, i64>>,
}

impl QosCgroups {
    /// `mount` is the cgroupfs mount point (`/sys/fs/cgroup`).
    pub fn new(mount: &Path, cgroup_root: &str, driver: CgroupDriver, pod_pids_limit: i64) -> Self {
        let fs = (driver == CgroupDriver::Cgroupfs).then(|| Cgroupfs::detect(mount));
        let pids_limit = (pod_pids_limit > 0).then_some(pod_pids_limit);
        QosCgroups { root: cgroup_root.to_string(), driver, fs, pids_limit, burstable: Mutex::default() }
    }

    /// Makes the top-level cgroups: `kubepods` with the node's CPU as its shares (and, when node
    /// allocatable is enforced on pods, `memory_limit` bytes and `pids_limit` tasks),
    /// `burstable`, and `besteffort` with the minimum shares (upstream's node-allocatable and
    /// QoS containers).
    pub fn ensure_top_level(&self, node_milli_cpu: i64, memory_limit: Option<i64>, pids_limit: Option<i64>) -> Result<(), CgroupError> {
        let Some(fs) = &self.fs else { return Ok(()) };
        let kubepods = CgroupResources {
            cpu_shares: Some(milli_cpu_to_shares(node_milli_cpu) as u64),
            memory_limit,
            pids_limit,
            ..Default::default()
        };
        let levels = [
            (pods_cgroup(&self.root), kubepods),
            // No Burstable pod has a cgroup yet: the shares of an empty sum, as upstream's QoS
            // manager sets them; each Burstable pod's sync adds its request.
            (qos_cgroup(&self.root, QOS_BURSTABLE), CgroupResources { cpu_shares: Some(MIN_SHARES), ..Default::default() }),
            (qos_cgroup(&self.root, QOS_BEST_EFFORT), CgroupResources { cpu_shares: Some(MIN_SHARES), ..Default::default() }),
        ];
        for (name, resources) in levels {
            ensure(fs, &name, &resources)?;
        }
        Ok(())
    }

    /// Limits an existing cgroup to a reservation (`enforceNodeAllocatable`'s `system-reserved`
    /// or `kube-reserved`, upstream `enforceExistingCgroup`): CPU shares from the reserved CPU,
    /// and unless only compressible resources are enforced, the reserved memory and PIDs as its
    /// limits. The cgroup must exist (the kubelet does not make it).
    pub fn enforce_reserved(&self, cgroup: &str, milli_cpu: i64, memory: Option<i64>, pids: Option<i64>) -> Result<(), CgroupError> {
        let Some(fs) = &self.fs else { return Ok(()) };
        let name = CgroupName::new(cgroup, &[]);
        if name.0.is_empty() || !fs.exists(&name) {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, format!("{cgroup:?} cgroup does not exist"));
            return Err(CgroupError { name: cgroup.to_string(), source });
        }
        let r = CgroupResources {
            cpu_shares: Some(milli_cpu_to_shares(milli_cpu) as u64),
            memory_limit: memory.filter(|m| *m > 0),
            pids_limit: pids.filter(|p| *p > 0),
            ..Default::default()
        };
        ensure(fs, &name, &r)
    }

    /// Records pod `uid`'s CPU request (`None`: not Burstable, or gone) and sets the Burstable
    /// cgroup's shares to the sum when it changed.
    fn track_burstable(&self, fs: &Cgroupfs, uid: &str, milli_cpu: Option<i64>) -> Result<(), CgroupError> {
        // Written under the lock: two pods' updates must not land in the wrong order.
        let mut pods = self.burstable.lock().unwrap_or_else(|e| e.into_inner());
        let changed = match milli_cpu {
            Some(m) => pods.insert(uid.to_string(), m) != Some(m),
            None => pods.remove(uid).is_some(),
        };
        if !changed {
            return Ok(());
        }
        let total: i64 = pods.values().sum();
        let name = qos_cgroup(&self.root, QOS_BURSTABLE);
        let shares = CgroupResources { cpu_shares: Some(milli_cpu_to_shares(total) as u64), ..Default::default() };
        ensure(fs, &name, &shares)
    }
}

impl PodCgroups for QosCgroups {
    fn ensure_pod(&self, pod: &Pod) -> Result<String, CgroupError> {
        let (qos, uid) = (pod_qos_class(pod), pod.metadata.uid.as_deref().unwrap_or_default());
        let name = pod_cgroup_in(&self.root, qos, uid);
        if let Some(fs) = &self.fs {
            // Made once with the pod's limits (upstream `EnsureExists`); not rewritten on later
            // syncs, which would change the pod's limits under its running containers.
            if !fs.exists(&name) {
                ensure(fs, &name, &pod_cgroup_resources(pod, self.pids_limit))?;
            }
            self.track_burstable(fs, uid, (qos == QOS_BURSTABLE).then(|| pod_cpu_request(pod)))?;
        }
        Ok(name.for_driver(self.driver))
    }

    fn pod_parent(&self, pod: &Pod) -> String {
        pod_cgroup(&self.root, pod).for_driver(self.driver)
    }

    fn remove_pod(&self, uid: &str) -> Result<(), CgroupError> {
        let Some(fs) = &self.fs else { return Ok(()) };
        // Every hierarchy is tried (one may hold it while another does not); gone is no error.
        let mut first_err = None;
        for qos in [QOS_GUARANTEED, QOS_BURSTABLE, QOS_BEST_EFFORT] {
            let name = pod_cgroup_in(&self.root, qos, uid);
            if let Err(source) = fs.remove(&name) {
                first_err.get_or_insert(CgroupError { name: name.relative_path(), source });
            }
        }
        // The pod no longer counts towards the Burstable shares either way.
        self.track_burstable(fs, uid, None)?;
        first_err.map_or(Ok(()), Err)
    }

    fn pod_limits(&self, pod: &Pod) -> Option<CgroupLimits> {
        let fs = self.fs.as_ref()?;
        let name = pod_cgroup(&self.root, pod);
        fs.exists(&name).then(|| fs.read_limits(&name))
    }

    fn set_pod_resources(&self, pod: &Pod, resources: &CgroupResources) -> Result<(), CgroupError> {
        let Some(fs) = &self.fs else { return Ok(()) };
        let (qos, uid) = (pod_qos_class(pod), pod.metadata.uid.as_deref().unwrap_or_default());
        ensure(fs, &pod_cgroup(&self.root, pod), resources)?;
        self.track_burstable(fs, uid, (qos == QOS_BURSTABLE).then(|| pod_cpu_request(pod)))
    }

    fn pod_uids(&self) -> Vec<String> {
        let Some(fs) = &self.fs else { return Vec::new() };
        [QOS_GUARANTEED, QOS_BURSTABLE, QOS_BEST_EFFORT]
            .iter()
            .flat_map(|q| fs.children(&qos_cgroup(&self.root, q)))
            .filter_map(|c| c.strip_prefix("pod").map(String::from))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    #[test]
    fn top_level_and_pod_cgroups_on_a_v1_tree() {
        let t = tempfile::tempdir().unwrap();
        for c in ["cpu", "memory"] {
            std::fs::create_dir(t.path().join(c)).unwrap();
        }
        let qos = QosCgroups::new(t.path(), "/", CgroupDriver::Cgroupfs, -1);
        std::fs::create_dir(t.path().join("pids")).unwrap();
        qos.ensure_top_level(2000, Some(8 << 30), Some(30000)).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("pids/kubepods/pids.max")).unwrap(), "30000");
        assert_eq!(std::fs::read_to_string(t.path().join("cpu/kubepods/cpu.shares")).unwrap(), "2048");
        assert_eq!(std::fs::read_to_string(t.path().join("cpu/kubepods/besteffort/cpu.shares")).unwrap(), "2");
        assert!(t.path().join("memory/kubepods/burstable").is_dir());
        assert_eq!(std::fs::read_to_string(t.path().join("memory/kubepods/memory.limit_in_bytes")).unwrap(), (8u64 << 30).to_string());
        assert!(!t.path().join("memory/kubepods/burstable/memory.limit_in_bytes").exists(), "QoS cgroups are not limited");

        let mut pod = Pod { spec: Some(PodSpec { containers: vec![Container::default()], ..Default::default() }), ..Default::default() };
        pod.metadata.uid = Some("u1".into());
        assert_eq!(qos.ensure_pod(&pod).unwrap(), "/kubepods/besteffort/podu1");
        assert_eq!(qos.pod_parent(&pod), "/kubepods/besteffort/podu1");
        assert_eq!(qos.pod_uids(), vec!["u1".to_string()]);
        for c in ["cpu", "memory"] {
            for f in std::fs::read_dir(t.path().join(c).join("kubepods/besteffort/podu1")).unwrap().flatten() {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
        qos.remove_pod("u1").unwrap();
        assert!(qos.pod_uids().is_empty());
        qos.remove_pod("u1").unwrap();

        // Burstable pods' requests add up to the Burstable cgroup's shares.
        let burstable = |uid: &str, cpu: &str| {
            let c = Container {
                resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                    requests: Some([("cpu".to_string(), k8s_openapi::apimachinery::pkg::api::resource::Quantity(cpu.into()))].into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let mut p = Pod { spec: Some(PodSpec { containers: vec![c], ..Default::default() }), ..Default::default() };
            p.metadata.uid = Some(uid.into());
            p
        };
        let shares = || std::fs::read_to_string(t.path().join("cpu/kubepods/burstable/cpu.shares")).unwrap();
        qos.ensure_pod(&burstable("b1", "500m")).unwrap();
        qos.ensure_pod(&burstable("b2", "250m")).unwrap();
        assert_eq!(shares(), "768");
        for c in ["cpu", "memory"] {
            for f in std::fs::read_dir(t.path().join(c).join("kubepods/burstable/podb1")).unwrap().flatten() {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
        qos.remove_pod("b1").unwrap();
        assert_eq!(shares(), "256");
    }

    #[test]
    fn reserved_cgroups_get_their_reservation_and_must_exist() {
        let t = tempfile::tempdir().unwrap();
        for c in ["cpu", "memory", "pids"] {
            std::fs::create_dir_all(t.path().join(c).join("system.slice")).unwrap();
        }
        let qos = QosCgroups::new(t.path(), "/", CgroupDriver::Cgroupfs, -1);
        qos.enforce_reserved("/system.slice", 500, Some(1 << 30), Some(1000)).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("cpu/system.slice/cpu.shares")).unwrap(), "512");
        assert_eq!(std::fs::read_to_string(t.path().join("memory/system.slice/memory.limit_in_bytes")).unwrap(), (1u64 << 30).to_string());
        assert_eq!(std::fs::read_to_string(t.path().join("pids/system.slice/pids.max")).unwrap(), "1000");
        let err = qos.enforce_reserved("/kube.slice", 100, None, None).unwrap_err().to_string();
        assert!(err.contains("\"/kube.slice\" cgroup does not exist"), "{err}");
    }

    #[test]
    fn systemd_driver_names_slices_and_touches_nothing() {
        let t = tempfile::tempdir().unwrap();
        let qos = QosCgroups::new(t.path(), "", CgroupDriver::Systemd, -1);
        qos.ensure_top_level(1000, None, None).unwrap();
        let mut pod = Pod { spec: Some(PodSpec { containers: vec![Container::default()], ..Default::default() }), ..Default::default() };
        pod.metadata.uid = Some("a-b".into());
        assert_eq!(qos.ensure_pod(&pod).unwrap(), "kubepods-besteffort-poda_b.slice");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }
}
