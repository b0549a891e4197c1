//! The container manager's cgroups (upstream `pkg/kubelet/cm`): with `cgroupsPerQOS` the kubelet
//! makes `kubepods`, `kubepods/burstable` and `kubepods/besteffort` under `cgroupRoot` at start,
//! gives every pod a cgroup of its own under its QoS class's ([`pod_cgroups`]), hands that
//! cgroup to the runtime as the sandbox's `cgroup_parent`, and removes it with the pod.
//!
//! [`PodCgroups`] is the boundary the runtime manager uses; [`QosCgroups`] implements it on this
//! host's cgroupfs ([`cgroupfs`], v1 and v2). With the `systemd` driver the names are systemd
//! slices, which the runtime creates through systemd; the kubelet writes no limits then.

pub mod cgroupfs;
pub mod pod_cgroups;

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

use self::cgroupfs::Cgroupfs;
use self::pod_cgroups::{CgroupDriver, CgroupName, CgroupResources, MIN_SHARES, pod_cgroup, pod_cgroup_resources, pods_cgroup, qos_cgroup};
use crate::kuberuntime::resources::milli_cpu_to_shares;
use crate::status::{QOS_BEST_EFFORT, QOS_BURSTABLE, QOS_GUARANTEED};

/// A cgroup the kubelet could not make or remove.
#[derive(Debug, thiserror::Error)]
#[error("cgroup {name}: {source}")]
pub struct CgroupError {
    pub name: String,
    #[source]
    pub source: std::io::Error,
}

/// Pod cgroups, as the runtime manager needs them.
pub trait PodCgroups: Send + Sync {
    /// Creates (or updates) the pod's cgroup; returns the `cgroup_parent` for its sandbox.
    fn ensure_pod(&self, pod: &Pod) -> Result<String, CgroupError>;
    /// The pod's `cgroup_parent` without touching the host (for a sandbox that exists).
    fn pod_parent(&self, pod: &Pod) -> String;
    /// Removes the cgroup of pod `uid` under whichever QoS class it was; gone is no error.
    fn remove_pod(&self, uid: &str) -> Result<(), CgroupError>;
}

/// QoS and pod cgroups on this host (KubeletConfiguration `cgroupRoot`, `cgroupDriver`,
/// `podPidsLimit`).
pub struct QosCgroups {
    root: String,
    driver: CgroupDriver,
    /// `None` with the systemd driver.
    fs: Option<Cgroupfs>,
    pids_limit: Option<i64>,
}

impl QosCgroups {
    /// `mount` is the cgroupfs mount point (`/sys/fs/cgroup`).
    pub fn new(mount: &Path, cgroup_root: &str, driver: CgroupDriver, pod_pids_limit: i64) -> Self {
        let fs = (driver == CgroupDriver::Cgroupfs).then(|| Cgroupfs::detect(mount));
        let pids_limit = (pod_pids_limit > 0).then_some(pod_pids_limit);
        QosCgroups { root: cgroup_root.to_string(), driver, fs, pids_limit }
    }

    /// Makes the top-level cgroups: `kubepods` with the node's CPU as its shares, `burstable`, and
    /// `besteffort` with the minimum shares (upstream's node-allocatable and QoS containers).
    pub fn ensure_top_level(&self, node_milli_cpu: i64) -> Result<(), CgroupError> {
        let Some(fs) = &self.fs else { return Ok(()) };
        let kubepods = CgroupResources { cpu_shares: Some(milli_cpu_to_shares(node_milli_cpu) as u64), ..Default::default() };
        let levels = [
            (pods_cgroup(&self.root), kubepods),
            (qos_cgroup(&self.root, QOS_BURSTABLE), CgroupResources::default()),
            (qos_cgroup(&self.root, QOS_BEST_EFFORT), CgroupResources { cpu_shares: Some(MIN_SHARES), ..Default::default() }),
        ];
        for (name, resources) in levels {
            fs.ensure(&name, &resources).map_err(|source| CgroupError { name: name.relative_path(), source })?;
        }
        Ok(())
    }

    /// The pod cgroups present under every QoS class: their pod UIDs.
    pub fn pod_uids(&self) -> Vec<String> {
        let Some(fs) = &self.fs else { return Vec::new() };
        [QOS_GUARANTEED, QOS_BURSTABLE, QOS_BEST_EFFORT]
            .iter()
            .flat_map(|q| fs.children(&qos_cgroup(&self.root, q)))
            .filter_map(|c| c.strip_prefix("pod").map(String::from))
            .collect()
    }
}

impl PodCgroups for QosCgroups {
    fn ensure_pod(&self, pod: &Pod) -> Result<String, CgroupError> {
        let name = pod_cgroup(&self.root, pod);
        if let Some(fs) = &self.fs {
            fs.ensure(&name, &pod_cgroup_resources(pod, self.pids_limit)).map_err(|source| CgroupError { name: name.relative_path(), source })?;
        }
        Ok(name.for_driver(self.driver))
    }

    fn pod_parent(&self, pod: &Pod) -> String {
        pod_cgroup(&self.root, pod).for_driver(self.driver)
    }

    fn remove_pod(&self, uid: &str) -> Result<(), CgroupError> {
        let Some(fs) = &self.fs else { return Ok(()) };
        for qos in [QOS_GUARANTEED, QOS_BURSTABLE, QOS_BEST_EFFORT] {
            let mut name: CgroupName = qos_cgroup(&self.root, qos);
            name.0.push(format!("pod{uid}"));
            if fs.exists(&name) {
                fs.remove(&name).map_err(|source| CgroupError { name: name.relative_path(), source })?;
            }
        }
        Ok(())
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
        qos.ensure_top_level(2000).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("cpu/kubepods/cpu.shares")).unwrap(), "2048");
        assert_eq!(std::fs::read_to_string(t.path().join("cpu/kubepods/besteffort/cpu.shares")).unwrap(), "2");
        assert!(t.path().join("memory/kubepods/burstable").is_dir());

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
    }

    #[test]
    fn systemd_driver_names_slices_and_touches_nothing() {
        let t = tempfile::tempdir().unwrap();
        let qos = QosCgroups::new(t.path(), "", CgroupDriver::Systemd, -1);
        qos.ensure_top_level(1000).unwrap();
        let mut pod = Pod { spec: Some(PodSpec { containers: vec![Container::default()], ..Default::default() }), ..Default::default() };
        pod.metadata.uid = Some("a-b".into());
        assert_eq!(qos.ensure_pod(&pod).unwrap(), "kubepods-besteffort-poda_b.slice");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }
}
