//! The stats collector: an owned task that samples the node, the kubelet's cgroups, every
//! managed pod and its containers on a housekeeping interval, and publishes the result as one
//! immutable [`StatsSnapshot`]. Endpoints read the latest snapshot; nothing is computed per
//! request. Directory walks (volumes, logs) run at most once per `volumeStatsAggPeriod` per
//! directory.
//!
//! Pod and container cgroups are found as the kubelet and the runtime lay them out for the
//! cgroup driver (`cgroupfs`: `kubepods/burstable/pod<uid>/<id>`; `systemd`: nested slices and
//! a `…<id>.scope`): the pod's cgroup from its QoS class and UID, each container's the child
//! whose name holds the container ID.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use kubelet_cri::{ImageService, RuntimeService, api};
use tokio_util::sync::CancellationToken;

use super::api::*;
use super::cgroup::{CgroupReader, CgroupSample};
use super::fs::{DiskUsage, FsInfo, disk_usage, fs_info};
use super::host;
use super::network::{self, InterfaceCounters};
use super::runtime_view::{RuntimeView, cri_sample};
use super::summary::{add_used, cpu_stats, fs_stats, io_stats, memory_stats, network_stats, swap_stats};
use crate::cm::pod_cgroups::{CgroupDriver, pod_cgroup, pods_cgroup, qos_cgroup};
use crate::kuberuntime::labels::{CONTAINER_NAME, POD_UID};
use crate::server::PodLister;
use crate::status::{QOS_BEST_EFFORT, QOS_BURSTABLE, api_time};

/// The most processes of one container whose threads, files and sockets are counted.
const MAX_PIDS: usize = 1024;

/// What the collector needs to know about the node.
#[derive(Debug, Clone)]
pub struct StatsConfig {
    /// The node's name, reported as the summary's `nodeName`.
    pub node_name: String,
    /// KubeletConfiguration `cgroupRoot` and `cgroupDriver` (how the cgroups are laid out).
    pub cgroup_root: String,
    /// The effective cgroup driver: `cgroupfs` paths or nested `systemd` slices.
    pub cgroup_driver: CgroupDriver,
    /// The kubelet root dir (`/var/lib/kubelet`): the node filesystem and pod volumes.
    pub root_dir: PathBuf,
    /// `/var/log/pods`.
    pub pod_logs_dir: PathBuf,
    /// The host's `/proc` (a parameter so tests read trees they write).
    pub proc_root: PathBuf,
    /// `kubeletCgroups`, `--runtime-cgroups`, `systemCgroups` (empty: not reported).
    pub kubelet_cgroup: String,
    /// `--runtime-cgroups`: reported as the `runtime` system container (empty: not reported).
    pub runtime_cgroup: String,
    /// `systemCgroups`: reported as the `misc` system container (empty: not reported).
    pub system_cgroup: String,
    /// The machine's memory in bytes: what the node's `availableBytes` is taken against.
    pub memory_capacity: u64,
    /// How often everything is sampled.
    pub interval: Duration,
    /// How long a directory's measured use is reused (`volumeStatsAggPeriod`).
    pub du_period: Duration,
    /// When the kubelet started: the `kubelet` system container's start time.
    pub kubelet_start: SystemTime,
    /// The machine's identity, for `/metrics/cadvisor`.
    pub machine: MachineLabels,
}

/// The machine's identity as `/metrics/cadvisor` labels it.
#[derive(Debug, Clone, Default)]
pub struct MachineLabels {
    /// `/etc/machine-id` (the `machine_id` label).
    pub machine_id: String,
    /// The DMI product UUID (the `system_uuid` label).
    pub system_uuid: String,
    /// This boot's random ID (the `boot_id` label).
    pub boot_id: String,
    /// The kernel release (`cadvisor_version_info`'s `kernelVersion` label).
    pub kernel_version: String,
    /// The OS's pretty name from `os-release` (`cadvisor_version_info`'s `osVersion` label).
    pub os_image: String,
    /// Total swap in bytes (`SwapTotal`): `machine_swap_bytes`, and the root cgroup's swap limit.
    pub swap_total: u64,
}

