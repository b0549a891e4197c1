//! The node's cgroups at start (upstream's container manager `setupNode`): the QoS hierarchy
//! (`kubepods`, `burstable`, `besteffort`) with node allocatable enforced on `kubepods`, and the
//! `system-reserved` / `kube-reserved` cgroups when their enforcement is asked for.

use std::path::Path;
use std::sync::Arc;

use kubelet::cm::QosCgroups;
use kubelet::cm::pod_cgroups::CgroupDriver;
use kubelet_config::types::KubeletConfiguration;
use kubelet_types::machine::MachineInfo;

use crate::AppError;

/// Makes the QoS cgroups and enforces node allocatable and the reservations on them.
pub(crate) fn qos_cgroups(
    cfg: &KubeletConfiguration,
    machine: &MachineInfo,
    cgroup_driver: CgroupDriver,
    proc_root: &Path,
) -> Result<Arc<QosCgroups>, AppError> {
    let qos = QosCgroups::new(std::path::Path::new("/sys/fs/cgroup"), &cfg.cgroup_root, cgroup_driver, cfg.pod_pids_limit);
    // With `pods` in enforceNodeAllocatable (the default) kubepods gets the node's CPU shares
    // and memory less kubeReserved and systemReserved, as upstream.
    let enforced = cfg.enforce_node_allocatable.iter().any(|e| e == "pods");
    let capacity = kubelet_types::resources::capacity(machine, i64::from(cfg.max_pods), i64::from(cfg.pods_per_core));
    let limits = kubelet_types::resources::pods_cgroup_limits(
        &capacity,
        &kubelet_types::resources::Reservations {
            kube_reserved: cfg.kube_reserved.clone(),
            system_reserved: cfg.system_reserved.clone(),
            eviction_hard: Default::default(),
        },
    );
    let cpu = if enforced { limits.get("cpu").copied().unwrap_or(machine.num_cores * 1000) } else { machine.num_cores * 1000 };
    // The node's PIDs (`pid_max`) less the reserved ones (`pid` in kubeReserved and
    // systemReserved) bound kubepods' tasks, as upstream's allocatable `pid` does.
    let reserved_pids: i64 =
        [&cfg.kube_reserved, &cfg.system_reserved].iter().filter_map(|r| r.get("pid")).filter_map(|v| v.trim().parse::<i64>().ok()).sum();
    let pid_max = std::fs::read_to_string(proc_root.join("sys/kernel/pid_max")).ok().and_then(|s| s.trim().parse::<i64>().ok());
    let pids = pid_max.filter(|_| enforced).map(|m| (m - reserved_pids).max(1));
    qos.ensure_top_level(cpu, enforced.then(|| limits.get("memory").copied()).flatten(), pids)?;
    // The reserved cgroups, when their enforcement is asked for (validated: their names are
    // set): the reservation becomes their limit, or only their CPU shares for the
    // `-compressible` forms.
    for (enforcement, cgroup, reserved) in [
        ("system-reserved", &cfg.system_reserved_cgroup, &cfg.system_reserved),
        ("kube-reserved", &cfg.kube_reserved_cgroup, &cfg.kube_reserved),
    ] {
        let compressible = format!("{enforcement}-compressible");
        let (full, only_cpu) =
            (cfg.enforce_node_allocatable.iter().any(|e| e == enforcement), cfg.enforce_node_allocatable.contains(&compressible));
        if !full && !only_cpu {
            continue;
        }
        let r = kubelet_types::resources::reservation(
            &capacity,
            &kubelet_types::resources::Reservations {
                kube_reserved: reserved.clone(),
                system_reserved: Default::default(),
                eviction_hard: Default::default(),
            },
        );
        let pid = reserved.get("pid").and_then(|v| v.trim().parse::<i64>().ok());
        qos.enforce_reserved(cgroup, r.get("cpu").copied().unwrap_or(0), r.get("memory").copied().filter(|_| full), pid.filter(|_| full))?;
        tracing::info!(cgroup = %cgroup, "{enforcement} enforced on its cgroup");
    }
    Ok(Arc::new(qos))
}
