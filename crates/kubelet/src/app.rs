//! Assembles a running kubelet from its options (upstream `cmd/kubelet/app`): connects the
//! runtime, starts the pod sources, the PLEG, the pod workers, the sync loop and the HTTP
//! endpoints, and runs them until shutdown.
//!
//! The binary only parses options, sets up logging and turns signals into the shutdown token.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kubelet_config::KubeletOptions;
use kubelet_cri::{ImageService, RemoteRuntime, RuntimeService};
use kubelet_deviceplugin::{DeviceManager, DeviceManagerConfig};
use kubelet_podconfig::{DesiredPods, PodConfig, PodSource, StaticPodSource, UrlPodSource};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::clock::SystemClock;
use crate::eviction::EvictionManager;
use crate::eviction::observe::SignalPaths;
use crate::events::LogEventRecorder;
use crate::kuberuntime::dns::{ClusterDns, parse_resolv_conf};
use crate::kuberuntime::env::NoEnvSources;
use crate::kuberuntime::sandbox::SandboxContext;
use crate::kuberuntime::{RuntimeManager, RuntimeManagerConfig};
use crate::node_info;
use crate::pleg::{Pleg, RELIST_PERIOD, Relist};
use crate::pod_workers::{PodWorkerContext, PodWorkers};
use crate::server::{self, HealthChecker};
use crate::status_manager::StatusManager;
use crate::supervisor::{Stage, Supervisor, TaskFailure};
use crate::sync_loop::{SyncLoop, SyncLoopHeartbeat};

/// Where the legacy per-container log links go, as upstream's fixed `/var/log/containers`.
const CONTAINER_LOGS_DIR: &str = "/var/log/containers";

/// How long start-up waits for the container runtime to answer.
const RUNTIME_WAIT: Duration = Duration::from_secs(30);