/// The node filesystem as the root cgroup's disk figures.
#[derive(Debug, Clone)]
pub struct RootDisk {
    /// The device the node filesystem is mounted from (`/dev/vda`); empty when unknown.
    pub device: String,
    /// The node filesystem's size (`statvfs` of the kubelet root dir).
    pub fs: FsInfo,
    /// The device's `/proc/diskstats` counters, when it is a `/dev` device listed there.
    pub io: Option<host::DiskStats>,
}

/// One container's cgroup as `/metrics/cadvisor` reports it.
#[derive(Debug, Clone, Default)]
pub struct CgroupRecord {
    /// The cgroup path (`/kubepods/burstable/pod…/<id>`, `/` for the node).
    pub id: String,
    /// Kubernetes labels: empty for cgroups that are not a pod's; `POD` for a sandbox.
    pub container: String,
    /// The pod's name (the `pod` label); empty for cgroups that are not a pod's.
    pub pod: String,
    /// The pod's namespace (the `namespace` label).
    pub namespace: String,
    /// The container's image as the pod spec names it, else its image ref (the `image` label);
    /// empty but for containers.
    pub image: String,
    /// The runtime's container ID (empty for pod and system cgroups).
    pub name: String,
    /// What was read from the cgroup this round.
    pub sample: CgroupSample,
    /// Interface counters: the host's for `/`, the pod's for pod and sandbox cgroups; empty
    /// otherwise.
    pub network: Vec<InterfaceCounters>,
    /// The writable layer's use and the size of its filesystem.
    pub fs: Option<(DiskUsage, FsInfo)>,
    /// Processes, threads, open files and sockets of the cgroup's processes (containers and
    /// sandboxes only).
    pub processes: host::ProcessFacts,
    /// When it started: the container's creation in the runtime, the machine's boot for `/`,
    /// else the cgroup's creation.
    pub start: Option<SystemTime>,
}

/// Everything one sampling round saw.
#[derive(Debug, Clone)]
pub struct StatsSnapshot {
    /// When the round was sampled (the time of every figure in it).
    pub taken: SystemTime,
    /// The `/stats/summary` body.
    pub summary: Summary,
    /// Every cgroup read, for `/metrics/cadvisor`: the root, system containers, QoS classes, pods,
    /// sandboxes and containers.
    pub cgroups: Vec<CgroupRecord>,
    /// Logical CPUs (`machine_cpu_cores`).
    pub num_cores: u64,
    /// The machine's memory in bytes (`machine_memory_bytes`).
    pub memory_capacity: u64,
    /// The machine's identity labels.
    pub machine: MachineLabels,
    /// The node filesystem's figures for the root cgroup's `container_fs_*` series; `None` when
    /// it could not be read.
    pub root_disk: Option<RootDisk>,
}

/// The latest snapshot, shared with the endpoints.
#[derive(Clone, Default)]
pub struct StatsStore(Arc<RwLock<Option<Arc<StatsSnapshot>>>>);

impl StatsStore {
    /// The snapshot published last, if any.
    pub fn latest(&self) -> Option<Arc<StatsSnapshot>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `s` the latest snapshot.
    pub fn publish(&self, s: StatsSnapshot) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(s));
    }
}

/// What one round shares between the pods and the node: the runtime's view, the time, and
/// the node and log filesystems' sizes.
struct Round<'a> {
    view: &'a RuntimeView,
    now: SystemTime,
    nodefs: Option<FsInfo>,
    log_fs: Option<FsInfo>,
}

/// Samples on an interval and publishes into a [`StatsStore`].
pub struct StatsCollector {
    cfg: StatsConfig,
    reader: CgroupReader,
    pods: Arc<dyn PodLister>,
    runtime: Arc<dyn RuntimeService>,
    images: Arc<dyn ImageService>,
    store: StatsStore,
    /// The previous cumulative CPU of each cgroup, for rates.
    prev_cpu: HashMap<String, (SystemTime, u64)>,
    du_cache: HashMap<PathBuf, (Instant, Option<DiskUsage>)>,
    /// The machine's cores and the root directory's device, and when they were read: machine
    /// facts, read again every [`MACHINE_FACTS_REFRESH`] (`/proc/cpuinfo` and the mount table
    /// are costly to generate on a node with many CPUs and container mounts).
    machine_facts: Option<(Instant, u64, String)>,
    /// How many cgroup records the last round made (the next round's vector is that large).
    last_records: usize,
}

/// How long the cores and the root directory's device are kept.
const MACHINE_FACTS_REFRESH: Duration = Duration::from_secs(300);

