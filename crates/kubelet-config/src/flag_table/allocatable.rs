//! Flags that decide how much of the node pods may use: node allocatable
//! enforcement and reservations, eviction thresholds, and per-node and
//! per-pod limits (max pods, PIDs, open files, OOM score). Data only, like
//! the rest of the table.

use super::{ConfigFlag, extend, merge};
use crate::flag_values::*;

/// Node allocatable, eviction and limit flags.
pub(super) fn flags() -> Vec<ConfigFlag> {
    vec![
        flag!("enforce-node-allocatable", value, "Comma-separated node allocatable enforcement levels", |c, v, f| extend(
            &mut c.enforce_node_allocatable,
            v,
            f
        )),
        flag!("eviction-hard", value, "Hard eviction thresholds (e.g. memory.available<1Gi)", |c, v, f| merge(
            &mut c.eviction_hard,
            parse_map(v, '<')?,
            f
        )),
        flag!("eviction-max-pod-grace-period", value, "Maximum grace period (seconds) for soft evictions", |c, v, f| c
            .eviction_max_pod_grace_period =
            parse_i32(v)?),
        flag!("eviction-minimum-reclaim", value, "Minimum reclaims (e.g. imagefs.available=2Gi)", |c, v, f| merge(
            &mut c.eviction_minimum_reclaim,
            parse_map(v, '=')?,
            f
        )),
        flag!(
            "eviction-pressure-transition-period",
            value,
            "Wait before transitioning out of an eviction pressure condition",
            |c, v, f| c.eviction_pressure_transition_period = parse_duration(v)?
        ),
        flag!("eviction-soft", value, "Soft eviction thresholds (e.g. memory.available<1.5Gi)", |c, v, f| merge(
            &mut c.eviction_soft,
            parse_map(v, '<')?,
            f
        )),
        flag!("eviction-soft-grace-period", value, "Soft eviction grace periods (e.g. memory.available=1m30s)", |c, v, f| merge(
            &mut c.eviction_soft_grace_period,
            parse_map(v, '=')?,
            f
        )),
        flag!("kernel-memcg-notification", bool, "Use kernel memcg notification for memory eviction thresholds", |c, v, f| c
            .kernel_memcg_notification =
            parse_bool(v)?),
        flag!("kube-reserved", value, "Resources reserved for kubernetes system components (cpu=200m,memory=500Mi)", |c, v, f| merge(
            &mut c.kube_reserved,
            parse_map(v, '=')?,
            f
        )),
        flag!("local-storage-capacity-isolation", bool, "Enable local ephemeral storage isolation", |c, v, f| c
            .local_storage_capacity_isolation =
            parse_bool(v)?),
        flag!("max-open-files", value, "Number of files that can be opened by Kubelet process", |c, v, f| c.max_open_files = parse_i64(v)?),
        flag!("max-pods", value, "Number of Pods that can run on this Kubelet", |c, v, f| c.max_pods = parse_i32(v)?),
        flag!("oom-score-adj", value, "The oom-score-adj value for kubelet process [-1000, 1000]", |c, v, f| c.oom_score_adj =
            parse_i32(v)?),
        flag!("pod-max-pids", value, "Maximum number of processes per pod (-1: node allocatable)", |c, v, f| c.pod_pids_limit =
            parse_i64(v)?),
        flag!("pods-per-core", value, "Number of Pods per core that can run on this Kubelet", |c, v, f| c.pods_per_core = parse_i32(v)?),
        flag!("qos-reserved", value, "<Alpha> ResourceName=Percentage pairs reserved at the QoS level", |c, v, f| merge(
            &mut c.qos_reserved,
            parse_map(v, '=')?,
            f
        )),
        flag!("system-reserved", value, "Resources reserved for non-kubernetes components (cpu=200m,memory=500Mi)", |c, v, f| merge(
            &mut c.system_reserved,
            parse_map(v, '=')?,
            f
        )),
    ]
}