/// Why the kubelet could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("container runtime {endpoint}: {source}")]
    Runtime { endpoint: String, source: kubelet_cri::CriError },
    #[error("container runtime {endpoint} is not ready: {reason}")]
    RuntimeNotReady { endpoint: String, reason: String },
    #[error(transparent)]
    CgroupDriver(#[from] crate::cm::driver::DriverError),
    #[error("{what} on {addr}: {source}")]
    Serve { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("invalid {field} {value:?}")]
    Address { field: &'static str, value: String },
    #[error("{0}")]
    ApiClient(#[from] kubelet_api::ClientError),
    #[error("allowedUnsafeSysctls: {0}")]
    Sysctls(#[from] crate::sysctl::SysctlError),
    #[error("configuring root directory {}: {source}", path.display())]
    RootDir { path: PathBuf, source: std::io::Error },
    #[error("cgroupsPerQOS: {0}")]
    Cgroups(#[from] crate::cm::CgroupError),
    #[error("{0}")]
    Certificate(#[from] crate::certificates::CertificateError),
    #[error("{0}")]
    CertificateExpired(kubelet_api::certificate::rotation::ExpiredError),
    #[error("{0}")]
    CredentialPlugins(#[from] crate::kuberuntime::credential_plugins::PluginError),
    #[error("user namespaces: {0}")]
    UserNamespaces(String),
    #[error("kubelet task {task:?} panicked: {message}")]
    TaskPanicked { task: &'static str, message: String },
}

/// Events go to the log and, in cluster mode, to the API server.
struct ClusterEvents {
    sink: kubelet_api::events::EventSink,
    node: String,
}

impl crate::events::EventRecorder for ClusterEvents {
    fn event(&self, pod: &k8s_openapi::api::core::v1::Pod, kind: crate::events::EventType, reason: &str, message: &str) {
        crate::events::EventRecorder::event(&LogEventRecorder, pod, kind, reason, message);
        self.sink.record(pod, kind.as_str(), reason, message);
    }

    fn node_event(&self, kind: crate::events::EventType, reason: &str, message: &str) {
        crate::events::EventRecorder::node_event(&LogEventRecorder, kind, reason, message);
        self.sink.record_node(&self.node, kind.as_str(), reason, message);
    }
}

/// ConfigMaps, Secrets and Services from the API server for container environments.
struct ClusterEnv(kubelet_api::env::ApiEnvSource);

fn env_error(kind: &'static str, namespace: &str, name: &str, e: kubelet_api::ApiError) -> crate::kuberuntime::env::EnvSourceError {
    crate::kuberuntime::env::EnvSourceError::Object { kind, namespace: namespace.into(), name: name.into(), message: e.to_string() }
}

#[async_trait::async_trait]
impl crate::kuberuntime::env::EnvSources for ClusterEnv {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<crate::kuberuntime::env::ObjectData>, crate::kuberuntime::env::EnvSourceError> {
        self.0.config_map(namespace, name).await.map_err(|e| env_error("configmap", namespace, name, e))
    }
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<crate::kuberuntime::env::ObjectData>, crate::kuberuntime::env::EnvSourceError> {
        self.0.secret(namespace, name).await.map_err(|e| env_error("secret", namespace, name, e))
    }
    async fn pull_secret(&self, namespace: &str, name: &str) -> Result<Option<kubelet_api::env::SecretRead>, crate::kuberuntime::env::EnvSourceError> {
        self.0.secret_with_uid(namespace, name).await.map_err(|e| env_error("secret", namespace, name, e))
    }
    async fn service_env(&self, namespace: &str, enable_service_links: bool) -> Result<crate::kuberuntime::env::ObjectData, crate::kuberuntime::env::EnvSourceError> {
        self.0
            .service_env(namespace, enable_service_links)
            .await
            .map_err(|e| crate::kuberuntime::env::EnvSourceError::Services { message: e.to_string() })
    }
}

/// The status manager as the API status syncer's source.
struct StatusProvider(StatusManager);

#[async_trait::async_trait]
impl kubelet_api::status_sync::PodStatusProvider for StatusProvider {
    fn pods_with_status(&self) -> Vec<k8s_openapi::api::core::v1::Pod> {
        self.0.pods_with_status()
    }
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
    fn removed(&self) -> Vec<String> {
        self.0.removed()
    }
    fn final_statuses(&self) -> Vec<k8s_openapi::api::core::v1::Pod> {
        self.0.final_statuses()
    }
}

/// `/healthz`: the sync loop iterates and the PLEG relisted recently.
struct KubeletHealth {
    heartbeat: SyncLoopHeartbeat,
    relist: watch::Receiver<Relist>,
}

impl HealthChecker for KubeletHealth {
    fn healthy(&self) -> Result<(), String> {
        // Before the first relist /healthz stays healthy (the node status says why it is not Ready).
        let relist = self.relist.borrow();
        if relist.at.is_some()
            && let Some(why) = relist.unhealthy()
        {
            return Err(why);
        }
        drop(relist);
        match self.heartbeat.age() {
            Some(age) if age > Duration::from_secs(180) => Err(format!("syncloop was last active {age:?} ago")),
            _ => Ok(()),
        }
    }
}

/// Which pods may hold devices (upstream `activePods`): the desired pods that have not finished,
/// once every source delivered its first set.
struct DesiredPodUids(watch::Receiver<DesiredPods>);

impl kubelet_deviceplugin::ActivePods for DesiredPodUids {
    fn active_pod_uids(&self) -> Option<std::collections::BTreeSet<String>> {
        let desired = self.0.borrow();
        let finished = |p: &k8s_openapi::api::core::v1::Pod| crate::status::is_terminal_phase(p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default());
        desired.sources_ready.then(|| desired.pods.iter().filter(|(_, p)| !finished(p)).map(|(uid, _)| uid.clone()).collect())
    }
}

/// The device plugin resources for the node status.
struct NodeDevices(DeviceManager);

impl kubelet_api::node_controller::DeviceResources for NodeDevices {
    fn device_capacity(&self) -> kubelet_api::node_status::DeviceCapacity {
        let c = self.0.capacity();
        kubelet_api::node_status::DeviceCapacity { capacity: c.capacity, allocatable: c.allocatable }
    }
}

fn socket_addr(field: &'static str, host: &str, port: i32) -> Result<SocketAddr, AppError> {
    let ip: IpAddr = host.parse().map_err(|_| AppError::Address { field, value: host.into() })?;
    let port = u16::try_from(port).map_err(|_| AppError::Address { field, value: port.to_string() })?;
    Ok(SocketAddr::new(ip, port))
}

/// The runtime handlers whose CRI features include recursive read-only mounts, and those that
/// support user namespaces (upstream reads them from the runtime's `Status`; here at start).
async fn handler_features(runtime: &dyn RuntimeService) -> (Vec<String>, Vec<String>) {
    match runtime.status(false).await {
        Ok(s) => {
            let with = |f: fn(&kubelet_cri::api::RuntimeHandlerFeatures) -> bool| -> Vec<String> {
                s.runtime_handlers.iter().filter(|h| h.features.as_ref().is_some_and(f)).map(|h| h.name.clone()).collect()
            };
            let (rro, userns) = (with(|f| f.recursive_read_only_mounts), with(|f| f.user_namespaces));
            tracing::info!(?rro, ?userns, "runtime handlers with recursive read-only mounts and with user namespaces");
            (rro, userns)
        }
        Err(e) => {
            tracing::warn!("reading the runtime handlers' features: {e}; assuming no recursive read-only mounts and no user namespaces");
            (Vec::new(), Vec::new())
        }
    }
}

/// The pods' user namespace ranges: `userNamespaces.idsPerPod` (default 65536) out of the
/// kubelet's share of host IDs, checked as upstream at start.
fn user_namespaces(cfg: &kubelet_config::types::KubeletConfiguration, root_dir: &Path) -> Result<crate::kuberuntime::userns::UserNamespaces, AppError> {
    use crate::kuberuntime::userns;
    let per_pod = cfg.user_namespaces.as_ref().and_then(|u| u.ids_per_pod).unwrap_or(i64::from(userns::IDS_UNIT));
    let per_pod = u32::try_from(per_pod).map_err(|_| AppError::UserNamespaces(format!("userNamespaces.idsPerPod {per_pod} is out of range")))?;
    let ranges = userns::kubelet_ranges(per_pod).map_err(AppError::UserNamespaces)?;
    ranges.validate(u32::try_from(cfg.max_pods).unwrap_or(0)).map_err(AppError::UserNamespaces)?;
    Ok(userns::UserNamespaces::new(root_dir, ranges))
}

async fn connect_runtime(endpoint: &str, timeout: Duration) -> Result<(RemoteRuntime, String), AppError> {
    let err = |source| AppError::Runtime { endpoint: endpoint.into(), source };
    let runtime = RemoteRuntime::connect(endpoint, timeout).map_err(err)?;
    let deadline = tokio::time::Instant::now() + RUNTIME_WAIT;
    let version = loop {
        match runtime.version().await {
            Ok(v) => break v,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!("waiting for the container runtime at {endpoint}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(err(e)),
        }
    };
    tracing::info!(runtime = %version.runtime_name, version = %version.runtime_version, api = %version.runtime_api_version, "connected to the container runtime");
    let status = runtime.status(false).await.map_err(err)?;
    let not_ready: Vec<String> = status
        .status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .filter(|c| c.r#type == "RuntimeReady" && !c.status)
        .map(|c| format!("{}: {} {}", c.r#type, c.reason, c.message))
        .collect();
    if !not_ready.is_empty() {
        return Err(AppError::RuntimeNotReady { endpoint: endpoint.into(), reason: not_ready.join("; ") });
    }
    Ok((runtime, version.runtime_name))
}

fn interfaces() -> Vec<(String, IpAddr)> {
    if_addrs::get_if_addrs().unwrap_or_default().into_iter().map(|i| (i.name.clone(), i.ip())).collect()
}

/// The kubelet's health for the node status: eviction pressure and PLEG freshness (upstream
/// `runtimeState` health checks: "PLEG is not healthy: ...").
struct NodeHealth {
    pressure: watch::Receiver<kubelet_api::conditions::Pressure>,
    relist: watch::Receiver<Relist>,
}

impl kubelet_api::node_controller::KubeletHealthSource for NodeHealth {
    fn pressure(&self) -> kubelet_api::conditions::Pressure {
        *self.pressure.borrow()
    }

    fn not_ready_reasons(&self) -> Vec<String> {
        self.relist.borrow().unhealthy().map(|why| format!("PLEG is not healthy: {why}")).into_iter().collect()
    }
}

/// How long each shutdown stage may take before its tasks are aborted.
const SHUTDOWN_STAGE_DEADLINE: Duration = Duration::from_secs(5);
/// How often the stats collector samples (cAdvisor's housekeeping interval as the kubelet
/// sets it).
const STATS_HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);

/// Runs a kubelet until `shutdown` is cancelled or one of its tasks fails (the error names it).
/// Pods keep running after it returns.
pub async fn run(opts: KubeletOptions, shutdown: CancellationToken) -> Result<(), AppError> {
    let cfg = &opts.config;
    let kubelet_start = std::time::SystemTime::now();
    let proc_root = Path::new("/proc");
    // Safe sysctls depend on the kernel; allowedUnsafeSysctls are checked before anything starts.
    let kernel_release = std::fs::read_to_string(proc_root.join("sys/kernel/osrelease")).ok();
    let sysctls = crate::sysctl::SysctlAllowlist::for_node(kernel_release.as_deref(), &cfg.allowed_unsafe_sysctls)?;
    // As upstream: volumes with mount propagation need the root directory on a shared mount.
    let root_error = |source| AppError::RootDir { path: opts.flags.root_dir.clone(), source };
    std::fs::create_dir_all(&opts.flags.root_dir).map_err(root_error)?;
    if crate::shared_root::make_rshared(&opts.flags.root_dir).map_err(root_error)? {
        tracing::info!(root = %opts.flags.root_dir.display(), "bind-mounted the root directory with shared mount propagation");
    }
    let node_name = node_info::node_name(&opts.flags.hostname_override, proc_root);
    let host_ip = node_info::node_ip(&opts.flags.node_ip, &interfaces(), node_info::default_route_interface(proc_root).as_deref());
    // Made first: the API client reports its requests to it from the first one (bootstrap's).
    let kubelet_metrics = Arc::new(crate::metrics::KubeletMetrics::new());
    kubelet_api::rest_metrics::set_observer(kubelet_metrics.clone());
    crate::certificates::bootstrap_if_needed(&opts, &node_name).await?;
    let mut cluster = kubelet_api::Cluster::connect(&opts, &node_name).await?;
    // Secrets and ConfigMaps: watched one by one (the default), or a GET at every read (`Get`;
    // `Cache`, upstream's TTL cache, reads as `Get` here).
    if let Some(c) = cluster.as_mut()
        && cfg.config_map_and_secret_change_detection_strategy == "Watch"
    {
        c.api = c.api.with_object_watches();
    }
    // The pod startup latency SLI: only API pods are tracked, so only cluster mode has one.
    let startup_tracker = cluster.as_mut().map(|c| {
        let tracker = Arc::new(crate::pod_startup_latency::PodStartupLatencyTracker::new(Arc::new(SystemClock), kubelet_metrics.clone()));
        c.startup = Some(tracker.clone());
        tracker
    });
    let mode = if cluster.is_some() { "cluster" } else { "standalone" };
    tracing::info!(node = %node_name, ip = %host_ip, "starting kubelet in {mode} mode");

    let (runtime, runtime_name) = connect_runtime(&cfg.container_runtime_endpoint, cfg.runtime_request_timeout).await?;
    // Upstream asks three times, two seconds apart, before giving up.
    let mut attempt = 0;
    let (cgroup_driver, driver_source) = loop {
        attempt += 1;
        match crate::cm::driver::effective(&cfg.cgroup_driver, runtime.runtime_config().await) {
            Ok(found) => break found,
            Err(e) if attempt < 3 => {
                tracing::warn!("{e}; asking again");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(AppError::CgroupDriver(e)),
        }
    };
    match driver_source {
        crate::cm::driver::DriverSource::Runtime { overrides: None } => tracing::info!(driver = ?cgroup_driver, "using the container runtime's cgroup driver (CRI RuntimeConfig)"),
        crate::cm::driver::DriverSource::Runtime { overrides: Some(configured) } => {
            tracing::warn!(driver = ?cgroup_driver, "cgroupDriver {configured:?} in the configuration is ignored: the container runtime uses {cgroup_driver:?} (CRI RuntimeConfig)")
        }
        crate::cm::driver::DriverSource::Config { reason } => tracing::info!(driver = %cfg.cgroup_driver, "using the configured cgroup driver: {reason}"),
    }
    let runtime = Arc::new(runtime);
    let images: Arc<dyn ImageService> = if cfg.image_service_endpoint.is_empty() || cfg.image_service_endpoint == cfg.container_runtime_endpoint {
        runtime.clone()
    } else {
        Arc::new(connect_runtime(&cfg.image_service_endpoint, cfg.runtime_request_timeout).await?.0)
    };
    // Every CRI call from here on is counted and timed for /metrics.
    let runtime = Arc::new(crate::metrics::instrumented::InstrumentedRuntime::new(runtime, images, kubelet_metrics.clone()));
    let images: Arc<dyn ImageService> = runtime.clone();
    // Which credentials pulled each image (KubeletEnsureSecretPulledImages, on by default):
    // pulls a restart interrupted are settled against the images now present.
    let pull_records = kubelet_config::features::FeatureGates::new(&cfg.feature_gates).enabled("KubeletEnsureSecretPulledImages").then(|| {
        let policy = crate::kuberuntime::pull_records::VerificationPolicy::from_config(&cfg.image_pull_credentials_verification_policy, &cfg.preloaded_images_verification_allowlist);
        Arc::new(crate::kuberuntime::pull_records::PullRecords::new(&opts.flags.root_dir, policy).with_metrics(kubelet_metrics.clone()))
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
        let src = UrlPodSource::new(cfg.static_pod_url.clone(), cfg.static_pod_url_header.clone(), node_name.clone(), cfg.http_check_frequency);
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
    let device_server = devices
        .start(serve_stop.clone())
        .inspect_err(|e| tracing::error!("device plugins cannot register: {e}"))
        .ok();

    // Runtime manager and workers.
    let host_resolv = std::fs::read_to_string(&cfg.resolv_conf).unwrap_or_else(|e| {
        if !cfg.resolv_conf.is_empty() {
            tracing::warn!("resolvConf {}: {e}; pods get no host DNS servers", cfg.resolv_conf);
        }
        String::new()
    });
    // What the node status reports as allocatable: unset limits read as it in the downward API.
    let machine = kubelet_api::machine::read_machine_info(&kubelet_api::machine::HostPaths::host(&opts.flags.root_dir));
    let node_allocatable = kubelet_api::node_status::node_allocatable(&kubelet_api::node_status::NodeConfig::from_options(&opts, &node_name, host_ip), &machine);
    // QoS cgroups (kubepods, burstable, besteffort) before any pod; each pod gets its own below.
    let pod_cgroups = if cfg.cgroups_per_qos {
        let qos = crate::cm::QosCgroups::new(std::path::Path::new("/sys/fs/cgroup"), &cfg.cgroup_root, cgroup_driver, cfg.pod_pids_limit);
        // With `pods` in enforceNodeAllocatable (the default) kubepods gets the node's CPU shares
        // and memory less kubeReserved and systemReserved, as upstream.
        let enforced = cfg.enforce_node_allocatable.iter().any(|e| e == "pods");
        let limits = kubelet_api::resources::pods_cgroup_limits(
            &kubelet_api::resources::capacity(&machine, i64::from(cfg.max_pods), i64::from(cfg.pods_per_core)),
            &kubelet_api::resources::Reservations { kube_reserved: cfg.kube_reserved.clone(), system_reserved: cfg.system_reserved.clone(), eviction_hard: Default::default() },
        );
        let cpu = if enforced { limits.get("cpu").copied().unwrap_or(machine.num_cores * 1000) } else { machine.num_cores * 1000 };
        // The node's PIDs (`pid_max`) less the reserved ones (`pid` in kubeReserved and
        // systemReserved) bound kubepods' tasks, as upstream's allocatable `pid` does.
        let reserved_pids: i64 = [&cfg.kube_reserved, &cfg.system_reserved].iter().filter_map(|r| r.get("pid")).filter_map(|v| v.trim().parse::<i64>().ok()).sum();
        let pid_max = std::fs::read_to_string(proc_root.join("sys/kernel/pid_max")).ok().and_then(|s| s.trim().parse::<i64>().ok());
        let pids = pid_max.filter(|_| enforced).map(|m| (m - reserved_pids).max(1));
        qos.ensure_top_level(cpu, enforced.then(|| limits.get("memory").copied()).flatten(), pids)?;
        // The reserved cgroups, when their enforcement is asked for (validated: their names are
        // set): the reservation becomes their limit, or only their CPU shares for the
        // `-compressible` forms.
        let capacity = kubelet_api::resources::capacity(&machine, i64::from(cfg.max_pods), i64::from(cfg.pods_per_core));
        for (enforcement, cgroup, reserved) in [("system-reserved", &cfg.system_reserved_cgroup, &cfg.system_reserved), ("kube-reserved", &cfg.kube_reserved_cgroup, &cfg.kube_reserved)] {
            let compressible = format!("{enforcement}-compressible");
            let (full, only_cpu) = (cfg.enforce_node_allocatable.iter().any(|e| e == enforcement), cfg.enforce_node_allocatable.contains(&compressible));
            if !full && !only_cpu {
                continue;
            }
            let r = kubelet_api::resources::reservation(&capacity, &kubelet_api::resources::Reservations { kube_reserved: reserved.clone(), system_reserved: Default::default(), eviction_hard: Default::default() });
            let pid = reserved.get("pid").and_then(|v| v.trim().parse::<i64>().ok());
            qos.enforce_reserved(cgroup, r.get("cpu").copied().unwrap_or(0), r.get("memory").copied().filter(|_| full), pid.filter(|_| full))?;
            tracing::info!(cgroup = %cgroup, "{enforcement} enforced on its cgroup");
        }
        Some(Arc::new(qos))
    } else {
        None
    };
    let (rro_handlers, userns_handlers) = handler_features(runtime.as_ref()).await;
    let user_namespaces = user_namespaces(cfg, &opts.flags.root_dir)?;
    let manager_cfg = RuntimeManagerConfig {
        root_dir: opts.flags.root_dir.clone(),
        sandbox: SandboxContext {
            pod_logs_dir: PathBuf::from(&cfg.pod_logs_dir),
            dns: ClusterDns { servers: cfg.cluster_dns.clone(), domain: cfg.cluster_domain.clone(), host: parse_resolv_conf(&host_resolv) },
            cgroup_parent: String::new(),
        },
        node_name: node_name.clone(),
        host_ip: host_ip.to_string(),
        host_hosts_file: PathBuf::from("/etc/hosts"),
        container_logs_dir: PathBuf::from(CONTAINER_LOGS_DIR),
        memory_capacity: node_info::memory_capacity(proc_root),
        runtime_handler: String::new(),
        seccomp_default: cfg.seccomp_default,
        node_allocatable: node_allocatable.clone(),
        rro_handlers,
        userns_handlers,
    };
    let runtime_dyn: Arc<dyn RuntimeService> = runtime.clone();
    let credential_plugins = match &opts.flags.image_credential_provider_config {
        Some(config) => {
            let sa_tokens = kubelet_config::features::FeatureGates::new(&cfg.feature_gates).enabled("KubeletServiceAccountTokenForCredentialProviders");
            let plugins = crate::kuberuntime::credential_plugins::CredentialPlugins::load(config, opts.flags.image_credential_provider_bin_dir.as_deref(), sa_tokens)?.with_metrics(kubelet_metrics.clone());
            Some(Arc::new(match cluster.as_ref() {
                Some(c) => plugins.with_tokens(Arc::new(crate::kuberuntime::sa_tokens::ApiServiceAccountTokens { api: Arc::new(c.api.clone()), tokens: Default::default() })),
                None => plugins,
            }))
        }
        None => None,
    };
    let images_for_node = images.clone();
    let images_for_stats = images.clone();
    let images_for_gc = images.clone();
    let (events, env): (Arc<dyn crate::events::EventRecorder>, Arc<dyn crate::kuberuntime::env::EnvSources + Send>) = match cluster.as_ref() {
        Some(c) => {
            let (sink, sender) = c.events(&opts, report_stop.clone());
            tasks.spawn(Stage::Report, sender.name, sender.future);
            let env = c.env_source();
            tasks.spawn(Stage::Sync, "service list warm-up", env.clone().warm_up(sync_stop.clone()));
            (Arc::new(ClusterEvents { sink, node: node_name.clone() }), Arc::new(ClusterEnv(env)))
        }
        None => (Arc::new(LogEventRecorder), Arc::new(NoEnvSources)),
    };
    // Volumes: secrets, configMaps and tokens come from the API server in cluster mode.
    let volume_api = cluster.as_ref().map(|c| Arc::new(c.api.clone()) as Arc<dyn kubelet_api::volume_api::VolumeApi>);
    let volumes = crate::volumemanager::VolumeManager::new(
        &opts.flags.root_dir,
        volume_api,
        Arc::new(crate::volumemanager::mount::SystemMounter),
        Arc::new(SystemClock),
    )
    .with_node_allocatable(node_allocatable);
    let mut manager = RuntimeManager::new(runtime_dyn.clone(), images, events.clone(), env, manager_cfg, Arc::new(SystemClock))
        .with_volume_manager(volumes)
        .with_user_namespaces(user_namespaces)
        .with_devices(Arc::new(devices.clone()))
        .with_pull_limits(crate::kuberuntime::images::PullLimits::from_config(cfg), credential_plugins);
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
    let evictions = crate::eviction::requests::EvictionRequests::new(probe_tx.clone());
    let prober = Arc::new(crate::prober::ProbeManager::new(runtime_dyn.clone(), status.clone(), events.clone(), Arc::new(SystemClock), probe_tx));
    let probe_metrics: Arc<dyn server::MetricsSource> = prober.clone();
    let ctx = Arc::new(PodWorkerContext {
        manager,
        status: status.clone(),
        prober,
        sync_frequency: cfg.sync_frequency,
        runtime_name,
        host_ip: host_ip.to_string(),
        admission: crate::admission::PodAdmitter { sysctls, apparmor: crate::apparmor::host_enabled(Path::new("/sys")) },
        metrics: kubelet_metrics.clone(),
        evictions: evictions.clone(),
    });
    let (workers, finished) = PodWorkers::new(ctx, sync_stop.clone());
    let (pleg_tx, pleg_rx) = mpsc::channel(256);
    let (relist_tx, relist_rx) = watch::channel(Relist::default());
    let (pressure_tx, pressure_rx) = watch::channel(kubelet_api::conditions::Pressure::default());
    let root_dir = opts.flags.root_dir.clone();
    let memory_cgroup = crate::eviction::memory_watch::v1_root_memory_cgroup(Path::new("/sys/fs/cgroup"));
    let signal_paths = SignalPaths { proc_root: proc_root.into(), node_fs: root_dir.clone(), image_fs: root_dir, memory_cgroup };
    // The stats collector's snapshots (it starts below) feed eviction too.
    let stats_store = crate::stats::StatsStore::default();
    // Image garbage collection: on its own period, and for eviction's disk reclaim.
    let image_gc = crate::image_gc::ImageGcManager::new(
        runtime_dyn.clone(),
        images_for_gc.clone(),
        Arc::new(crate::image_gc::RuntimeImageFs(images_for_gc)),
        events.clone(),
        Arc::new(SystemClock),
        crate::image_gc::records::ImageGcPolicy {
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
    let log_manager = crate::logs::ContainerLogManager::new(runtime_dyn.clone(), crate::logs::LogRotationPolicy::from_config(cfg));
    tasks.spawn(Stage::Sync, "container log manager", log_manager.run(sync_stop.clone()));
    tasks.spawn(Stage::Sync, "image garbage collector", image_gc.clone().run(crate::image_gc::IMAGE_GC_PERIOD, sync_stop.clone()));
    let eviction_manager = EvictionManager::from_config(cfg, signal_paths)
        .with_pods(crate::eviction::PodEvictions { pods: Arc::new(status.clone()), stats: Arc::new(stats_store.clone()), requests: evictions.clone() })
        .with_reclaim(Arc::new(crate::image_gc::DiskReclaim {
            gc: image_gc,
            containers: Some(crate::kuberuntime::container_gc::ContainerReclaim { runtime: runtime_dyn.clone(), container_logs_dir: PathBuf::from(CONTAINER_LOGS_DIR), pods: Arc::new(status.clone()) }),
            node_fs: opts.flags.root_dir.clone(),
        }));
    tasks.spawn(Stage::Sync, "eviction manager", eviction_manager.run(pressure_tx, sync_stop.clone()));
    if let Some(cluster) = cluster.as_mut() {
        let health = Arc::new(NodeHealth { pressure: pressure_rx, relist: relist_rx.clone() });
        let node_devices = Arc::new(NodeDevices(devices.clone()));
        let node = cluster.node_tasks(&opts, host_ip, runtime_dyn.clone(), images_for_node.clone(), health, Some(node_devices), report_stop.clone());
        let pod_sync = cluster.pod_sync_tasks(Arc::new(StatusProvider(status.clone())), desired.clone(), report_stop.clone());
        for t in node.into_iter().chain(pod_sync) {
            tasks.spawn(Stage::Report, t.name, t.future);
        }
    }

    tasks.spawn(Stage::Sync, "PLEG", Pleg::new(runtime_dyn.clone(), RELIST_PERIOD).with_metrics(kubelet_metrics.clone()).run(pleg_tx, relist_tx, sync_stop.clone()));
    let trimmer = crate::memory::MemoryTrimmer::default().run(sync_stop.clone());
    tasks.spawn(Stage::Sync, "memory trimmer", async move {
        trimmer.await;
    });

    let heartbeat = SyncLoopHeartbeat::default();
    let health: Arc<dyn HealthChecker> = Arc::new(KubeletHealth { heartbeat: heartbeat.clone(), relist: relist_rx.clone() });
    let sync_loop = SyncLoop { workers, finished, desired, pleg_events: pleg_rx, probe_updates: probe_rx, relist: relist_rx, heartbeat, deleting: Default::default() };
    if let Some(serve) = device_server {
        tasks.spawn(Stage::Serve, "device plugin registration", serve);
    }
    tasks.spawn(Stage::Sync, "sync loop", sync_loop.run(sync_stop.clone()));

    if cfg.healthz_port > 0 {
        let addr = socket_addr("healthzBindAddress", &cfg.healthz_bind_address, cfg.healthz_port)?;
        let (health, stop) = (health.clone(), serve_stop.clone());
        tasks.spawn_fallible(Stage::Serve, "healthz server", async move {
            server::serve_healthz(addr, health, async move { stop.cancelled().await })
                .await
                .map_err(|source| AppError::Serve { what: "healthz server", addr, source })
        });
    }
    // Stats: sampled on the housekeeping interval, served from the latest snapshot.
    let collector = crate::stats::StatsCollector::new(
        crate::stats::StatsConfig {
            node_name: node_name.clone(),
            cgroup_root: cfg.cgroup_root.clone(),
            cgroup_driver,
            root_dir: opts.flags.root_dir.clone(),
            pod_logs_dir: PathBuf::from(&cfg.pod_logs_dir),
            proc_root: proc_root.to_path_buf(),
            kubelet_cgroup: cfg.kubelet_cgroups.clone(),
            runtime_cgroup: opts.flags.runtime_cgroups.clone(),
            system_cgroup: cfg.system_cgroups.clone(),
            memory_capacity: u64::try_from(machine.memory_capacity).unwrap_or(0),
            interval: STATS_HOUSEKEEPING_INTERVAL,
            du_period: cfg.volume_stats_agg_period,
            kubelet_start,
            machine: crate::stats::MachineLabels {
                machine_id: machine.machine_id.clone(),
                system_uuid: machine.system_uuid.clone(),
                boot_id: machine.boot_id.clone(),
                kernel_version: machine.kernel_version.clone(),
                os_image: machine.os_image.clone(),
                swap_total: crate::stats::host::swap_total(proc_root),
            },
        },
        crate::stats::cgroup::CgroupReader::new(crate::cm::cgroupfs::Cgroupfs::detect(Path::new("/sys/fs/cgroup"))),
        Arc::new(status.clone()),
        runtime_dyn.clone(),
        images_for_stats,
        stats_store.clone(),
    );
    tasks.spawn(Stage::Report, "stats collector", collector.run(report_stop.clone()));
    let stats_source: Arc<dyn crate::stats::StatsSource> = Arc::new(stats_store);
    if cfg.read_only_port > 0 {
        let addr = socket_addr("address", &cfg.address, cfg.read_only_port)?;
        let (health, stop) = (health.clone(), serve_stop.clone());
        let lister: Arc<dyn server::PodLister> = Arc::new(status.clone());
        let extras = server::ReadOnlyExtras {
            stats: Some(stats_source.clone()),
            metrics: Some(Arc::new(server::metrics_routes::MetricsEndpoints {
                node_name: node_name.clone(),
                pods: lister.clone(),
                kubelet: Some(kubelet_metrics.clone()),
                probes: Some(probe_metrics.clone()),
            })),
        };
        tasks.spawn_fallible(Stage::Serve, "read-only server", async move {
            server::serve_read_only(addr, lister, health, extras, async move { stop.cancelled().await })
                .await
                .map_err(|source| AppError::Serve { what: "read-only server", addr, source })
        });
    }
    // The authenticated kubelet server (port 10250): logs, exec, attach, port-forward.
    // serverTLSBootstrap: port 10250's certificate from a kubelet-serving request, rotated.
    let serving_resolver = match cluster.as_ref() {
        Some(c) if cfg.server_tls_bootstrap && cfg.tls_cert_file.is_empty() => {
            let resolver = crate::certificates::ServingCertResolver::new(&opts.flags.cert_dir);
            let hostname = node_name.clone();
            let rotation = crate::certificates::serving_rotation(&c.api, &node_name, hostname, vec![host_ip], &opts.flags.cert_dir, resolver.clone());
            let stop = report_stop.clone();
            tasks.spawn(Stage::Report, "serving certificate rotation", async move {
                let _ = rotation.run(stop).await;
            });
            Some(resolver as Arc<dyn rustls::server::ResolvesServerCert>)
        }
        _ => None,
    };
    if let Some(rotation) = cluster.as_ref().and_then(|c| crate::certificates::client_rotation(&opts, &node_name, &c.api)) {
        let stop = report_stop.clone();
        tasks.spawn_fallible(Stage::Report, "client certificate rotation", async move { rotation.run(stop).await.map_err(AppError::CertificateExpired) });
    }
    let secure = server::secure::setup::prepare(server::secure::setup::SecureServerInputs {
        config: cfg,
        cert_dir: &opts.flags.cert_dir,
        node_name: &node_name,
        node_ip: host_ip,
        reviewer: cluster.as_ref().map(|c| Arc::new(kubelet_api::auth_review::ApiReviewer::new(&c.api))),
        pods: Arc::new(status.clone()),
        health: health.clone(),
        runtime: runtime.clone(),
        probe_metrics: Some(probe_metrics),
        kubelet_metrics: Some(kubelet_metrics.clone()),
        stats: Some(stats_source),
        serving_resolver,
    });
    let port_addr = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), u16::try_from(cfg.port).unwrap_or(0));
    if let Some(p) = secure.map_err(|source| AppError::Serve { what: "kubelet server", addr: port_addr, source })? {
        let stop = serve_stop.clone();
        tasks.spawn_fallible(Stage::Serve, "kubelet server", async move {
            server::secure::serve_secure(p.addr, p.tls, p.ctx, async move { stop.cancelled().await })
                .await
                .map_err(|source| AppError::Serve { what: "kubelet server", addr: p.addr, source })
        });
    }
    // The first task to fail stops the kubelet; otherwise run until shutdown.
    tasks.run(SHUTDOWN_STAGE_DEADLINE).await.map_err(|f| match f {
        TaskFailure::Failed { error, .. } => error,
        TaskFailure::Panicked { task, message } => AppError::TaskPanicked { task, message },
    })
}
