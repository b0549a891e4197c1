//! Assembles a running kubelet from its options (upstream `cmd/kubelet/app`): connects the
//! runtime, starts the pod sources, the PLEG, the pod workers, the sync loop and the HTTP
//! endpoints, and runs them until shutdown.
//!
//! The only crate that sees both the kubelet's core (`kubelet`) and cluster mode
//! (`kubelet-cluster`): it hands the cluster parts to the core through the traits of
//! `kubelet-types`, which the cluster types implement. The binary only parses options, sets up
//! logging and turns signals into the shutdown token.

mod certificates;
mod node_cgroups;
mod runtime;
mod servers;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kubelet_config::KubeletOptions;
use kubelet_cri::{ImageService, RuntimeService};
use kubelet_deviceplugin::{DeviceManager, DeviceManagerConfig};
use kubelet_podconfig::{DesiredPods, PodConfig, PodSource, StaticPodSource, UrlPodSource};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use kubelet::eviction::EvictionManager;
use kubelet::eviction::observe::SignalPaths;
use kubelet::kuberuntime::RuntimeManager;
use kubelet::kuberuntime::env::NoEnvSources;
use kubelet::node_info;
use kubelet::pleg::{Pleg, RELIST_PERIOD, Relist};
use kubelet::pod_workers::{PodWorkerContext, PodWorkers};
use kubelet::server::{self, HealthChecker};
use kubelet::status_manager::StatusManager;
use kubelet::supervisor::{Stage, Supervisor, TaskFailure};
use kubelet::sync_loop::{SyncLoop, SyncLoopHeartbeat};
use kubelet_types::clock::SystemClock;
use kubelet_types::events::LogEventRecorder;

/// Where the legacy per-container log links go, as upstream's fixed `/var/log/containers`.
const CONTAINER_LOGS_DIR: &str = "/var/log/containers";

