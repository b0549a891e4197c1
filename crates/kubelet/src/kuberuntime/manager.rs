//! Executes pod syncs against the container runtime (upstream `kubeGenericRuntimeManager`).
//!
//! [`RuntimeManager::sync_pod`] runs the plan of [`compute_pod_actions`](super::actions::compute_pod_actions): kill what must go, create
//! the sandbox, start the next init container or the app containers (subject to restart backoff),
//! and garbage-collects old dead instances. [`RuntimeManager::kill_pod`] stops a pod gracefully.
//! It holds no per-pod state besides backoff; the runtime's labels are the record.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};
use kubelet_cri::{CriError, ImageService, RuntimeService, api};

use super::actions::{PodActions, ProbeVerdicts, compute_pod_actions_with_probes, is_sidecar};
use super::container_config::{ContainerConfigError, ContainerContext, container_config};
use super::env::{EnvObjects, EnvSources, PodFacts};
use super::hash::{container_hash, hash_matches};
use super::images::ImageManager;
use super::labels::{PodRef, pod_full_name, pod_name, pod_namespace, pod_uid};
use super::lifecycle::{container_spec, grace_after_hook, run_hook};
use super::pod_dirs::{PodDirs, legacy_log_symlink};
use super::resize::{
    ResizePlan, container_shrink_refused, memory_decrease_error, memory_decreases, memory_shrink_refused, plan_resize, widened,
};
use super::runtime_state::get_pod_status;
use super::sandbox::{SandboxContext, pod_sandbox_config};
use super::security_context::{ImageUser, NodeSecurity, pod_security_context, supplemental_groups_policy};
use super::sub_path::HostSubPaths;
use crate::allocation::{Allocatable, AllocationManager};
use crate::backoff::Backoff;
use crate::container::{ContainerState, ContainerStatus, PodStatus, SandboxState};
use crate::volumemanager::VolumeManager;
use crate::volumemanager::mount::SystemMounter;
use kubelet_types::clock::Clock;
use kubelet_types::events::{EventRecorder, EventType};

/// How long a `preStop` hook may go on after the grace period it outlived.
const ABANDONED_HOOK_LIMIT: Duration = Duration::from_secs(120);

/// Node-level settings of the runtime manager.
#[derive(Clone, Debug)]
pub struct RuntimeManagerConfig {
    /// The kubelet's root directory (`--root-dir`, `/var/lib/kubelet`): pod directories, volumes,
    /// checkpoints.
    pub root_dir: PathBuf,
    /// Settings every pod sandbox is made with: pod log root, cluster DNS, cgroup parent.
    pub sandbox: SandboxContext,
    /// This node's name, for the `spec.nodeName` downward API.
    pub node_name: String,
    /// The node's IP: `status.hostIP`, and the pod IP of host-network pods.
    pub host_ip: String,
    /// The host's hosts file, copied for host-network pods.
    pub host_hosts_file: PathBuf,
    /// Where the legacy per-container log symlinks go (`/var/log/containers`).
    pub container_logs_dir: PathBuf,
    /// Node memory capacity in bytes, for the OOM score adjustment of burstable containers.
    pub memory_capacity: i64,
    /// CRI runtime handler (RuntimeClass); empty for the default.
    pub runtime_handler: String,
    /// KubeletConfiguration `seccompDefault`.
    pub seccomp_default: bool,
    /// The node's allocatable resources (what unset limits read as in the downward API).
    pub node_allocatable: super::resources::NodeAllocatable,
    /// The runtime handlers (`""` the default) whose CRI features include recursive read-only
    /// mounts.
    pub rro_handlers: Vec<String>,
    /// The runtime handlers (`""` the default) whose CRI features include user namespaces.
    pub userns_handlers: Vec<String>,
}

