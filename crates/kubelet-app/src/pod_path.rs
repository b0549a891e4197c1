//! The pod path's parts, built once at start: the runtime manager (CRI, volumes, images,
//! devices, pod cgroups, user namespaces), the prober, and the pod workers the sync loop
//! drives.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use kubelet::eviction::requests::EvictionRequests;
use kubelet::kuberuntime::RuntimeManager;
use kubelet::kuberuntime::env::EnvSources;
use kubelet::kuberuntime::labels::PodRef;
use kubelet::metrics::KubeletMetrics;
use kubelet::pod_startup_latency::PodStartupLatencyTracker;
use kubelet::pod_workers::{PodWorkerContext, PodWorkers};
use kubelet::server::MetricsSource;
use kubelet::status_manager::StatusManager;
use kubelet::sysctl::SysctlAllowlist;
use kubelet::volumemanager::VolumeManager;
use kubelet_cluster::KubeApi;
use kubelet_config::KubeletOptions;
use kubelet_deviceplugin::DeviceManager;
use kubelet_types::clock::SystemClock;
use kubelet_types::events::EventRecorder;
use kubelet_types::machine::MachineInfo;
use kubelet_types::volume_api::VolumeApi;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::runtime::{self, Runtime};
use crate::{AppError, PROC_ROOT, node_cgroups};

/// What the pod path is built from.
pub(crate) struct Parts<'a> {
    pub opts: &'a KubeletOptions,
    pub node_name: &'a str,
    pub host_ip: IpAddr,
    pub machine: &'a MachineInfo,
    /// The API client in cluster mode (volumes' objects and tokens, credential plugins' tokens).
    pub api: Option<&'a KubeApi>,
    pub runtime: &'a Runtime,
    pub events: Arc<dyn EventRecorder>,
    pub env: Arc<dyn EnvSources + Send>,
    pub devices: &'a DeviceManager,
    pub startup_tracker: Option<Arc<PodStartupLatencyTracker>>,
    pub metrics: &'a Arc<KubeletMetrics>,
    pub status: &'a StatusManager,
    /// The sysctls pods may set (checked at admission).
    pub sysctls: SysctlAllowlist,
    /// The `Sync` stage's token: the pod workers stop with it.
    pub stop: CancellationToken,
}

/// The pod path, ready for the sync loop.
pub(crate) struct PodPath {
    pub workers: PodWorkers,
    /// UIDs of pods whose worker finished terminating them.
    pub finished: mpsc::UnboundedReceiver<String>,
    /// Pods whose probe verdicts changed, or that the eviction manager wants evicted.
    pub probe_updates: mpsc::UnboundedReceiver<PodRef>,
    /// `/metrics/probes`.
    pub probe_metrics: Arc<dyn MetricsSource>,
    /// The evictions the eviction manager asks the pod workers to carry out.
    pub evictions: EvictionRequests,
}

/// Builds the runtime manager, the prober and the pod workers.
pub(crate) async fn build(p: Parts<'_>) -> Result<PodPath, AppError> {
    let cfg = &p.opts.config;
    // What the node status reports as allocatable: unset limits read as it in the downward API.
    let node_allocatable = kubelet_cluster::node_status::node_allocatable(
        &kubelet_cluster::node_status::NodeConfig::from_options(p.opts, p.node_name, p.host_ip),
        p.machine,
    );
    // QoS cgroups (kubepods, burstable, besteffort) before any pod; each pod gets its own below.
    let pod_cgroups = if cfg.cgroups_per_qos {
        Some(node_cgroups::qos_cgroups(cfg, p.machine, p.runtime.cgroup_driver, Path::new(PROC_ROOT))?)
    } else {
        None
    };
    let handlers = runtime::handler_features(p.runtime.service.as_ref()).await;
    let user_namespaces = runtime::user_namespaces(cfg, &p.opts.flags.root_dir)?;
    let manager_cfg =
        runtime::manager_config(p.opts, p.node_name, p.host_ip, node_allocatable.clone(), p.machine.memory_capacity, handlers);
    let credential_plugins = runtime::credential_plugins(p.opts, p.api, p.metrics)?;
    // Volumes: secrets, configMaps and tokens come from the API server in cluster mode.
    let volume_api = p.api.map(|api| Arc::new(api.clone()) as Arc<dyn VolumeApi>);
    let volumes = VolumeManager::new(
        &p.opts.flags.root_dir,
        volume_api,
        Arc::new(kubelet::volumemanager::mount::SystemMounter),
        Arc::new(SystemClock),
    )
    .with_node_allocatable(node_allocatable);
    let mut manager = RuntimeManager::new(
        p.runtime.service.clone(),
        p.runtime.images.clone(),
        p.events.clone(),
        p.env,
        manager_cfg,
        Arc::new(SystemClock),
    )
    .with_volume_manager(volumes)
    .with_user_namespaces(user_namespaces)
    .with_devices(Arc::new(p.devices.clone()))
    .with_pull_limits(kubelet::kuberuntime::images::PullLimits::from_config(cfg), credential_plugins);
    if let Some(records) = &p.runtime.pull_records {
        manager = manager.with_pull_records(records.clone());
    }
    if let Some(tracker) = p.startup_tracker {
        manager = manager.with_startup_tracker(tracker);
    }
    if let Some(cgroups) = pod_cgroups {
        manager = manager.with_pod_cgroups(cgroups);
    }
    let (probe_tx, probe_updates) = mpsc::unbounded_channel();
    // Evictions reach the pod workers through the same poke channel as probe results.
    let evictions = EvictionRequests::new(probe_tx.clone());
    let prober = Arc::new(kubelet::prober::ProbeManager::new(
        p.runtime.service.clone(),
        p.status.clone(),
        p.events,
        Arc::new(SystemClock),
        probe_tx,
    ));
    let ctx = Arc::new(PodWorkerContext {
        manager: Arc::new(manager),
        status: p.status.clone(),
        prober: prober.clone(),
        sync_frequency: cfg.sync_frequency,
        runtime_name: p.runtime.name.clone(),
        host_ip: p.host_ip.to_string(),
        admission: kubelet::admission::PodAdmitter { sysctls: p.sysctls, apparmor: kubelet::apparmor::host_enabled(Path::new("/sys")) },
        metrics: p.metrics.clone(),
        evictions: evictions.clone(),
    });
    let (workers, finished) = PodWorkers::new(ctx, p.stop);
    Ok(PodPath { workers, finished, probe_updates, probe_metrics: prober, evictions })
}
