//! Flags for the node's cgroup layout and the resource managers that place
//! containers on it: cgroup driver and roots, CFS quota, CPU, memory and
//! topology manager policies, reserved CPUs and NUMA memory, swap and cgroup
//! v1 refusal. Data only, like the rest of the table.

use super::{ConfigFlag, merge};
use crate::flag_values::*;

/// Cgroup layout and resource-manager flags.
pub(super) fn flags() -> Vec<ConfigFlag> {
    vec![
        flag!("cgroup-driver", value, "Driver that the kubelet uses to manipulate cgroups on the host: cgroupfs or systemd", |c, v, f| c
            .cgroup_driver =
            v.into()),
        flag!("cgroup-root", value, "Optional root cgroup to use for pods", |c, v, f| c.cgroup_root = v.into()),
        flag!("cgroups-per-qos", bool, "Enable creation of QoS cgroup hierarchy", |c, v, f| c.cgroups_per_qos = parse_bool(v)?),
        flag!("cpu-cfs-quota", bool, "Enable CPU CFS quota enforcement for containers that specify CPU limits", |c, v, f| c
            .cpu_cfs_quota =
            parse_bool(v)?),
        flag!("cpu-cfs-quota-period", value, "Sets CPU CFS quota period value, cpu.cfs_period_us", |c, v, f| c.cpu_cfs_quota_period =
            parse_duration(v)?),
        flag!("cpu-manager-policy", value, "CPU Manager policy to use: none or static", |c, v, f| c.cpu_manager_policy = v.into()),
        flag!("cpu-manager-policy-options", value, "key=value CPU Manager policy options", |c, v, f| merge(
            &mut c.cpu_manager_policy_options,
            parse_map(v, '=')?,
            f
        )),
        flag!("cpu-manager-reconcile-period", value, "CPU Manager reconciliation period", |c, v, f| c.cpu_manager_reconcile_period =
            parse_duration(v)?),
        flag!(current "fail-cgroupv1", bool, "Prevent the kubelet from starting on the host using cgroup v1", |c, v, f| c.fail_cgroup_v1 = parse_bool(v)?),
        flag!("fail-swap-on", bool, "Makes the Kubelet fail to start if swap is enabled on the node", |c, v, f| c.fail_swap_on =
            parse_bool(v)?),
        flag!("kube-reserved-cgroup", value, "Top level cgroup for kube-reserved", |c, v, f| c.kube_reserved_cgroup = v.into()),
        flag!("kubelet-cgroups", value, "Optional absolute name of cgroups to create and run the Kubelet in", |c, v, f| c
            .kubelet_cgroups =
            v.into()),
        flag!("memory-manager-policy", value, "Memory Manager policy to use: None or Static", |c, v, f| c.memory_manager_policy = v.into()),
        flag!("protect-kernel-defaults", bool, "Error if kernel tunables differ from kubelet defaults", |c, v, f| c
            .protect_kernel_defaults =
            parse_bool(v)?),
        flag!("reserved-cpus", value, "CPUs or CPU ranges reserved for system and kubernetes usage", |c, v, f| c.reserved_system_cpus =
            v.into()),
        flag!("reserved-memory", value, "Memory reservations for a NUMA node (0:memory=1Gi,hugepages-1M=2Gi)", |c, v, f| {
            if f {
                c.reserved_memory.clear();
            }
            c.reserved_memory.push(parse_reserved_memory(v)?)
        }),
        flag!("system-cgroups", value, "Absolute name of cgroups for non-kernel processes", |c, v, f| c.system_cgroups = v.into()),
        flag!("system-reserved-cgroup", value, "Top level cgroup for system-reserved", |c, v, f| c.system_reserved_cgroup = v.into()),
        flag!("topology-manager-policy", value, "Topology Manager policy to use", |c, v, f| c.topology_manager_policy = v.into()),
        flag!("topology-manager-policy-options", value, "key=value Topology Manager policy options", |c, v, f| merge(
            &mut c.topology_manager_policy_options,
            parse_map(v, '=')?,
            f
        )),
        flag!("topology-manager-scope", value, "Scope to which topology hints applied: container or pod", |c, v, f| c
            .topology_manager_scope =
            v.into()),
    ]
}
