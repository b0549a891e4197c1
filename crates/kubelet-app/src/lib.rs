//! Assembles a running kubelet from its options (upstream `cmd/kubelet/app`): connects the
//! runtime, starts the pod sources, the PLEG, the pod workers, the sync loop and the HTTP
//! endpoints, and runs them until shutdown. [`run`] reads as the order of start-up; each
//! phase lives in its module (`cluster_mode`, `runtime`, `sources`, `pod_path`,
//! `housekeeping`, `servers`).
//!
//! The only crate that sees both the kubelet's core (`kubelet`) and cluster mode
//! (`kubelet-cluster`): it hands the cluster parts to the core through the traits of
//! `kubelet-types`, which the cluster types implement. The binary only parses options, sets up
//! logging and turns signals into the shutdown token.

mod certificates;
mod cluster_mode;
mod error;
mod housekeeping;
mod node_cgroups;
mod pod_path;
mod runtime;
mod servers;
mod sources;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubelet::metrics::KubeletMetrics;
use kubelet::node_info;
use kubelet::server::HealthChecker;
use kubelet::status_manager::StatusManager;
use kubelet::supervisor::{Stage, Supervisor, TaskFailure};
use kubelet::sync_loop::{SyncLoop, SyncLoopHeartbeat};
use kubelet_config::KubeletOptions;
use kubelet_deviceplugin::{DeviceManager, DeviceManagerConfig};
use kubelet_types::machine::{HostPaths, read_machine_info};
use tokio_util::sync::CancellationToken;

pub use error::AppError;

/// Where the legacy per-container log links go, as upstream's fixed `/var/log/containers`.
const CONTAINER_LOGS_DIR: &str = "/var/log/containers";

/// The cancellation tokens of the supervisor's stages, in shutdown order: the servers stop
/// first, then the sync (pod sources, workers, housekeeping), then the reporting to the API.
pub(crate) struct Stops {
    /// Stage `Serve`.
    pub serve: CancellationToken,
    /// Stage `Sync`.
    pub sync: CancellationToken,
    /// Stage `Report`.
    pub report: CancellationToken,
}

fn interfaces() -> Vec<(String, IpAddr)> {
    if_addrs::get_if_addrs().unwrap_or_default().into_iter().map(|i| (i.name.clone(), i.ip())).collect()
}

/// The host's `/proc`.
const PROC_ROOT: &str = "/proc";
/// How long each shutdown stage may take before its tasks are aborted.
const SHUTDOWN_STAGE_DEADLINE: Duration = Duration::from_secs(5);
/// How often the stats collector samples (cAdvisor's housekeeping interval as the kubelet
/// sets it).
const STATS_HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);

/// The stats collector's settings: what it samples, where, and how often.
fn stats_config(
    opts: &KubeletOptions,
    node_name: &str,
    cgroup_driver: kubelet::cm::pod_cgroups::CgroupDriver,
    machine: &kubelet_types::machine::MachineInfo,
    kubelet_start: std::time::SystemTime,
) -> kubelet::stats::StatsConfig {
    kubelet::stats::StatsConfig {
        node_name: node_name.to_string(),
        cgroup_root: opts.config.cgroup_root.clone(),
        cgroup_driver,
        root_dir: opts.flags.root_dir.clone(),
        pod_logs_dir: PathBuf::from(&opts.config.pod_logs_dir),
        proc_root: PathBuf::from(PROC_ROOT),
        kubelet_cgroup: opts.config.kubelet_cgroups.clone(),
        runtime_cgroup: opts.flags.runtime_cgroups.clone(),
        system_cgroup: opts.config.system_cgroups.clone(),
        memory_capacity: u64::try_from(machine.memory_capacity).unwrap_or(0),
        interval: STATS_HOUSEKEEPING_INTERVAL,
        du_period: opts.config.volume_stats_agg_period,
        kubelet_start,
        machine: kubelet::stats::MachineLabels {
            machine_id: machine.machine_id.clone(),
            system_uuid: machine.system_uuid.clone(),
            boot_id: machine.boot_id.clone(),
            kernel_version: machine.kernel_version.clone(),
            os_image: machine.os_image.clone(),
            swap_total: kubelet::stats::host::swap_total(Path::new(PROC_ROOT)),
        },
    }
}

