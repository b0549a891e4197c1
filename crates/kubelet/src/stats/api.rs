//! The Summary API's types (`stats/v1alpha1`, what `/stats/summary` serves and metrics-server,
//! eviction and `kubectl top` read), with upstream's JSON field names. Optional figures are
//! omitted when unknown, as upstream's `omitempty` pointers are.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

/// The whole summary: the node and every pod on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Node-wide figures and the kubelet's system containers.
    pub node: NodeStats,
    /// One entry per managed pod that has a sandbox in the runtime (pods without one are left out).
    pub pods: Vec<PodStats>,
}

/// Node-level figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    /// The node's name in the API (`nodeName`).
    pub node_name: String,
    /// The `kubelet`, `runtime`, `misc` (system daemons) and `pods` cgroups (`systemContainers`);
    /// those not configured or not found are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system_containers: Vec<ContainerStats>,
    /// When the machine booted (`btime` of `/proc/stat`); the sampling time when unknown.
    pub start_time: Time,
    /// The root cgroup's CPU use, with the system-wide CPU pressure where the cgroup has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    /// The node's memory (the root cgroup's, or `/proc/meminfo`'s figures), `availableBytes` taken
    /// against the machine's memory capacity, with the system-wide memory pressure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    /// System-wide I/O pressure (`/proc/pressure/io`); `None` without PSI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IoStats>,
    /// The host's interfaces, as the kubelet's own network namespace sees them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats>,
    /// The node filesystem (nodefs): the filesystem holding the kubelet root dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs: Option<FsStats>,
    /// The runtime's image and container filesystems (CRI `ImageFsInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeStats>,
    /// The node's process ID limit and task count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimit: Option<RlimitStats>,
    /// The node's swap in use and free (`/proc/meminfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

/// Process-id limits of the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlimitStats {
    /// When the figures were read.
    pub time: Time,
    /// `kernel.pid_max`: the limit on process IDs (`maxpid`).
    #[serde(rename = "maxpid", default, skip_serializing_if = "Option::is_none")]
    pub max_pid: Option<i64>,
    /// Tasks on the node now, the total of `/proc/loadavg` (`curproc`).
    #[serde(rename = "curproc", default, skip_serializing_if = "Option::is_none")]
    pub num_of_running_processes: Option<i64>,
}

/// The runtime's filesystems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStats {
    /// The filesystem holding images (the runtime's first image filesystem) and what images use
    /// of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_fs: Option<FsStats>,
    /// The filesystem holding the containers' writable layers and what they use of it; the image
    /// filesystem when the runtime reports no separate one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_fs: Option<FsStats>,
}

/// `systemContainers` names.
pub const SYSTEM_CONTAINER_KUBELET: &str = "kubelet";
/// The container runtime's cgroup (`--runtime-cgroups`).
pub const SYSTEM_CONTAINER_RUNTIME: &str = "runtime";
/// The system daemons' cgroup (`systemCgroups`).
pub const SYSTEM_CONTAINER_MISC: &str = "misc";
/// The `kubepods` cgroup, parent of every pod's.
pub const SYSTEM_CONTAINER_PODS: &str = "pods";

/// A pod's processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// Tasks in the pod's cgroup now (`pids.current`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_count: Option<u64>,
}

/// One pod's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    /// Which pod: its name, namespace and UID (`podRef`).
    pub pod_ref: PodReference,
    /// The pod's `status.startTime`, or its sandbox's creation time when the status has none.
    pub start_time: Time,
    /// The newest running container of each name, sorted by name.
    pub containers: Vec<ContainerStats>,
    /// CPU use of the pod's cgroup; `None` when it has none (`cgroupsPerQOS: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    /// Memory use of the pod's cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    /// I/O pressure of the pod's cgroup (cgroup v2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IoStats>,
    /// The pod's interfaces, read in its network namespace through the sandbox's process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats>,
    /// Use of each volume mounted under `pods/<uid>/volumes` (`volume`).
    #[serde(rename = "volume", default, skip_serializing_if = "Vec::is_empty")]
    pub volume_stats: Vec<VolumeStats>,
    /// The pod's local ephemeral storage (`ephemeral-storage`): writable layers, logs, local
    /// ephemeral volumes and `etc-hosts`, against the node filesystem's size.
    #[serde(rename = "ephemeral-storage", default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<FsStats>,
    /// Tasks in the pod's cgroup (`process_stats`).
    #[serde(rename = "process_stats", default, skip_serializing_if = "Option::is_none")]
    pub process_stats: Option<ProcessStats>,
    /// Swap use of the pod's cgroup, where the kernel accounts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

/// One container's figures (also a system container's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    /// The container's name in the pod spec, or the system container's (`kubelet`, `runtime`,
    /// `misc`, `pods`).
    pub name: String,
    /// When the runtime created the container; for a system container, when the kubelet started
    /// or the cgroup was made.
    pub start_time: Time,
    /// CPU use of the container's cgroup, or the runtime's CRI figures when the kubelet did not
    /// place its cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    /// Memory use, from the same source as `cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    /// I/O pressure of the container's cgroup (cgroup v2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IoStats>,
    /// The container's writable layer (CRI stats) on the container filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<FsStats>,
    /// The container's log directory under `/var/log/pods`, on the log filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<FsStats>,
    /// Swap use of the container's cgroup, where the kernel accounts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