impl StatsCollector {
    /// A collector for `cfg`'s node: cgroups through `reader`, pods from `pods`, CRI figures from
    /// `runtime` and `images`, snapshots into `store`.
    pub fn new(
        cfg: StatsConfig,
        reader: CgroupReader,
        pods: Arc<dyn PodLister>,
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
        store: StatsStore,
    ) -> Self {
        StatsCollector {
            cfg,
            reader,
            pods,
            runtime,
            images,
            store,
            prev_cpu: HashMap::new(),
            du_cache: HashMap::new(),
            machine_facts: None,
            last_records: 0,
        }
    }

    /// Samples every `interval` until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let snapshot = self.collect().await;
            self.store.publish(snapshot);
        }
    }

    /// One sampling round.
    pub async fn collect(&mut self) -> StatsSnapshot {
        self.reader.begin_round();
        let view = RuntimeView::read(self.runtime.as_ref(), self.images.as_ref()).await;
        // The rest is file reads and directory walks: off the async workers' hands, so a volume
        // with a million files cannot stall the kubelet's other tasks.
        tokio::task::block_in_place(|| self.sample(&view))
    }

    /// The synchronous part of a round: cgroups, `/proc`, directories.
    fn sample(&mut self, view: &RuntimeView) -> StatsSnapshot {
        let now = SystemTime::now();
        // Specs only (the pods' cgroups, containers and volumes): shared, not copied, every 10 s.
        let pods = self.pods.pod_specs();
        // Sized by the last round: a vector grown by doubling carried up to half its records'
        // size again, for the 10 s it is kept.
        let mut cgroups = Vec::with_capacity(self.last_records + 8);
        let mut prev_cpu = HashMap::with_capacity(self.prev_cpu.len() + 8);
        // The node and log filesystems, once per round for every pod.
        let round = Round { view, now, nodefs: fs_info(&self.cfg.root_dir), log_fs: fs_info(&self.cfg.pod_logs_dir) };
        let pod_stats: Vec<PodStats> = pods.iter().filter_map(|p| self.pod_stats(p, &round, &mut cgroups, &mut prev_cpu)).collect();
        let node = self.node_stats(&round, &mut cgroups, &mut prev_cpu);
        if cgroups.capacity() > cgroups.len() + cgroups.len() / 4 + 8 {
            cgroups.shrink_to_fit();
        }
        self.last_records = cgroups.len();
        self.prev_cpu = prev_cpu;
        let keep = Instant::now() - self.cfg.du_period * 3;
        self.du_cache.retain(|_, (at, _)| *at > keep);
        let (num_cores, root_device) = self.machine_facts();
        StatsSnapshot {
            taken: now,
            summary: Summary { node, pods: pod_stats },
            cgroups,
            num_cores,
            memory_capacity: self.cfg.memory_capacity,
            machine: self.cfg.machine.clone(),
            root_disk: self.root_disk(round.nodefs, root_device),
        }
    }

    /// CPU stats of `key`'s sample, remembering its counter for the next round's rate.
    fn cpu(&self, key: &str, s: &CgroupSample, now: SystemTime, prev_cpu: &mut HashMap<String, (SystemTime, u64)>) -> Option<CpuStats> {
        let out = cpu_stats(s, now, self.prev_cpu.get(key).copied());
        if let Some(u) = s.cpu_usage_ns {
            prev_cpu.insert(key.to_string(), (now, u));
        }
        out
    }

    /// A directory's use, measured at most once per `du_period`.
    fn du(&mut self, dir: &Path) -> Option<DiskUsage> {
        if let Some((at, u)) = self.du_cache.get(dir)
            && at.elapsed() < self.cfg.du_period
        {
            return *u;
        }
        let u = disk_usage(dir);
        self.du_cache.insert(dir.to_path_buf(), (Instant::now(), u));
        u
    }

    fn node_stats(
        &mut self,
        round: &Round,
        cgroups: &mut Vec<CgroupRecord>,
        prev_cpu: &mut HashMap<String, (SystemTime, u64)>,
    ) -> NodeStats {
        let (view, now) = (round.view, round.now);
        let proc_root = self.cfg.proc_root.clone();
        let mut root = self.reader.read("").unwrap_or_default();
        if root.memory.is_none() {
            root.memory = host::meminfo_sample(&proc_root);
        }
        let host_net = network::read_pid(&proc_root, std::process::id());
        let boot = host::boot_time(&proc_root);
        cgroups.push(CgroupRecord { id: "/".into(), sample: root.clone(), network: host_net.clone(), start: boot, ..Default::default() });
        let mut system_containers = Vec::new();
        let pods_rel = pods_cgroup(&self.cfg.cgroup_root).dir_for_driver(self.cfg.cgroup_driver);
        let named = [
            (SYSTEM_CONTAINER_KUBELET, self.cfg.kubelet_cgroup.clone(), Some(self.cfg.kubelet_start)),
            (SYSTEM_CONTAINER_RUNTIME, self.cfg.runtime_cgroup.clone(), None),
            (SYSTEM_CONTAINER_MISC, self.cfg.system_cgroup.clone(), None),
            (SYSTEM_CONTAINER_PODS, pods_rel, None),
        ];
        for (name, rel, start) in named {
            if rel.is_empty() {
                continue;
            }
            let Some(s) = self.reader.read(&rel) else { continue };
            let key = format!("/{}", rel.trim_matches('/'));
            system_containers.push(ContainerStats {
                name: name.into(),
                start_time: api_time(start.or(s.created).unwrap_or(now)),
                cpu: self.cpu(&key, &s, now, prev_cpu),
                memory: memory_stats(&s, now, None),
                io: io_stats(&s, now),
                rootfs: None,
                logs: None,
                swap: swap_stats(&s, now),
            });
            cgroups.push(CgroupRecord { id: key, start: s.created, sample: s, ..Default::default() });
        }
        for qos in [QOS_BURSTABLE, QOS_BEST_EFFORT] {
            let rel = qos_cgroup(&self.cfg.cgroup_root, qos).dir_for_driver(self.cfg.cgroup_driver);
            if let Some(s) = self.reader.read(&rel) {
                cgroups.push(CgroupRecord { id: format!("/{rel}"), start: s.created, sample: s, ..Default::default() });
            }
        }
        let capacity = Some(self.cfg.memory_capacity);
        NodeStats {
            node_name: self.cfg.node_name.clone(),
            system_containers,
            start_time: api_time(boot.unwrap_or(now)),
            cpu: self.cpu("/", &root, now, prev_cpu),
            memory: memory_stats(
                &CgroupSample {
                    memory: root.memory.clone().map(|mut m| {
                        m.limit = None;
                        m
                    }),
                    ..Default::default()
                },
                now,
                capacity,
            )
            .map(|mut m| {
                m.psi = host::psi(&proc_root, "memory");
                m
            }),
            io: host::psi(&proc_root, "io").map(|psi| IoStats { time: api_time(now), psi: Some(psi) }),
            network: network_stats(&host_net, now),
            fs: Some(fs_stats(round.nodefs.as_ref(), None, now)),
            runtime: Some(RuntimeStats {
                image_fs: view.image_fs.map(|(i, u)| fs_stats(Some(&i), Some(u), now)),
                container_fs: view.container_fs.map(|(i, u)| fs_stats(Some(&i), Some(u), now)),
            }),
            rlimit: Some(RlimitStats {
                time: api_time(now),
                max_pid: host::pid_max(&proc_root),
                num_of_running_processes: host::process_count(&proc_root),
            }),
            swap: host::swap(&proc_root, now),
        }
        .with_cpu_psi(host::psi(&proc_root, "cpu"))
    }

    fn pod_stats(
        &mut self,
        shared: &crate::server::SharedPod,
        round: &Round,
        cgroups: &mut Vec<CgroupRecord>,
        prev_cpu: &mut HashMap<String, (SystemTime, u64)>,
    ) -> Option<PodStats> {
        let (view, now) = (round.view, round.now);
        let pod = shared.pod.as_ref();
        let uid = pod.metadata.uid.clone()?;
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let sandbox = view
            .sandboxes
            .iter()
            .filter(|s| s.metadata.as_ref().is_some_and(|m| m.uid == uid))
            .max_by_key(|s| (s.state == api::PodSandboxState::SandboxReady as i32, s.created_at))?;
        let pod_rel = pod_cgroup(&self.cfg.cgroup_root, pod).dir_for_driver(self.cfg.cgroup_driver);
        let pod_key = format!("/{pod_rel}");
        let pod_sample = self.reader.read(&pod_rel);
        let children = self.reader.children(&pod_rel);
        let child_of = |id: &str| children.iter().find(|c| c.contains(id)).map(|c| format!("{pod_rel}/{c}"));
        // The pod's network namespace, seen through the sandbox's process (or any of the pod's).
        let sandbox_rel = child_of(&sandbox.id);
        let sandbox_pids = sandbox_rel.as_deref().map(|rel| self.reader.pids(rel, MAX_PIDS)).unwrap_or_default();
        let net_pid = sandbox_pids.first().copied().or_else(|| self.reader.pids(&pod_rel, 1).first().copied());
        let net = net_pid.map(|pid| network::read_pid(&self.cfg.proc_root, pid)).unwrap_or_default();
        if let Some(rel) = sandbox_rel
            && let Some(s) = self.reader.read(&rel)
        {
            let processes = host::process_facts(&self.cfg.proc_root, &sandbox_pids, s.pids_max);
            cgroups.push(CgroupRecord {
                id: format!("/{rel}"),
                pod: name.clone(),
                namespace: namespace.clone(),
                name: sandbox.id.clone(),
                start: s.created,
                processes,
                sample: s,
                network: net.clone(),
                ..Default::default()
            });
        }
        // The newest running container of each name.
        let mut newest: HashMap<&str, &api::Container> = HashMap::new();
        for c in
            view.containers.iter().filter(|c| c.pod_sandbox_id == sandbox.id && c.state == api::ContainerState::ContainerRunning as i32)
        {
            let Some(cname) = c.labels.get(CONTAINER_NAME).or(c.metadata.as_ref().map(|m| &m.name)) else { continue };
            if c.labels.get(POD_UID).is_some_and(|u| *u != uid) {
                continue;
            }
            let e = newest.entry(cname.as_str()).or_insert(c);
            if c.created_at > e.created_at {
                *e = c;
            }
        }
        let container_fs = view.container_fs.map(|(i, _)| i);
        let pod_log_dir = self.cfg.pod_logs_dir.join(format!("{namespace}_{name}_{uid}"));
        let mut containers = Vec::new();
        let mut ephemeral: Option<DiskUsage> = None;
        let mut names: Vec<&&str> = newest.keys().collect();
        names.sort();
        for cname in names {
            let c = newest[*cname];
            let started = SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(c.created_at).unwrap_or(0));
            let rel = child_of(&c.id);
            let sample = rel.as_deref().and_then(|r| self.reader.read(r)).or_else(|| view.cri.get(&c.id).map(cri_sample));
            let layer = view.layers.get(&c.id).copied();
            let logs = self.du(&pod_log_dir.join(cname));
            ephemeral = add_used(add_used(ephemeral, layer), logs);
            let key = rel.as_ref().map(|r| format!("/{r}")).unwrap_or_else(|| c.id.clone());
            containers.push(ContainerStats {
                name: cname.to_string(),
                start_time: api_time(started),
                cpu: sample.as_ref().and_then(|s| self.cpu(&key, s, now, prev_cpu)),
                memory: sample.as_ref().and_then(|s| memory_stats(s, now, None)),
                io: sample.as_ref().and_then(|s| io_stats(s, now)),
                rootfs: layer.map(|u| fs_stats(container_fs.as_ref(), Some(u), now)),
                logs: Some(fs_stats(round.log_fs.as_ref(), logs, now)),
                swap: sample.as_ref().and_then(|s| swap_stats(s, now)),
            });
            if let (Some(rel), Some(s)) = (rel, sample) {
                let image = c
                    .image
                    .as_ref()
                    .map(|i| i.user_specified_image.clone())
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(|| c.image_ref.clone());
                let pids = self.reader.pids(&rel, MAX_PIDS);
                cgroups.push(CgroupRecord {
                    id: format!("/{rel}"),
                    container: cname.to_string(),
                    pod: name.clone(),
                    namespace: namespace.clone(),
                    image,
                    name: c.id.clone(),
                    processes: host::process_facts(&self.cfg.proc_root, &pids, s.pids_max),
                    start: Some(started),
                    sample: s,
                    network: Vec::new(),
                    fs: layer.zip(container_fs),
                });
            }
        }
        let volume_stats = self.volume_stats(pod, &uid, now);
        for v in &volume_stats {
            let local = pod
                .spec
                .as_ref()
                .and_then(|s| s.volumes.as_ref())
                .and_then(|vs| vs.iter().find(|x| x.name == v.name))
                .is_some_and(crate::eviction::local_storage::is_local_ephemeral);
            if local {
                ephemeral = add_used(ephemeral, v.fs.used_bytes.map(|b| DiskUsage { bytes: b, inodes: v.fs.inodes_used.unwrap_or(0) }));
            }
        }
        let etc_hosts = self.du(&self.cfg.root_dir.join("pods").join(&uid).join("etc-hosts"));
        ephemeral = add_used(ephemeral, etc_hosts);
        if let Some(s) = &pod_sample {
            cgroups.push(CgroupRecord {
                id: pod_key.clone(),
                pod: name.clone(),
                namespace: namespace.clone(),
                start: s.created,
                sample: s.clone(),
                network: net.clone(),
                ..Default::default()
            });
        }
        // The kubelet's start time (the shared pod's status is its source's).
        let start_time = shared
            .start_time
            .clone()
            .unwrap_or_else(|| api_time(SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(sandbox.created_at).unwrap_or(0))));
        Some(PodStats {
            pod_ref: PodReference { name, namespace, uid },
            start_time,
            containers,
            cpu: pod_sample.as_ref().and_then(|s| self.cpu(&pod_key, s, now, prev_cpu)),
            memory: pod_sample.as_ref().and_then(|s| memory_stats(s, now, None)),
            io: pod_sample.as_ref().and_then(|s| io_stats(s, now)),
            network: network_stats(&net, now),
            volume_stats,
            ephemeral_storage: Some(fs_stats(round.nodefs.as_ref(), Some(ephemeral.unwrap_or_default()), now)),
            process_stats: pod_sample.as_ref().and_then(|s| s.pids).map(|n| ProcessStats { process_count: Some(n) }),
            swap: pod_sample.as_ref().and_then(|s| swap_stats(s, now)),
        })
    }

    /// The cores and the root directory's device, from the cache while it is fresh.
    fn machine_facts(&mut self) -> (u64, String) {
        if let Some((at, cores, device)) = &self.machine_facts
            && at.elapsed() < MACHINE_FACTS_REFRESH
        {
            return (*cores, device.clone());
        }
        let cores = host::num_cores(&self.cfg.proc_root);
        let Some(device) = host::mount_source(&self.cfg.proc_root, &self.cfg.root_dir) else {
            // Not kept: read again next round.
            return (cores, String::new());
        };
        self.machine_facts = Some((Instant::now(), cores, device.clone()));
        (cores, device)
    }

    fn root_disk(&self, nodefs: Option<FsInfo>, device: String) -> Option<RootDisk> {
        let fs = nodefs?;
        let io = device.strip_prefix("/dev/").and_then(|name| host::disk_stats(&self.cfg.proc_root, name));
        Some(RootDisk { device, fs, io })
    }

    /// Every mounted volume of the pod (`pods/<uid>/volumes/<plugin>/<name>`), measured by a walk.
    fn volume_stats(&mut self, pod: &Pod, uid: &str, now: SystemTime) -> Vec<VolumeStats> {
        let base = self.cfg.root_dir.join("pods").join(uid).join("volumes");
        let mut dirs = Vec::new();
        for plugin in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            for vol in std::fs::read_dir(plugin.path()).into_iter().flatten().flatten() {
                if let Ok(name) = vol.file_name().into_string() {
                    dirs.push((name, vol.path()));
                }
            }
        }
        dirs.sort();
        let spec_volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        dirs.into_iter()
            .map(|(name, dir)| {
                let used = self.du(&dir);
                let pvc_ref = spec_volumes
                    .iter()
                    .find(|v| v.name == name)
                    .and_then(|v| v.persistent_volume_claim.as_ref())
                    .map(|c| PvcReference { name: c.claim_name.clone(), namespace: namespace.clone() });
                VolumeStats { fs: fs_stats(fs_info(&dir).as_ref(), used, now), name, pvc_ref }
            })
            .collect()
    }
}

impl NodeStats {
    fn with_cpu_psi(mut self, psi: Option<PsiStats>) -> Self {
        if let Some(c) = self.cpu.as_mut() {
            c.psi = c.psi.take().or(psi);
        }
        self
    }
}

#[cfg(test)]
#[path = "collector_tests.rs"]
mod tests;