/// Runs the kubelet until `shutdown` or until one of its tasks fails.
pub async fn run(opts: KubeletOptions, shutdown: CancellationToken) -> Result<(), AppError> {
    let cfg = &opts.config;
    let kubelet_start = SystemTime::now();
    let proc_root = Path::new(PROC_ROOT);
    // Safe sysctls depend on the kernel; allowedUnsafeSysctls are checked before anything starts.
    let kernel_release = std::fs::read_to_string(proc_root.join("sys/kernel/osrelease")).ok();
    let sysctls = kubelet::sysctl::SysctlAllowlist::for_node(kernel_release.as_deref(), &cfg.allowed_unsafe_sysctls)?;
    kubelet::cm::swap::check_swap(cfg.fail_swap_on, proc_root)?;
    prepare_root_dir(&opts.flags.root_dir)?;
    let node_name = node_info::node_name(&opts.flags.hostname_override, proc_root);
    let host_ip = node_info::node_ip(&opts.flags.node_ip, &interfaces(), node_info::default_route_interface(proc_root).as_deref());
    // Made first: the API client reports its requests to it from the first one (bootstrap's).
    let metrics = Arc::new(KubeletMetrics::new());
    kubelet_cluster::rest_metrics::set_observer(metrics.clone());
    let (mut cluster, startup_tracker) = cluster_mode::connect(&opts, &node_name, &metrics).await?;
    let mode = if cluster.is_some() { "cluster" } else { "standalone" };
    tracing::info!(node = %node_name, ip = %host_ip, "starting kubelet in {mode} mode");
    let runtime = runtime::Runtime::connect(&opts, &metrics).await?;

    // Every long-lived task is owned here; see `supervisor` for failures and shutdown order.
    let mut tasks = Supervisor::new(shutdown.clone());
    let stops = Stops { serve: tasks.token(Stage::Serve), sync: tasks.token(Stage::Sync), report: tasks.token(Stage::Report) };
    let desired = sources::start(&mut tasks, cfg, &node_name, cluster.as_mut(), &stops.sync);
    // Device plugins register on upstream's fixed socket, in both modes. Without the socket the
    // kubelet runs on (no plugin can register); allocations from the checkpoint still hold.
    let devices = DeviceManager::new(DeviceManagerConfig::default(), Arc::new(sources::DesiredPodUids(desired.clone())));
    if let Ok(serve) = devices.start(stops.serve.clone()).inspect_err(|e| tracing::error!("device plugins cannot register: {e}")) {
        tasks.spawn(Stage::Serve, "device plugin registration", serve);
    }
    let machine = read_machine_info(&HostPaths::host(&opts.flags.root_dir));
    let (events, env) = cluster_mode::events_and_env(cluster.as_ref(), &opts, &node_name, &mut tasks, &stops);
    let status = StatusManager::default();
    let pods = pod_path::build(pod_path::Parts {
        opts: &opts,
        node_name: &node_name,
        host_ip,
        machine: &machine,
        api: cluster.as_ref().map(|c| &c.api),
        runtime: &runtime,
        events: events.clone(),
        env,
        devices: &devices,
        startup_tracker,
        metrics: &metrics,
        status: &status,
        sysctls,
        stop: stops.sync.clone(),
    })
    .await?;
    let stats = stats_config(&opts, &node_name, runtime.cgroup_driver, &machine, kubelet_start);
    let housekeeping = housekeeping::start(
        housekeeping::Parts {
            opts: &opts,
            runtime: &runtime,
            events,
            status: &status,
            metrics: &metrics,
            evictions: pods.evictions,
            stats,
        },
        &mut tasks,
        &stops,
    );
    if let Some(cluster) = cluster.as_mut() {
        let reporting = cluster_mode::Reporting {
            health: Arc::new(kubelet::health::NodeHealth { pressure: housekeeping.pressure, relist: housekeeping.relist.clone() }),
            runtime: runtime.service.clone(),
            images: runtime.images.clone(),
            devices: Arc::new(devices),
            status: status.clone(),
            desired: desired.clone(),
        };
        cluster_mode::spawn_reporting(cluster, &opts, host_ip, reporting, &mut tasks, &stops);
    }

    let heartbeat = SyncLoopHeartbeat::default();
    let health: Arc<dyn HealthChecker> =
        Arc::new(kubelet::health::KubeletHealth { heartbeat: heartbeat.clone(), relist: housekeeping.relist.clone() });
    let sync_loop = SyncLoop {
        workers: pods.workers,
        finished: pods.finished,
        desired,
        pleg_events: housekeeping.pleg_events,
        probe_updates: pods.probe_updates,
        relist: housekeeping.relist,
        heartbeat,
        deleting: Default::default(),
    };
    tasks.spawn(Stage::Sync, "sync loop", sync_loop.run(stops.sync.clone()));
    let reviewer = cluster
        .as_ref()
        .map(|c| Arc::new(kubelet_cluster::auth_review::ApiReviewer::new(&c.api)) as Arc<dyn kubelet_types::review::Reviewer>);
    let parts = servers::ServerParts {
        opts: &opts,
        node_name: &node_name,
        host_ip,
        api: cluster.as_ref().map(|c| &c.api),
        reviewer,
        health,
        status,
        runtime: runtime.service.clone(),
        certificates: metrics.clone(),
        kubelet_metrics: metrics,
        probe_metrics: pods.probe_metrics,
        stats: Arc::new(housekeeping.stats),
    };
    servers::spawn(&mut tasks, parts)?;
    // The first task to fail stops the kubelet; otherwise run until shutdown.
    tasks.run(SHUTDOWN_STAGE_DEADLINE).await.map_err(|f| match f {
        TaskFailure::Failed { error, .. } => error,
        TaskFailure::Panicked { task, message } => AppError::TaskPanicked { task, message },
    })
}

/// Creates the root directory (`--root-dir`) and, as upstream, makes it a shared mount: volumes
/// with mount propagation need it.
fn prepare_root_dir(root_dir: &Path) -> Result<(), AppError> {
    let root_error = |source| AppError::RootDir { path: root_dir.to_path_buf(), source };
    std::fs::create_dir_all(root_dir).map_err(root_error)?;
    if kubelet::shared_root::make_rshared(root_dir).map_err(root_error)? {
        tracing::info!(root = %root_dir.display(), "bind-mounted the root directory with shared mount propagation");
    }
    Ok(())
}