/// Why the kubelet could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("container runtime {endpoint}: {source}")]
    Runtime { endpoint: String, source: kubelet_cri::CriError },
    #[error("container runtime {endpoint} is not ready: {reason}")]
    RuntimeNotReady { endpoint: String, reason: String },
    #[error(transparent)]
    CgroupDriver(#[from] kubelet::cm::driver::DriverError),
    #[error("{what} on {addr}: {source}")]
    Serve { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("invalid {field} {value:?}")]
    Address { field: &'static str, value: String },
    #[error("{0}")]
    ApiClient(#[from] kubelet_cluster::ClientError),
    #[error("allowedUnsafeSysctls: {0}")]
    Sysctls(#[from] kubelet::sysctl::SysctlError),
    #[error("configuring root directory {}: {source}", path.display())]
    RootDir { path: PathBuf, source: std::io::Error },
    #[error("cgroupsPerQOS: {0}")]
    Cgroups(#[from] kubelet::cm::CgroupError),
    #[error("{0}")]
    Certificate(#[from] certificates::CertificateError),
    #[error("{0}")]
    CertificateExpired(kubelet_cluster::certificate::rotation::ExpiredError),
    #[error("{0}")]
    CredentialPlugins(#[from] kubelet::kuberuntime::credential_plugins::PluginError),
    #[error("user namespaces: {0}")]
    UserNamespaces(String),
    #[error("kubelet task {task:?} panicked: {message}")]
    TaskPanicked { task: &'static str, message: String },
}

/// Which pods may hold devices (upstream `activePods`): the desired pods that have not finished,
/// once every source delivered its first set.
struct DesiredPodUids(watch::Receiver<DesiredPods>);

impl kubelet_deviceplugin::ActivePods for DesiredPodUids {
    fn active_pod_uids(&self) -> Option<std::collections::BTreeSet<String>> {
        let desired = self.0.borrow();
        let finished = |p: &k8s_openapi::api::core::v1::Pod| {
            kubelet::status::is_terminal_phase(p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default())
        };
        desired.sources_ready.then(|| desired.pods.iter().filter(|(_, p)| !finished(p)).map(|(uid, _)| uid.clone()).collect())
    }
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

/// Runs a kubelet until `shutdown` is cancelled or one of its tasks fails (the error names it).
/// Pods keep running after it returns.
pub async fn run(opts: KubeletOptions, shutdown: CancellationToken) -> Result<(), AppError> {
    let cfg = &opts.config;
    let kubelet_start = std::time::SystemTime::now();
    let proc_root = Path::new(PROC_ROOT);
    // Safe sysctls depend on the kernel; allowedUnsafeSysctls are checked before anything starts.
    let kernel_release = std::fs::read_to_string(proc_root.join("sys/kernel/osrelease")).ok();
    let sysctls = kubelet::sysctl::SysctlAllowlist::for_node(kernel_release.as_deref(), &cfg.allowed_unsafe_sysctls)?;
    // As upstream: volumes with mount propagation need the root directory on a shared mount.
    let root_error = |source| AppError::RootDir { path: opts.flags.root_dir.clone(), source };
    std::fs::create_dir_all(&opts.flags.root_dir).map_err(root_error)?;
    if kubelet::shared_root::make_rshared(&opts.flags.root_dir).map_err(root_error)? {
        tracing::info!(root = %opts.flags.root_dir.display(), "bind-mounted the root directory with shared mount propagation");
    }
    let node_name = node_info::node_name(&opts.flags.hostname_override, proc_root);
    let host_ip = node_info::node_ip(&opts.flags.node_ip, &interfaces(), node_info::default_route_interface(proc_root).as_deref());
    // Made first: the API client reports its requests to it from the first one (bootstrap's).
    let kubelet_metrics = Arc::new(kubelet::metrics::KubeletMetrics::new());
    kubelet_cluster::rest_metrics::set_observer(kubelet_metrics.clone());
    certificates::bootstrap_if_needed(&opts, &node_name).await?;
    let mut cluster = kubelet_cluster::Cluster::connect(&opts, &node_name).await?;
    // Secrets and ConfigMaps: watched one by one (the default), or a GET at every read (`Get`;
    // `Cache`, upstream's TTL cache, reads as `Get` here).
    if let Some(c) = cluster.as_mut()
        && cfg.config_map_and_secret_change_detection_strategy == "Watch"
    {
        c.api = c.api.with_object_watches();
    }
    // The pod startup latency SLI: only API pods are tracked, so only cluster mode has one.
    let startup_tracker = cluster.as_mut().map(|c| {
        let tracker = Arc::new(kubelet::pod_startup_latency::PodStartupLatencyTracker::new(Arc::new(SystemClock), kubelet_metrics.clone()));
        c.startup = Some(tracker.clone());
        tracker
    });
    let mode = if cluster.is_some() { "cluster" } else { "standalone" };
    tracing::info!(node = %node_name, ip = %host_ip, "starting kubelet in {mode} mode");

    let (runtime, runtime_name) = runtime::connect_runtime(&cfg.container_runtime_endpoint, cfg.runtime_request_timeout).await?;
    let cgroup_driver = runtime::cgroup_driver(cfg, &runtime).await?;
    let runtime = Arc::new(runtime);
    let images: Arc<dyn ImageService> =
        if cfg.image_service_endpoint.is_empty() || cfg.image_service_endpoint == cfg.container_runtime_endpoint {
            runtime.clone()
        } else {
            Arc::new(runtime::connect_runtime(&cfg.image_service_endpoint, cfg.runtime_request_timeout).await?.0)
        };
    // Every CRI call from here on is counted and timed for /metrics.
    let runtime = Arc::new(kubelet::metrics::instrumented::InstrumentedRuntime::new(runtime, images, kubelet_metrics.clone()));
    let images: Arc<dyn ImageService> = runtime.clone();
    // Which credentials pulled each image (KubeletEnsureSecretPulledImages, on by default):
    // pulls a restart interrupted are settled against the images now present.
    let pull_records =
        kubelet_config::features::FeatureGates::new(&cfg.feature_gates).enabled("KubeletEnsureSecretPulledImages").then(|| {
            let policy = kubelet::kuberuntime::pull_records::VerificationPolicy::from_config(
                &cfg.image_pull_credentials_verification_policy,
                &cfg.preloaded_images_verification_allowlist,
            );
            Arc::new(
                kubelet::kuberuntime::pull_records::PullRecords::new(&opts.flags.root_dir, policy).with_metrics(kubelet_metrics.clone()),
            )
        });
    if let Some(records) = &pull_records {
        match images.list_images(None).await {
            Ok(list) => records.reconcile_intents(&list),
            Err(e) => tracing::warn!("listing images to settle interrupted pulls: {e}"),
        }
    }

    // Every long-lived task is owned here; see `supervisor` for failures and shutdown order.
    let mut tasks = Supervisor::new(shutdown.clone());
    let (serve_stop, sync_stop, report_stop) = (tasks.token(Stage::Serve), tasks.token(Stage::Sync), tasks.token(Stage::Report));

    // Pod sources → merged desired state.
    let (updates_tx, updates_rx) = mpsc::channel(16);
    let mut sources = Vec::new();
    if !cfg.static_pod_path.is_empty() {
        sources.push(PodSource::File);
        let src = StaticPodSource::new(PathBuf::from(&cfg.static_pod_path), node_name.clone(), cfg.file_check_frequency);
        tasks.spawn(Stage::Sync, "static pod source (file)", src.run(updates_tx.clone(), sync_stop.clone()));
    }
    if !cfg.static_pod_url.is_empty() {
        sources.push(PodSource::Http);
        let src =
            UrlPodSource::new(cfg.static_pod_url.clone(), cfg.static_pod_url_header.clone(), node_name.clone(), cfg.http_check_frequency);
        tasks.spawn(Stage::Sync, "static pod source (URL)", src.run(updates_tx.clone(), sync_stop.clone()));
    }
    if let Some(cluster) = cluster.as_mut() {
        sources.push(PodSource::Api);
        if let Some(t) = cluster.pod_source(updates_tx.clone(), sync_stop.clone()) {
            tasks.spawn(Stage::Sync, t.name, t.future);
        }
    }
    drop(updates_tx);
    let (pod_config, desired) = PodConfig::new(&sources);
    tasks.spawn(Stage::Sync, "pod config", pod_config.run(updates_rx));

    // Device plugins register on upstream's fixed socket, in both modes. Without the socket the
    // kubelet runs on (no plugin can register); allocations from the checkpoint still hold.
    let devices = DeviceManager::new(DeviceManagerConfig::default(), Arc::new(DesiredPodUids(desired.clone())));
    let device_server = devices.start(serve_stop.clone()).inspect_err(|e| tracing::error!("device plugins cannot register: {e}")).ok();

    // Runtime manager and workers.
    // What the node status reports as allocatable: unset limits read as it in the downward API.
    let machine = kubelet_types::machine::read_machine_info(&kubelet_types::machine::HostPaths::host(&opts.flags.root_dir));
    let node_allocatable = kubelet_cluster::node_status::node_allocatable(
        &kubelet_cluster::node_status::NodeConfig::from_options(&opts, &node_name, host_ip),
        &machine,
    );
    // QoS cgroups (kubepods, burstable, besteffort) before any pod; each pod gets its own below.
    let pod_cgroups = if cfg.cgroups_per_qos { Some(node_cgroups::qos_cgroups(cfg, &machine, cgroup_driver, proc_root)?) } else { None };
    let (rro_handlers, userns_handlers) = runtime::handler_features(runtime.as_ref()).await;
    let user_namespaces = runtime::user_namespaces(cfg, &opts.flags.root_dir)?;
    let manager_cfg = runtime::manager_config(&opts, &node_name, host_ip, node_allocatable.clone(), (rro_handlers, userns_handlers));
    let runtime_dyn: Arc<dyn RuntimeService> = runtime.clone();
    let credential_plugins = match &opts.flags.image_credential_provider_config {
        Some(config) => {
            let sa_tokens =
                kubelet_config::features::FeatureGates::new(&cfg.feature_gates).enabled("KubeletServiceAccountTokenForCredentialProviders");
            let plugins = kubelet::kuberuntime::credential_plugins::CredentialPlugins::load(
                config,
                opts.flags.image_credential_provider_bin_dir.as_deref(),
                sa_tokens,
            )?
            .with_metrics(kubelet_metrics.clone());
            Some(Arc::new(match cluster.as_ref() {
                Some(c) => plugins.with_tokens(Arc::new(kubelet::kuberuntime::sa_tokens::ApiServiceAccountTokens {
                    api: Arc::new(c.api.clone()),
                    tokens: Default::default(),
                })),
                None => plugins,
            }))
        }
        None => None,
    };
    let images_for_node = images.clone();
    let images_for_stats = images.clone();
    let images_for_gc = images.clone();
    let (events, env): (Arc<dyn kubelet_types::events::EventRecorder>, Arc<dyn kubelet::kuberuntime::env::EnvSources + Send>) =
        match cluster.as_ref() {
            Some(c) => {
                let (sink, sender) = c.events(&opts, report_stop.clone());
                tasks.spawn(Stage::Report, sender.name, sender.future);
                let env = c.env_source();
                tasks.spawn(Stage::Sync, "service list warm-up", env.clone().warm_up(sync_stop.clone()));
                (Arc::new(kubelet_cluster::events::ClusterEventRecorder { sink, node: node_name.clone() }), Arc::new(env))
            }
            None => (Arc::new(LogEventRecorder), Arc::new(NoEnvSources)),
        };
    // Volumes: secrets, configMaps and tokens come from the API server in cluster mode.
    let volume_api = cluster.as_ref().map(|c| Arc::new(c.api.clone()) as Arc<dyn kubelet_types::volume_api::VolumeApi>);
    let volumes = kubelet::volumemanager::VolumeManager::new(
        &opts.flags.root_dir,
        volume_api,
        Arc::new(kubelet::volumemanager::mount::SystemMounter),
        Arc::new(SystemClock),
    )
    .with_node_allocatable(node_allocatable);
    let mut manager = RuntimeManager::new(runtime_dyn.clone(), images, events.clone(), env, manager_cfg, Arc::new(SystemClock))
        .with_volume_manager(volumes)
        .with_user_namespaces(user_namespaces)
        .with_devices(Arc::new(devices.clone()))
        .with_pull_limits(kubelet::kuberuntime::images::PullLimits::from_config(cfg), credential_plugins);
    if let Some(records) = &pull_records {
        manager = manager.with_pull_records(records.clone());
    }
    if let Some(tracker) = startup_tracker {
        manager = manager.with_startup_tracker(tracker);
    }
    if let Some(cgroups) = pod_cgroups {
        manager = manager.with_pod_cgroups(cgroups);
    }
    let manager = Arc::new(manager);
    let status = StatusManager::default();
    let (probe_tx, probe_rx) = mpsc::unbounded_channel();
    // Evictions reach the pod workers through the same poke channel as probe results.
    let evictions = kubelet::eviction::requests::EvictionRequests::new(probe_tx.clone());
    let prober =
        Arc::new(kubelet::prober::ProbeManager::new(runtime_dyn.clone(), status.clone(), events.clone(), Arc::new(SystemClock), probe_tx));
    let probe_metrics: Arc<dyn server::MetricsSource> = prober.clone();
    let ctx = Arc::new(PodWorkerContext {
        manager,
        status: status.clone(),
        prober,
        sync_frequency: cfg.sync_frequency,
        runtime_name,
        host_ip: host_ip.to_string(),
        admission: kubelet::admission::PodAdmitter { sysctls, apparmor: kubelet::apparmor::host_enabled(Path::new("/sys")) },
        metrics: kubelet_metrics.clone(),
        evictions: evictions.clone(),
    });
    let (workers, finished) = PodWorkers::new(ctx, sync_stop.clone());
    let (pleg_tx, pleg_rx) = mpsc::channel(256);
    let (relist_tx, relist_rx) = watch::channel(Relist::default());
    let (pressure_tx, pressure_rx) = watch::channel(kubelet_types::node::Pressure::default());
    let root_dir = opts.flags.root_dir.clone();
    let memory_cgroup = kubelet::eviction::memory_watch::v1_root_memory_cgroup(Path::new("/sys/fs/cgroup"));
    let signal_paths = SignalPaths { proc_root: proc_root.into(), node_fs: root_dir.clone(), image_fs: root_dir, memory_cgroup };
    // The stats collector's snapshots (it starts below) feed eviction too.
    let stats_store = kubelet::stats::StatsStore::default();
    // Image garbage collection: on its own period, and for eviction's disk reclaim.
    let image_gc = kubelet::image_gc::ImageGcManager::new(
        runtime_dyn.clone(),
        images_for_gc.clone(),
        Arc::new(kubelet::image_gc::RuntimeImageFs(images_for_gc)),
        events.clone(),
        Arc::new(SystemClock),
        kubelet::image_gc::records::ImageGcPolicy {
            high_threshold_percent: cfg.image_gc_high_threshold_percent,
            low_threshold_percent: cfg.image_gc_low_threshold_percent,
            min_age: cfg.image_minimum_gc_age,
            max_age: cfg.image_maximum_gc_age,
        },
    );
    let image_gc = image_gc.with_metrics(kubelet_metrics.clone());
    let image_gc = Arc::new(match &pull_records {
        Some(records) => image_gc.with_pull_records(records.clone()),
        None => image_gc,
    });
    let log_manager = kubelet::logs::ContainerLogManager::new(runtime_dyn.clone(), kubelet::logs::LogRotationPolicy::from_config(cfg));
    tasks.spawn(Stage::Sync, "container log manager", log_manager.run(sync_stop.clone()));
    tasks.spawn(Stage::Sync, "image garbage collector", image_gc.clone().run(kubelet::image_gc::IMAGE_GC_PERIOD, sync_stop.clone()));
    let eviction_manager = EvictionManager::from_config(cfg, signal_paths)
        .with_pods(kubelet::eviction::PodEvictions {
            pods: Arc::new(status.clone()),
            stats: Arc::new(stats_store.clone()),
            requests: evictions.clone(),
        })
        .with_reclaim(Arc::new(kubelet::image_gc::DiskReclaim {
            gc: image_gc,
            containers: Some(kubelet::kuberuntime::container_gc::ContainerReclaim {
                runtime: runtime_dyn.clone(),
                container_logs_dir: PathBuf::from(CONTAINER_LOGS_DIR),
                pods: Arc::new(status.clone()),
            }),
            node_fs: opts.flags.root_dir.clone(),
        }));
    tasks.spawn(Stage::Sync, "eviction manager", eviction_manager.run(pressure_tx, sync_stop.clone()));
    if let Some(cluster) = cluster.as_mut() {
        let health = Arc::new(kubelet::health::NodeHealth { pressure: pressure_rx, relist: relist_rx.clone() });
        let node_devices = Arc::new(devices.clone());
        let node = cluster.node_tasks(
            &opts,
            host_ip,
            runtime_dyn.clone(),
            images_for_node.clone(),
            health,
            Some(node_devices),
            report_stop.clone(),
        );
        let pod_sync = cluster.pod_sync_tasks(Arc::new(status.clone()), desired.clone(), report_stop.clone());
        for t in node.into_iter().chain(pod_sync) {
            tasks.spawn(Stage::Report, t.name, t.future);
        }
    }

    tasks.spawn(
        Stage::Sync,
        "PLEG",
        Pleg::new(runtime_dyn.clone(), RELIST_PERIOD).with_metrics(kubelet_metrics.clone()).run(pleg_tx, relist_tx, sync_stop.clone()),
    );
    let trimmer = kubelet::memory::MemoryTrimmer::default().run(sync_stop.clone());
    tasks.spawn(Stage::Sync, "memory trimmer", async move {
        trimmer.await;
    });

    let heartbeat = SyncLoopHeartbeat::default();
    let health: Arc<dyn HealthChecker> =
        Arc::new(kubelet::health::KubeletHealth { heartbeat: heartbeat.clone(), relist: relist_rx.clone() });
    let sync_loop = SyncLoop {
        workers,
        finished,
        desired,
        pleg_events: pleg_rx,
        probe_updates: probe_rx,
        relist: relist_rx,
        heartbeat,
        deleting: Default::default(),
    };
    if let Some(serve) = device_server {
        tasks.spawn(Stage::Serve, "device plugin registration", serve);
    }
    tasks.spawn(Stage::Sync, "sync loop", sync_loop.run(sync_stop.clone()));

    // Stats: sampled on the housekeeping interval, served from the latest snapshot.
    let collector = kubelet::stats::StatsCollector::new(
        stats_config(&opts, &node_name, cgroup_driver, &machine, kubelet_start),
        kubelet::stats::cgroup::CgroupReader::new(kubelet::cm::cgroupfs::Cgroupfs::detect(Path::new("/sys/fs/cgroup"))),
        Arc::new(status.clone()),
        runtime_dyn.clone(),
        images_for_stats,
        stats_store.clone(),
    );
    tasks.spawn(Stage::Report, "stats collector", collector.run(report_stop.clone()));
    let stats_source: Arc<dyn kubelet::stats::StatsSource> = Arc::new(stats_store);
    let secure_reviewer = cluster
        .as_ref()
        .map(|c| Arc::new(kubelet_cluster::auth_review::ApiReviewer::new(&c.api)) as Arc<dyn kubelet_types::review::Reviewer>);
    servers::spawn(
        &mut tasks,
        servers::ServerParts {
            opts: &opts,
            node_name: &node_name,
            host_ip,
            api: cluster.as_ref().map(|c| &c.api),
            reviewer: secure_reviewer,
            health,
            status: status.clone(),
            runtime: runtime.clone(),
            kubelet_metrics: kubelet_metrics.clone(),
            probe_metrics,
            stats: stats_source,
        },
    )?;
    // The first task to fail stops the kubelet; otherwise run until shutdown.
    tasks.run(SHUTDOWN_STAGE_DEADLINE).await.map_err(|f| match f {
        TaskFailure::Failed { error, .. } => error,
        TaskFailure::Panicked { task, message } => AppError::TaskPanicked { task, message },
    })
}