/// A runtime failure within one pod sync; the sync goes on where it can, and the pod worker
/// retries with its back-off.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A CRI call (stopping the pod or one of its containers).
    #[error(transparent)]
    Runtime(#[from] CriError),
    /// The pod's directories or files (`/etc/hosts`, a termination-message file).
    #[error(transparent)]
    PodDir(#[from] super::pod_dirs::PodDirError),
    /// A sandbox made without the user namespace the pod asks for could not be stopped.
    #[error("stopping the sandbox made without a user namespace: {}", cri_message(.0))]
    StaleSandbox(#[source] CriError),
    /// The pod's user namespace could not be given.
    #[error(transparent)]
    UserNamespace(#[from] super::userns::UserNsError),
    /// `RunPodSandbox` (or what it needs first) failed, as the `FailedCreatePodSandBox` event says.
    #[error("Failed to create pod sandbox: {0}")]
    CreateSandbox(#[source] CreateSandboxError),
}

/// Why a pod's sandbox was not created (the `FailedCreatePodSandBox` event, after
/// "Failed to create pod sandbox: ").
#[derive(Debug, thiserror::Error)]
pub enum CreateSandboxError {
    /// The pod's cgroup could not be made.
    #[error("failed to create the pod's cgroup: {0}")]
    Cgroup(#[source] crate::cm::CgroupError),
    /// The pod's hostname does not fit the kernel.
    #[error(transparent)]
    Hostname(#[from] super::sandbox::SandboxError),
    /// The pod's `supplementalGroupsPolicy` cannot be honoured.
    #[error(transparent)]
    SecurityContext(#[from] super::security_context::SecurityContextError),
    /// The pod's RuntimeClass could not be read.
    #[error(transparent)]
    RuntimeClass(#[from] RuntimeClassError),
    /// The pod's user namespace could not be given.
    #[error(transparent)]
    UserNamespace(#[from] super::userns::UserNsError),
    /// `RunPodSandbox` failed.
    #[error(transparent)]
    Runtime(#[from] CriError),
}

/// Why the CRI handler of a pod's RuntimeClass is unknown.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeClassError {
    /// The RuntimeClass does not exist (its name).
    #[error("RuntimeClass {0:?} not found")]
    NotFound(String),
    /// The API server could not give the RuntimeClass.
    #[error("failed to get RuntimeClass {name:?}: {source}")]
    Get {
        /// The pod's `runtimeClassName`.
        name: String,
        /// The API error.
        #[source]
        source: kubelet_types::api_error::ApiError,
    },
}

/// What a sync left undone, for the pod's status and the worker's next wake-up.
#[derive(Debug, Default)]
pub struct SyncOutcome {
    /// Container name → (waiting reason, message), e.g. `CrashLoopBackOff`.
    pub waiting: BTreeMap<String, (String, String)>,
    /// When a backoff ends and the pod should be synced again.
    pub retry_after: Option<Duration>,
    /// Runtime errors of this sync (the worker retries with its own backoff).
    pub errors: Vec<SyncError>,
    /// Why an in-place resize could not be applied (the `PodResizeInProgress` condition's
    /// `Error`); retried on the next sync.
    pub resize_error: Option<String>,
}

impl SyncOutcome {
    /// Records that container `name`'s image (or an image volume it mounts) is not available;
    /// a pull that may succeed later brings the pod back within 10 s.
    fn image_failed(&mut self, name: &str, reason: &'static str, message: String) {
        if matches!(reason, "ImagePullBackOff" | "ErrImagePull" | "RegistryUnavailable" | "SignatureValidationFailed") {
            self.retry_after = Some(self.retry_after.map_or(Duration::from_secs(10), |r| r.min(Duration::from_secs(10))));
        }
        self.waiting.insert(name.to_string(), (reason.into(), message));
    }
}

/// Drives pods on the container runtime.
pub struct RuntimeManager {
    runtime: Arc<dyn RuntimeService>,
    images: Arc<dyn ImageService>,
    events: Arc<dyn EventRecorder>,
    env_sources: Arc<dyn EnvSources + Send>,
    cfg: RuntimeManagerConfig,
    clock: Arc<dyn Clock>,
    backoff: Mutex<Backoff>,
    image_manager: ImageManager,
    volumes: VolumeManager,
    security: NodeSecurity,
    /// Device plugin allocations, when the device manager runs.
    devices: Option<Arc<dyn crate::devices::DeviceAllocator>>,
    /// Pod cgroups under the QoS classes' (`cgroupsPerQOS`); `None`: the sandbox context's
    /// fixed parent.
    cgroups: Option<Arc<dyn crate::cm::PodCgroups>>,
    /// Allocated and actuated resources (in-place resize).
    allocation: Arc<AllocationManager>,
    /// The pods' user namespaces (`hostUsers: false`).
    user_namespaces: Arc<super::userns::UserNamespaces>,
    /// The pod startup latency SLI, told of init containers (and, through the image manager,
    /// of pulls).
    startup: Option<Arc<crate::pod_startup_latency::PodStartupLatencyTracker>>,
}

/// The grace period of a kill (upstream `setTerminationGracePeriod`): an explicit override
/// (a deletion's), else the pod's `deletionGracePeriodSeconds`, else a failed probe's own
/// `terminationGracePeriodSeconds`, else the pod's; 30 s when none is set. It may be 0 (a forced
/// deletion: no `preStop`); the stop itself never gets less than 2 s ([`grace_after_hook`]).
fn grace_seconds(pod: Option<&Pod>, override_seconds: Option<i64>, probe_seconds: Option<i64>) -> Duration {
    let deletion = pod.and_then(|p| p.metadata.deletion_grace_period_seconds);
    let spec = pod.and_then(|p| p.spec.as_ref()).and_then(|s| s.termination_grace_period_seconds);
    let secs = override_seconds.or(deletion).or(probe_seconds).or(spec).unwrap_or(30).max(0);
    Duration::from_secs(secs as u64)
}

fn backoff_key(pod: &Pod, c: &Container) -> String {
    format!("{}_{}_{}_{}_{}", pod_name(pod), pod_namespace(pod), pod_uid(pod), c.name, container_hash(c))
}

impl RuntimeManager {
    /// A runtime manager on the given CRI services, with its volume manager, allocation
    /// checkpoint and user-namespace allocator under `cfg.root_dir`.
    pub fn new(
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
        events: Arc<dyn EventRecorder>,
        env_sources: Arc<dyn EnvSources + Send>,
        cfg: RuntimeManagerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let volumes = VolumeManager::new(cfg.root_dir.clone(), None, Arc::new(SystemMounter), clock.clone())
            .with_node_allocatable(cfg.node_allocatable.clone());
        let security = NodeSecurity::detect(&cfg.root_dir, cfg.seccomp_default, std::path::Path::new("/sys"));
        let allocation = Arc::new(AllocationManager::new(Some(&cfg.root_dir), Allocatable::from_list(&cfg.node_allocatable)));
        let user_namespaces =
            Arc::new(super::userns::UserNamespaces::new(&cfg.root_dir, super::userns::IdRanges::default_for(super::userns::IDS_UNIT)));
        Self {
            runtime,
            images,
            events,
            env_sources,
            cfg,
            clock,
            backoff: Mutex::default(),
            image_manager: ImageManager::default(),
            volumes,
            security,
            devices: None,
            cgroups: None,
            allocation,
            user_namespaces,
            startup: None,
        }
    }

    /// Replaces the default user namespace ranges (upstream's default share, 65536 IDs a pod).
    pub fn with_user_namespaces(mut self, user_namespaces: super::userns::UserNamespaces) -> Self {
        self.user_namespaces = Arc::new(user_namespaces);
        self
    }

    /// Replaces the (standalone, API-less) volume manager, e.g. with one that reaches the API.
    pub fn with_volume_manager(mut self, volumes: VolumeManager) -> Self {
        self.volumes = volumes;
        self
    }

    /// Limits image pulls (`serializeImagePulls`, `maxParallelImagePulls`, `registryPullQPS`).
    pub fn with_pull_limits(
        mut self,
        limits: super::images::PullLimits,
        plugins: Option<Arc<super::credential_plugins::CredentialPlugins>>,
    ) -> Self {
        self.image_manager = ImageManager::new(limits);
        if let Some(t) = &self.startup {
            self.image_manager = std::mem::take(&mut self.image_manager).with_startup_tracker(t.clone());
        }
        if let Some(p) = plugins {
            self.image_manager = self.image_manager.with_plugins(p);
        }
        self
    }

    /// Tells the pod startup latency tracker of image pulls and init containers.
    pub fn with_startup_tracker(mut self, tracker: Arc<crate::pod_startup_latency::PodStartupLatencyTracker>) -> Self {
        self.image_manager = std::mem::take(&mut self.image_manager).with_startup_tracker(tracker.clone());
        self.startup = Some(tracker);
        self
    }

    /// Verifies that pods may use images already present (`KubeletEnsureSecretPulledImages`).
    pub fn with_pull_records(mut self, records: Arc<super::pull_records::PullRecords>) -> Self {
        self.image_manager = std::mem::take(&mut self.image_manager).with_pull_records(records);
        self
    }

    /// Gives containers the devices the device manager allocated them.
    pub fn with_devices(mut self, devices: Arc<dyn crate::devices::DeviceAllocator>) -> Self {
        self.devices = Some(devices);
        self
    }

    /// Runs each pod in a cgroup of its own (`cgroupsPerQOS`).
    pub fn with_pod_cgroups(mut self, cgroups: Arc<dyn crate::cm::PodCgroups>) -> Self {
        self.cgroups = Some(cgroups);
        self
    }

    /// The device manager, for admission and for freeing a removed pod's devices.
    pub fn devices(&self) -> Option<&Arc<dyn crate::devices::DeviceAllocator>> {
        self.devices.as_ref()
    }

    /// Adds the container's device settings (the device manager may call its plugin's
    /// `PreStartContainer` first); a failure is a `CreateContainerConfigError`.
    async fn with_device_options(
        &self,
        pod: &Pod,
        c: &Container,
        mut config: api::ContainerConfig,
    ) -> Result<api::ContainerConfig, ContainerConfigError> {
        let Some(devices) = &self.devices else { return Ok(config) };
        let opts = devices.container_options(pod, c).await.map_err(|e| ContainerConfigError::new(c, e))?;
        crate::devices::apply(&mut config, opts);
        Ok(config)
    }

    /// Allocated and actuated resources of the pods (in-place resize).
    pub fn allocation(&self) -> &Arc<AllocationManager> {
        &self.allocation
    }

    /// The clock backoff decisions and statuses use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Where pod events go.
    pub fn events(&self) -> &Arc<dyn EventRecorder> {
        &self.events
    }

    /// The CRI runtime service it drives.
    pub fn runtime(&self) -> &Arc<dyn RuntimeService> {
        &self.runtime
    }

    /// The node-level settings it was made with.
    pub fn config(&self) -> &RuntimeManagerConfig {
        &self.cfg
    }

    /// The runtime's state for `pod`.
    pub async fn pod_status(&self, pod: &PodRef) -> kubelet_cri::Result<PodStatus> {
        get_pod_status(self.runtime.as_ref(), pod).await
    }

    /// One sync of `pod` given the runtime's `status` for it and the running containers whose
    /// liveness or startup probe failed.
    pub async fn sync_pod(&self, pod: &Pod, status: &PodStatus, verdicts: &ProbeVerdicts) -> SyncOutcome {
        self.init_containers_finished(pod, status);
        let mut actions = compute_pod_actions_with_probes(pod, status, verdicts);
        let mut out = SyncOutcome::default();
        // Resized containers (the pod is the allocated one): restarts join the plan; the rest
        // is applied after the kills and before the starts, as upstream's step 7.
        let resize = if actions.kill_pod {
            ResizePlan::default()
        } else {
            plan_resize(pod, status, &actions, |name| self.allocation.actuated(pod_uid(pod), name))
        };
        resize.add_restarts(&mut actions);
        if actions.kill_pod {
            if let Err(e) = self.kill_pod(Some(pod), status, None).await {
                out.errors.push(e.into());
                return out;
            }
            if !actions.create_sandbox {
                return out;
            }
        }
        for k in &actions.containers_to_kill {
            let Some(running) = status.containers.iter().find(|c| c.id == k.id) else { continue };
            let grace = grace_seconds(Some(pod), None, k.grace_override);
            let is_running = running.state == ContainerState::Running;
            if let Err(e) = self
                .kill_container(Some(pod), &running.id, &running.name, is_running, &k.message, grace, pod_ip(status, &self.cfg.host_ip))
                .await
            {
                out.errors.push(e.into());
            }
        }
        let Some((sandbox_id, sandbox_config, ips)) = self.ensure_sandbox(pod, status, &actions, &mut out).await else {
            return out;
        };
        let dirs = PodDirs::new(&self.cfg.root_dir, pod_uid(pod));
        // Also refreshes ConfigMap/Secret/token contents of running pods on every sync.
        let volumes = match self.volumes.mount_pod_volumes(pod).await {
            Ok(v) => v,
            Err(e) => {
                self.events.event(pod, EventType::Warning, "FailedMount", &e.to_string());
                let spec_containers = pod.spec.iter().flat_map(|s| s.containers.iter());
                let running = |name: &str| status.latest_container(name).is_some_and(|c| c.state == ContainerState::Running);
                for c in spec_containers.filter(|c| !running(&c.name)) {
                    out.waiting.insert(c.name.clone(), ("ContainerCreating".into(), e.to_string()));
                }
                out.retry_after = Some(Duration::from_secs(2));
                return out;
            }
        };
        // A host-network pod's IPs are the node's (its sandbox reports none), as upstream.
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        let ips = if ips.is_empty() && host_network { vec![self.cfg.host_ip.clone()] } else { ips };
        let facts = PodFacts {
            pod_ips: ips,
            host_ip: self.cfg.host_ip.clone(),
            node_name: self.cfg.node_name.clone(),
            allocatable: self.cfg.node_allocatable.clone(),
        };
        if !actions.create_sandbox {
            self.resize_pod(pod, &resize, &mut out).await;
        }
        let spec = pod.spec.as_ref();
        let inits =
            actions.init_containers_to_start.iter().filter_map(|&i| spec.and_then(|s| s.init_containers.as_ref()).and_then(|v| v.get(i)));
        let regular = actions.containers_to_start.iter().filter_map(|&i| spec.and_then(|s| s.containers.get(i)));
        let targets: Vec<&Container> = inits.chain(regular).collect();
        for c in targets {
            self.start_container(pod, c, None, status, &sandbox_id, &sandbox_config, &dirs, &volumes, &facts, &mut out).await;
        }
        let ephemeral = super::ephemeral::ephemeral_containers(pod);
        for ec in actions.ephemeral_containers_to_start.iter().filter_map(|&i| ephemeral.get(i)) {
            // The target's process namespace, when it names a running container.
            let target = ec
                .target_container_name
                .as_deref()
                .and_then(|t| status.latest_container(t))
                .filter(|t| t.state == ContainerState::Running)
                .map(|t| t.id.as_str());
            let c = super::ephemeral::as_container(ec);
            self.start_container(pod, &c, target, status, &sandbox_id, &sandbox_config, &dirs, &volumes, &facts, &mut out).await;
        }
        self.gc_dead_instances(status).await;
        out
    }

    /// Brings the pod cgroup to the allocated pod's settings and updates the running containers
    /// that take their resize in place (upstream `doPodResizeAction`), after the sync's kills
    /// (a container restarted for its resize no longer holds memory) and before its starts. The
    /// pod cgroup is widened first (the larger of old and new CPU quota and memory limit), the
    /// containers updated, then the pod cgroup given its final settings. A pod cgroup whose
    /// settings were applied is not touched again until the allocation changes them, which also
    /// covers containers that get their new resources by starting (a crash loop, a restart).
    async fn resize_pod(&self, pod: &Pod, plan: &ResizePlan, out: &mut SyncOutcome) {
        let uid = pod_uid(pod);
        let target = self.cgroups.as_ref().map(|_| crate::cm::pod_cgroups::pod_cgroup_resources(pod, None));
        let stale = target.is_some() && self.allocation.pod_cgroup(uid) != target;
        if plan.update.is_empty() && !stale {
            return;
        }
        let current = self.cgroups.as_ref().and_then(|c| c.pod_limits(pod));
        // No memory limit goes below what is in use (upstream `validateMemoryResizeAction`).
        let mut refused: Vec<String> =
            current.as_ref().zip(target.as_ref()).and_then(|(c, t)| memory_shrink_refused(c, t)).into_iter().collect();
        for (id, name, new) in memory_decreases(plan, |name| self.allocation.actuated(uid, name)) {
            let filter = api::ContainerStatsFilter { id: id.clone(), ..Default::default() };
            let usage = match self.runtime.list_container_stats(Some(filter)).await {
                Ok(stats) => stats
                    .iter()
                    .find(|s| s.attributes.as_ref().is_some_and(|a| a.id == id))
                    .and_then(|s| s.memory.as_ref()?.usage_bytes.as_ref())
                    .map(|u| u.value),
                Err(e) => {
                    tracing::warn!(pod = %pod_full_name(pod), container = %name, "reading memory usage for a resize: {}", cri_message(&e));
                    None
                }
            };
            refused.extend(container_shrink_refused(&name, new, usage));
        }
        if let Some(error) = memory_decrease_error(&refused) {
            out.resize_error = Some(error);
            return;
        }
        if let (Some(cgroups), Some(current), Some(target)) = (&self.cgroups, current, target.as_ref())
            && let Err(e) = cgroups.set_pod_resources(pod, &widened(&current, target))
        {
            out.resize_error = Some(format!("updating the pod cgroup: {e}"));
            return;
        }
        let spec = pod.spec.as_ref();
        for u in &plan.update {
            let c = match u.slot {
                super::resize::Slot::Regular(i) => spec.and_then(|s| s.containers.get(i)),
                super::resize::Slot::Init(i) => spec.and_then(|s| s.init_containers.as_ref()).and_then(|v| v.get(i)),
            };
            let Some(c) = c else { continue };
            let linux = super::resources::linux_resources(pod, c, self.cfg.memory_capacity);
            match self.runtime.update_container_resources(&u.id, linux).await {
                Ok(()) => self.allocation.set_actuated(uid, &u.name, &u.resources),
                Err(e) => {
                    let msg = format!("updating container {}: {}", u.name, cri_message(&e));
                    tracing::warn!(pod = %pod_full_name(pod), "in-place resize: {msg}");
                    out.resize_error.get_or_insert(msg);
                }
            }
        }
        if out.resize_error.is_some() {
            return;
        }
        match (&self.cgroups, current, target) {
            (Some(cgroups), Some(_), Some(target)) => match cgroups.set_pod_resources(pod, &target) {
                Ok(()) => self.allocation.set_pod_cgroup(uid, target),
                Err(e) => out.resize_error = Some(format!("updating the pod cgroup: {e}")),
            },
            // No pod cgroup values to manage here (the systemd driver, or none yet).
            (_, _, Some(target)) => self.allocation.set_pod_cgroup(uid, target),
            _ => {}
        }
    }

    /// Reuses the ready sandbox or creates a new one; returns its ID, config and pod IPs.
    async fn ensure_sandbox(
        &self,
        pod: &Pod,
        status: &PodStatus,
        actions: &PodActions,
        out: &mut SyncOutcome,
    ) -> Option<(String, api::PodSandboxConfig, Vec<String>)> {
        let mut config = pod_sandbox_config(pod, actions.attempt, &self.cfg.sandbox);
        // The pod's cgroup, made if missing on every sync as upstream does.
        if let Some(cgroups) = &self.cgroups {
            let parent = match cgroups.ensure_pod(pod) {
                Ok(parent) => parent,
                Err(e) if actions.create_sandbox => {
                    self.sandbox_failed(pod, out, CreateSandboxError::Cgroup(e));
                    return None;
                }
                Err(e) => {
                    tracing::warn!(pod = %pod_full_name(pod), "updating the pod's cgroup: {e}");
                    cgroups.pod_parent(pod)
                }
            };
            if let Some(linux) = config.linux.as_mut() {
                linux.cgroup_parent = parent;
            }
        }
        if !actions.create_sandbox {
            let id = actions.sandbox_id.clone()?;
            // The containers join the sandbox's user namespace, recorded when it was made.
            match self.user_namespaces.options(pod, "", false, false) {
                Ok(ns) => set_userns(&mut config, ns),
                Err(e) => {
                    // A sandbox made without the user namespace the pod asks for: made again.
                    if self.user_namespaces.missing_for(pod) {
                        self.events.event(
                            pod,
                            EventType::Normal,
                            "SandboxChanged",
                            "Pod sandbox changed, it will be killed and re-created.",
                        );
                        if let Err(e) = self.runtime.stop_pod_sandbox(&id).await {
                            out.errors.push(SyncError::StaleSandbox(e));
                        }
                    }
                    out.errors.push(SyncError::UserNamespace(e));
                    return None;
                }
            }
            let ips = status.sandboxes.iter().find(|s| s.id == id).map(|s| s.ips.clone()).unwrap_or_default();
            return Some((id, config, ips));
        }
        // A hostname the kernel cannot take: no sandbox (checked before anything is created).
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        if !host_network && let Err(e) = super::sandbox::kernel_hostname(pod, &self.cfg.sandbox.dns.domain) {
            self.sandbox_failed(pod, out, e.into());
            return None;
        }
        if let Err(e) = supplemental_groups_policy(pod_security_context(pod)) {
            self.sandbox_failed(pod, out, e.into());
            return None;
        }
        let dirs = PodDirs::new(&self.cfg.root_dir, pod_uid(pod));
        if let Err(e) = dirs.create() {
            out.errors.push(e.into());
            return None;
        }
        let _ = std::fs::create_dir_all(&config.log_directory);
        // The RuntimeClass's handler, the pod's user namespace on it, then the sandbox.
        let handler = match self.runtime_handler(pod).await {
            Ok(handler) => handler,
            Err(e) => {
                self.sandbox_failed(pod, out, e.into());
                return None;
            }
        };
        match self.user_namespaces.options(pod, &handler, self.cfg.userns_handlers.contains(&handler), true) {
            Ok(ns) => set_userns(&mut config, ns),
            Err(e) => {
                self.sandbox_failed(pod, out, e.into());
                return None;
            }
        }
        let id = match self.runtime.run_pod_sandbox(config.clone(), &handler).await {
            Ok(id) => id,
            Err(e) => {
                self.sandbox_failed(pod, out, e.into());
                return None;
            }
        };
        let sandbox = self.runtime.pod_sandbox_status(&id).await.ok();
        let ips: Vec<String> = sandbox
            .as_ref()
            .and_then(|s| s.network.as_ref())
            .map(|n| {
                std::iter::once(n.ip.clone()).chain(n.additional_ips.iter().map(|i| i.ip.clone())).filter(|ip| !ip.is_empty()).collect()
            })
            .unwrap_or_default();
        let host_ips = if ips.is_empty() { vec![self.cfg.host_ip.clone()] } else { ips.clone() };
        if let Err(e) = dirs.write_etc_hosts(pod, &host_ips, &self.cfg.host_hosts_file, &self.cfg.sandbox.dns.domain) {
            out.errors.push(e.into());
        }
        Some((id, config, ips))
    }

    /// Reports a sandbox that could not be created, as upstream (`FailedCreatePodSandBox`).
    fn sandbox_failed(&self, pod: &Pod, out: &mut SyncOutcome, reason: CreateSandboxError) {
        let error = SyncError::CreateSandbox(reason);
        self.events.event(pod, EventType::Warning, "FailedCreatePodSandBox", &error.to_string());
        out.errors.push(error);
    }

    /// The CRI handler of the pod's RuntimeClass (`spec.runtimeClassName`), or the node's default.
    /// A standalone kubelet has no RuntimeClasses to read and uses the default.
    async fn runtime_handler(&self, pod: &Pod) -> Result<String, RuntimeClassError> {
        let Some(name) = pod.spec.as_ref().and_then(|s| s.runtime_class_name.as_deref()).filter(|n| !n.is_empty()) else {
            return Ok(self.cfg.runtime_handler.clone());
        };
        let Some(api) = self.volumes.api() else {
            tracing::warn!(pod = %pod_full_name(pod), "runtimeClassName {name:?} ignored: no API server to read RuntimeClasses from");
            return Ok(self.cfg.runtime_handler.clone());
        };
        match api.get_runtime_class(name).await {
            Ok(Some(rc)) => Ok(rc.handler),
            Ok(None) => Err(RuntimeClassError::NotFound(name.to_string())),
            Err(source) => Err(RuntimeClassError::Get { name: name.to_string(), source }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_container(
        &self,
        pod: &Pod,
        c: &Container,
        pid_target: Option<&str>,
        status: &PodStatus,
        sandbox_id: &str,
        sandbox_config: &api::PodSandboxConfig,
        dirs: &PodDirs,
        volumes: &HashMap<String, PathBuf>,
        facts: &PodFacts,
        out: &mut SyncOutcome,
    ) {
        let previous = status.latest_container(&c.name);
        // Created but never started (the kubelet or the runtime went away between CreateContainer
        // and StartContainer): start that instance. Upstream creates a second one, which users see
        // as a restart that never happened. If it will not start, a new instance replaces it.
        if let Some(created) = previous.filter(|p| p.state == ContainerState::Created && hash_matches(&p.hash, c)) {
            match self.runtime.start_container(&created.id).await {
                Ok(()) => {
                    self.container_started(pod, c);
                    return;
                }
                Err(e) => {
                    tracing::info!(pod = %pod_full_name(pod), container = %c.name, "starting the created container {} failed, creating a new one: {}", created.id, cri_message(&e))
                }
            }
        }
        if let Some(prev) = previous.filter(|p| p.state == ContainerState::Exited) {
            let key = backoff_key(pod, c);
            let finished = prev.finished_at.unwrap_or(SystemTime::UNIX_EPOCH);
            let now = self.clock.now();
            let mut backoff = self.backoff.lock().expect("backoff lock");
            // Expired entries behave as absent; dropping them keeps the map bounded by live pods.
            backoff.gc(now);
            if let Some(left) = backoff.remaining(&key, finished, now) {
                let delay = backoff.current(&key).unwrap_or_default();
                let message = format!(
                    "back-off {} restarting failed container={} pod={}({})",
                    humanize(delay),
                    c.name,
                    pod_full_name(pod),
                    pod_uid(pod)
                );
                self.events.event(
                    pod,
                    EventType::Warning,
                    "BackOff",
                    &format!("Back-off restarting failed container {} in pod {}", c.name, pod_full_name(pod)),
                );
                out.waiting.insert(c.name.clone(), ("CrashLoopBackOff".into(), message));
                out.retry_after = Some(out.retry_after.map_or(left, |r| r.min(left)));
                return;
            }
            backoff.next(&key, finished);
        }
        let image_ref = match self
            .image_manager
            .ensure_image(self.images.as_ref(), self.events.as_ref(), self.env_sources.as_ref(), pod, c, sandbox_config, self.clock.now())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                out.image_failed(&c.name, e.reason, e.message);
                return;
            }
        };
        // Image volumes this container mounts: pulled by their own policy, failing as its image.
        let mut image_volumes = HashMap::new();
        for v in
            pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()).filter(|v| c.volume_mounts.iter().flatten().any(|m| m.name == v.name))
        {
            let Some(source) = &v.image else { continue };
            let reference = source.reference.clone().unwrap_or_default();
            let as_container = Container {
                name: c.name.clone(),
                image: Some(reference.clone()),
                image_pull_policy: source.pull_policy.clone(),
                ..Default::default()
            };
            match self
                .image_manager
                .ensure_image(
                    self.images.as_ref(),
                    self.events.as_ref(),
                    self.env_sources.as_ref(),
                    pod,
                    &as_container,
                    sandbox_config,
                    self.clock.now(),
                )
                .await
            {
                Ok(r) => {
                    image_volumes.insert(v.name.clone(), (reference, r));
                }
                Err(e) => {
                    out.image_failed(&c.name, e.reason, format!("image volume {:?}: {}", v.name, e.message));
                    return;
                }
            }
        }
        let restart_count = previous.map(|p| p.restart_count + 1).unwrap_or(0);
        let instance = format!("{:08x}", rand_instance());
        let termination_log = match dirs.termination_log(&c.name, &instance) {
            Ok(p) => Some(p),
            Err(e) => {
                out.errors.push(e.into());
                None
            }
        };
        // The image's user, for runAsNonRoot and a container without runAsUser (as upstream, the
        // runtime is asked again: a pulled image's status was not read).
        let image_spec = api::ImageSpec { image: c.image.clone().unwrap_or_default(), ..Default::default() };
        let objects = EnvObjects::fetch(pod, c, self.env_sources.as_ref()).await;
        // Only a mount asking for recursive read-only needs the handler's features.
        let wants_rro = c.volume_mounts.iter().flatten().any(|m| m.recursive_read_only.as_deref().is_some_and(|r| r != "Disabled"));
        let runtime_supports_rro = wants_rro && self.runtime_handler(pod).await.is_ok_and(|h| self.cfg.rro_handlers.contains(&h));
        let config = match (self.images.image_status(&image_spec).await, objects) {
            (_, Err(e)) => Err(ContainerConfigError::new(c, e)),
            (Ok(image), Ok(objects)) => {
                let ctx = ContainerContext {
                    facts,
                    env_objects: &objects,
                    volume_paths: volumes,
                    image_volumes: &image_volumes,
                    etc_hosts: Some(dirs.etc_hosts()).filter(|p| p.exists()),
                    termination_log,
                    memory_capacity: self.cfg.memory_capacity,
                    security: &self.security,
                    image_user: ImageUser::of(image.as_ref()),
                    sub_paths: &HostSubPaths { pod_dir: dirs.pod_dir.clone() },
                    runtime_supports_rro,
                };
                container_config(pod, c, restart_count, &ctx)
            }
            (Err(e), Ok(_)) => Err(ContainerConfigError::new(c, e)),
        };
        let config = match config {
            Ok((cfg, extras)) => self.with_device_options(pod, c, cfg).await.map(|cfg| (cfg, extras)),
            Err(e) => Err(e),
        };
        let (mut config, extras) = match config {
            Ok(built) => built,
            Err(e) => {
                let message = e.source.to_string();
                self.events.event(pod, EventType::Warning, "Failed", &format!("Error: {message}"));
                out.waiting.insert(c.name.clone(), ("CreateContainerConfigError".into(), message));
                out.retry_after = Some(Duration::from_secs(10));
                return;
            }
        };
        if let Some(target) = pid_target
            && let Some(ns) = config.linux.as_mut().and_then(|l| l.security_context.as_mut()).and_then(|sc| sc.namespace_options.as_mut())
        {
            ns.pid = api::NamespaceMode::Target as i32;
            ns.target_id = target.to_owned();
        }
        let sandbox_userns = sandbox_config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|sc| sc.namespace_options.as_ref())
            .and_then(|ns| ns.userns_options.clone());
        if let Some(ns) = config.linux.as_mut().and_then(|l| l.security_context.as_mut()).and_then(|sc| sc.namespace_options.as_mut()) {
            ns.userns_options = sandbox_userns;
        }
        if let Some(image) = config.image.as_mut() {
            image.user_specified_image = c.image.clone().unwrap_or_default();
            image.image = image_ref;
        }
        let id = match self.runtime.create_container_with(sandbox_id, config, &extras, sandbox_config.clone()).await {
            Ok(id) => id,
            Err(e) => {
                let msg = cri_message(&e);
                self.events.event(pod, EventType::Warning, "Failed", &format!("Error: {msg}"));
                out.waiting.insert(c.name.clone(), ("CreateContainerError".into(), msg));
                return;
            }
        };
        self.events.event(pod, EventType::Normal, "Created", &format!("Created container {}", c.name));
        self.allocation.set_actuated(pod_uid(pod), &c.name, &c.resources.clone().unwrap_or_default());
        self.link_container_log(pod_name(pod), pod_namespace(pod), &c.name, &id, sandbox_config, restart_count);
        if let Err(e) = self.runtime.start_container(&id).await {
            let msg = cri_message(&e);
            self.events.event(pod, EventType::Warning, "Failed", &format!("Error: {msg}"));
            out.waiting.insert(c.name.clone(), ("RunContainerError".into(), msg));
            return;
        }
        self.container_started(pod, c);
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let ip = facts.pod_ips.first().cloned().unwrap_or_else(|| self.cfg.host_ip.clone());
            if let Err(e) = run_hook(self.runtime.as_ref(), pod, c, &id, hook, &ip, None).await {
                let msg = e.to_string();
                self.events.event(pod, EventType::Warning, "FailedPostStartHook", &msg);
                // As upstream's killContainer: a Killing event, the preStop hook, the stop.
                let grace = grace_seconds(Some(pod), None, None);
                if let Err(e) = self.kill_container(Some(pod), &id, &c.name, true, "FailedPostStartHook", grace, ip).await {
                    out.errors.push(e.into());
                }
                out.waiting.insert(c.name.clone(), ("PostStartHookError".into(), msg));
            }
        }
    }

    /// The `Started` event; an init container's start (not a sidecar's) also goes to the pod
    /// startup latency tracker, as upstream.
    fn container_started(&self, pod: &Pod, c: &Container) {
        self.events.event(pod, EventType::Normal, "Started", &format!("Started container {}", c.name));
        let is_init =
            pod.spec.as_ref().and_then(|s| s.init_containers.as_ref()).is_some_and(|inits| inits.iter().any(|i| i.name == c.name));
        if let Some(t) = self.startup.as_ref().filter(|_| is_init && !super::actions::is_sidecar(c)) {
            t.init_container_started(pod_uid(pod));
        }
    }

    /// Tells the pod startup latency tracker of init containers (not sidecars) that have
    /// exited; it counts each from the start it was told of.
    fn init_containers_finished(&self, pod: &Pod, status: &PodStatus) {
        let Some(t) = &self.startup else { return };
        let inits = pod.spec.as_ref().and_then(|s| s.init_containers.as_deref()).unwrap_or_default();
        for c in inits.iter().filter(|c| !super::actions::is_sidecar(c)) {
            if let Some(finished) =
                status.latest_container(&c.name).filter(|s| s.state == ContainerState::Exited).and_then(|s| s.finished_at)
            {
                t.init_container_finished(pod_uid(pod), finished);
            }
        }
    }

    /// Stops one container: its `preStop` hook first (when the pod's spec is known and the
    /// container runs), bounded by `grace`, then the runtime's stop with the grace left.
    /// `id` and `name` name the instance; `running`: whether it runs (only then a hook).
    #[allow(clippy::too_many_arguments)]
    async fn kill_container(
        &self,
        pod: Option<&Pod>,
        id: &str,
        name: &str,
        running: bool,
        message: &str,
        grace: Duration,
        pod_ip: String,
    ) -> Result<(), CriError> {
        let started = tokio::time::Instant::now();
        self.pre_stop(pod, id, name, running, message, grace, &pod_ip).await;
        self.runtime.stop_container(id, grace_after_hook(grace, started.elapsed())).await
    }

    /// Records the `Killing` event and runs the `preStop` hook of container instance `id`
    /// (`name` in the spec) within `grace`, when it is `running`.
    #[allow(clippy::too_many_arguments)]
    async fn pre_stop(&self, pod: Option<&Pod>, id: &str, name: &str, running: bool, message: &str, grace: Duration, pod_ip: &str) {
        let Some(pod) = pod else { return };
        self.events.event(pod, EventType::Normal, "Killing", message);
        // No time at all (a forced deletion): no hook, as upstream.
        if grace.is_zero() {
            return;
        }
        let hook = container_spec(pod, name).and_then(|spec| Some((spec, spec.lifecycle.as_ref()?.pre_stop.as_ref()?)));
        let Some((spec, hook)) = hook.filter(|_| running) else { return };
        // The hook runs in its own task, unbounded as upstream's: a hook still running when the
        // grace period ends is not killed by us (an exec hook dies with its container when the
        // stop that follows kills it); we only stop waiting for it. A hook that never ends is
        // dropped after a while so its task cannot linger.
        let (runtime, pod_owned, spec, id_owned, hook, ip) =
            (self.runtime.clone(), pod.clone(), spec.clone(), id.to_owned(), hook.clone(), pod_ip.to_owned());
        let task = tokio::spawn(async move {
            let run = run_hook(runtime.as_ref(), &pod_owned, &spec, &id_owned, &hook, &ip, None);
            tokio::time::timeout(grace + ABANDONED_HOOK_LIMIT, run).await.unwrap_or(Ok(()))
        });
        match tokio::time::timeout(grace, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => self.events.event(pod, EventType::Warning, "FailedPreStopHook", &e.to_string()),
            Ok(Err(join)) => tracing::warn!(pod = %pod_full_name(pod), container = %name, "preStop hook task failed: {join}"),
            Err(_) => {
                tracing::info!(pod = %pod_full_name(pod), container = %name, "preStop hook did not complete within the grace period {grace:?}")
            }
        }
    }

    /// Stops every running container of the pod and its sandboxes, within one grace period.
    /// `pod` is `None` for orphans whose spec is gone. As upstream: every `preStop` hook starts at
    /// once; regular containers are stopped as soon as their hook is done; each sidecar is
    /// stopped only after the regular containers and the sidecars declared after it have stopped
    /// (or the grace period ran out).
    pub async fn kill_pod(&self, pod: Option<&Pod>, status: &PodStatus, grace_override: Option<i64>) -> Result<(), CriError> {
        let grace = grace_seconds(pod, grace_override, None);
        let running: Vec<&ContainerStatus> = status
            .containers
            .iter()
            .filter(|c| matches!(c.state, ContainerState::Running | ContainerState::Created | ContainerState::Unknown))
            .collect();
        let ip = pod_ip(status, &self.cfg.host_ip);
        let sidecars: Vec<String> = pod
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.init_containers.as_ref())
            .map(|v| v.iter().filter(|c| is_sidecar(c)).map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        // Position in the sidecar order, `None` for regular containers.
        let rank: Vec<Option<usize>> = running.iter().map(|c| sidecars.iter().position(|n| *n == c.name)).collect();
        let done: Vec<tokio::sync::watch::Sender<bool>> = running.iter().map(|_| tokio::sync::watch::channel(false).0).collect();
        let started = tokio::time::Instant::now();
        let stops = running.iter().enumerate().map(|(k, c)| {
            let (ip, rank, done) = (&ip, &rank, &done);
            async move {
                let running = c.state == ContainerState::Running;
                self.pre_stop(pod, &c.id, &c.name, running, &format!("Stopping container {}", c.name), grace, ip).await;
                if let Some(mine) = rank[k] {
                    let waits = rank.iter().enumerate().filter(|(m, r)| *m != k && r.is_none_or(|r| r > mine)).map(|(m, _)| {
                        let mut rx = done[m].subscribe();
                        async move {
                            let _ = rx.wait_for(|d| *d).await;
                        }
                    });
                    let _ = tokio::time::timeout(grace.saturating_sub(started.elapsed()), futures::future::join_all(waits)).await;
                }
                let result = self.runtime.stop_container(&c.id, grace_after_hook(grace, started.elapsed())).await;
                done[k].send_replace(true);
                result
            }
        });
        let results = futures::future::join_all(stops).await;
        for r in results {
            match r {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        for s in status.sandboxes.iter().filter(|s| s.state == SandboxState::Ready) {
            match self.runtime.stop_pod_sandbox(&s.id).await {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// What a pod that reached a terminal phase gives back before it is deleted (upstream
    /// `SyncTerminatedPod`): its volumes are torn down and its cgroup removed; the stopped
    /// containers (and their logs) stay for `kubectl logs`.
    pub fn clean_up_terminated(&self, pod: &Pod) {
        let uid = pod_uid(pod);
        if let Err(e) = self.volumes.tear_down_pod_volumes(uid) {
            tracing::warn!(pod = %pod_full_name(pod), "tearing down the volumes of the finished pod: {e}");
        }
        if let Some(cgroups) = &self.cgroups
            && let Err(e) = cgroups.remove_pod(uid)
        {
            tracing::debug!(pod = %pod_full_name(pod), "removing the finished pod's cgroup: {e}");
        }
        // A finished pod runs no more: its allocation goes too.
        self.allocation.remove_pod(uid);
    }

    /// Removes the cgroups of pods the kubelet no longer knows (`known` says which to keep), as
    /// upstream's `cleanupOrphanedPodCgroups`: e.g. of pods that went while the kubelet was
    /// down. A cgroup that still holds a process cannot go; it is tried again next time.
    pub fn remove_orphaned_pod_cgroups(&self, known: impl Fn(&str) -> bool) {
        let Some(cgroups) = &self.cgroups else { return };
        for uid in cgroups.pod_uids().iter().filter(|uid| !known(uid)) {
            match cgroups.remove_pod(uid) {
                Ok(()) => tracing::info!(uid = %uid, "removed the cgroup of an orphaned pod"),
                Err(e) => tracing::debug!(uid = %uid, "orphaned pod cgroup stays for now: {e}"),
            }
        }
    }

    /// Removes the directories of pods the kubelet no longer knows (`known` says which to
    /// keep), e.g. deleted while it was down: `<root>/pods/<uid>` once its volumes are
    /// unmounted (kept, and tried again next time, while anything under it stays mounted), and
    /// the pod's log directory (with the `/var/log/containers` links into it).
    pub fn remove_orphaned_pod_dirs(&self, known: &dyn Fn(&str) -> bool) {
        for uid in super::orphans::orphaned_pod_dirs(&self.cfg.root_dir, known) {
            if let Err(e) = self.volumes.unmount_pod_volumes(&uid) {
                tracing::warn!(uid = %uid, "orphaned pod directory stays for now: {e}");
                continue;
            }
            let dir = self.cfg.root_dir.join("pods").join(&uid);
            // mountinfo names resolved paths (the root dir may be a symlink).
            let resolved = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
            let mounted = super::orphans::mounts_under(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(), &resolved);
            if !mounted.is_empty() {
                tracing::warn!(uid = %uid, mounts = ?mounted, "orphaned pod directory stays: still mounted");
                continue;
            }
            match PodDirs::new(&self.cfg.root_dir, &uid).remove() {
                Ok(()) => tracing::info!(uid = %uid, dir = %dir.display(), "removed the directory of an orphaned pod"),
                Err(e) => tracing::warn!(uid = %uid, "orphaned pod directory stays for now: {e}"),
            }
        }
        let mut removed_logs = false;
        for dir in super::orphans::orphaned_log_dirs(&self.cfg.sandbox.pod_logs_dir, known) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "removed the log directory of an orphaned pod");
                    removed_logs = true;
                }
                Err(e) => tracing::warn!(dir = %dir.display(), "removing the log directory of an orphaned pod: {e}"),
            }
        }
        // Their links dangle now: remove them at once rather than at the next minute's sweep.
        if removed_logs {
            self.remove_dangling_container_log_links();
        }
    }

    /// Removes the `/var/log/containers` links whose pod's log directory is gone. Upstream's
    /// container GC does this once a minute; the sync loop calls it at that pace, since it
    /// reads every link on the node.
    pub fn remove_dangling_container_log_links(&self) {
        for link in super::orphans::dangling_container_log_links(&self.cfg.container_logs_dir) {
            let _ = std::fs::remove_file(link);
        }
    }

    /// Removes every sandbox and container of a killed pod, its logs and its directory.
    pub async fn remove_pod(&self, status: &PodStatus) -> Result<(), CriError> {
        for c in &status.containers {
            self.remove_container(&c.id).await?;
        }
        for s in &status.sandboxes {
            match self.runtime.remove_pod_sandbox(&s.id).await {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        if let Some(cgroups) = &self.cgroups
            && let Err(e) = cgroups.remove_pod(&status.uid)
        {
            tracing::warn!(pod = %status.uid, "removing the pod's cgroup: {e}");
        }
        match self.volumes.unmount_pod_volumes(&status.uid) {
            Ok(()) => {
                if let Err(e) = PodDirs::new(&self.cfg.root_dir, &status.uid).remove() {
                    tracing::warn!(pod = %status.uid, "removing pod directory: {e}");
                }
            }
            Err(e) => tracing::warn!(pod = %status.uid, "{e}; keeping the pod directory"),
        }
        let log_dir = self.cfg.sandbox.pod_logs_dir.join(format!("{}_{}_{}", status.namespace, status.name, status.uid));
        let _ = std::fs::remove_dir_all(log_dir);
        Ok(())
    }

    /// Points `/var/log/containers/<pod>_<ns>_<container>-<id>.log` at the container's log.
    fn link_container_log(&self, pod: &str, ns: &str, container: &str, id: &str, sandbox: &api::PodSandboxConfig, restart: i32) {
        let target = PathBuf::from(&sandbox.log_directory).join(format!("{container}/{restart}.log"));
        let link = legacy_log_symlink(&self.cfg.container_logs_dir, pod, ns, container, id);
        let _ = std::fs::create_dir_all(&self.cfg.container_logs_dir);
        if let Err(e) = std::os::unix::fs::symlink(&target, &link) {
            tracing::warn!("creating container log symlink {}: {e}", link.display());
        }
    }

    async fn remove_container(&self, id: &str) -> Result<(), CriError> {
        super::container_gc::remove_container_and_logs(self.runtime.as_ref(), &self.cfg.container_logs_dir, id).await.map(drop)
    }

    /// Keeps one dead instance per container (for `lastState` and logs) and removes older ones
    /// (upstream container GC policy `MaxPerPodContainer = 1`). Old stopped sandboxes are removed
    /// with the pod.
    async fn gc_dead_instances(&self, status: &PodStatus) {
        let mut dead_seen: HashMap<&str, usize> = HashMap::new();
        for c in status.containers.iter().filter(|c| c.state == ContainerState::Exited) {
            let n = dead_seen.entry(c.name.as_str()).or_default();
            *n += 1;
            if *n > 1
                && let Err(e) = self.remove_container(&c.id).await
            {
                tracing::warn!(container = %c.id, "removing dead container: {e}");
            }
        }
    }
}

/// The address hooks reach the pod at: its first IP, or the node's for host-network pods.
/// Puts the pod's user namespace into its sandbox's namespace options.
fn set_userns(config: &mut api::PodSandboxConfig, ns: api::UserNamespace) {
    if let Some(opts) = config.linux.as_mut().and_then(|l| l.security_context.as_mut()).and_then(|sc| sc.namespace_options.as_mut()) {
        opts.userns_options = Some(ns);
    }
}

fn pod_ip(status: &PodStatus, host_ip: &str) -> String {
    status.ips().first().cloned().unwrap_or_else(|| host_ip.to_owned())
}

/// The runtime's own message of a gRPC error (as upstream shows it); the whole error otherwise.
pub(crate) fn cri_message(e: &CriError) -> String {
    match e {
        CriError::Status { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Durations the way Go prints them in upstream messages (`10s`, `1m20s`, `5m0s`).
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 { format!("{s}s") } else { format!("{}m{}s", s / 60, s % 60) }
}

fn rand_instance() -> u32 {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    nanos.subsec_nanos() ^ (nanos.as_secs() as u32).rotate_left(16)
}