/// Which pod a [`PodStats`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodReference {
    /// The pod's name (`metadata.name`).
    pub name: String,
    /// The pod's namespace (`metadata.namespace`, `default` when unset).
    pub namespace: String,
    /// The pod's UID (`metadata.uid`).
    pub uid: String,
}

/// One network interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceStats {
    /// The interface's name in its network namespace (`eth0`).
    pub name: String,
    /// Bytes received, cumulative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_bytes: Option<u64>,
    /// Receive errors, cumulative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_errors: Option<u64>,
    /// Bytes transmitted, cumulative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_bytes: Option<u64>,
    /// Transmit errors, cumulative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_errors: Option<u64>,
}

/// Network figures: the default interface (`eth0`) inline, and every interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkStats {
    /// When the counters were read.
    pub time: Time,
    /// `eth0`'s counters, inlined into the record; empty when there is no `eth0`.
    #[serde(flatten)]
    pub default_interface: InterfaceStats,
    /// Every interface but loopback and the host side of container links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceStats>,
}

/// CPU use: the rate over the last sampling interval and the cumulative total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    /// When the CPU figures were read.
    pub time: Time,
    /// CPU use in nanocores (10^9 per core) over the last sampling interval; `None` on a
    /// cgroup's first sample or when its counter went back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_nano_cores: Option<u64>,
    /// Cumulative CPU time, in core-nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_core_nano_seconds: Option<u64>,
    /// CPU pressure (`cpu.pressure` on cgroup v2; `/proc/pressure/cpu` for the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<PsiStats>,
}

/// Memory use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    /// When the memory figures were read.
    pub time: Time,
    /// The memory limit (for the node: the machine's capacity) minus the working set, in bytes;
    /// `None` without a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    /// Bytes charged, page cache included (`memory.usage_in_bytes` / `memory.current`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    /// Usage minus inactive file pages, in bytes: what memory eviction and `kubectl top` go by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_set_bytes: Option<u64>,
    /// Anonymous memory in bytes (v1 `total_rss`, v2 `anon`).
    #[serde(rename = "rssBytes", default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// Page faults, cumulative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_faults: Option<u64>,
    /// Major page faults (those that read from disk), cumulative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major_page_faults: Option<u64>,
    /// Memory pressure (`memory.pressure` on cgroup v2; `/proc/pressure/memory` for the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<PsiStats>,
}

/// I/O pressure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoStats {
    /// When the pressure was read.
    pub time: Time,
    /// I/O pressure (`io.pressure` on cgroup v2; `/proc/pressure/io` for the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<PsiStats>,
}

/// Pressure stall information of one resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PsiStats {
    /// The `full` line: time during which every non-idle task was stalled at once.
    pub full: PsiData,
    /// The `some` line: time during which at least one task was stalled.
    pub some: PsiData,
}

/// One PSI line: total stall time (µs) and the running averages (percent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PsiData {
    /// Total stall time, in microseconds.
    pub total: u64,
    /// Percentage of the last 10 seconds spent stalled.
    pub avg10: f64,
    /// Percentage of the last 60 seconds spent stalled.
    pub avg60: f64,
    /// Percentage of the last 300 seconds spent stalled.
    pub avg300: f64,
}

/// Swap use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapStats {
    /// When the swap figures were read.
    pub time: Time,
    /// Swap still free in bytes: the swap limit minus usage (for the node: `SwapFree`); `None`
    /// without a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_available_bytes: Option<u64>,
    /// Swap in use, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_usage_bytes: Option<u64>,
}

/// A pod volume's use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStats {
    /// The volume's use (a walk of its directory) and its filesystem's size, inlined into the
    /// record.
    #[serde(flatten)]
    pub fs: FsStats,
    /// The volume's name in the pod spec (`spec.volumes[].name`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The PersistentVolumeClaim behind the volume, when it is one (`pvcRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc_ref: Option<PvcReference>,
}

/// The claim behind a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PvcReference {
    /// The claim's name (the volume's `claimName`).
    pub name: String,
    /// The claim's namespace: the pod's.
    pub namespace: String,
}

/// A filesystem's size and use (bytes and inodes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsStats {
    /// When the figures were read.
    pub time: Time,
    /// Bytes free to unprivileged users on the filesystem (`f_bavail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    /// The filesystem's total size, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<u64>,
    /// Bytes used: by the directory or writable layer measured, else by the whole filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<u64>,
    /// Free inodes on the filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inodes_free: Option<u64>,
    /// Total inodes on the filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inodes: Option<u64>,
    /// Inodes used: by the directory or writable layer measured, else by the whole filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inodes_used: Option<u64>,
}
