//! The container runtime at start: connecting and waiting for it, its handlers' features
//! (recursive read-only mounts, user namespaces), the cgroup driver it uses, and the pods' user
//! namespace ranges.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kubelet::kuberuntime::RuntimeManagerConfig;
use kubelet::kuberuntime::dns::{ClusterDns, parse_resolv_conf};
use kubelet::kuberuntime::resources::NodeAllocatable;
use kubelet::kuberuntime::sandbox::SandboxContext;
use kubelet::node_info;
use kubelet_config::KubeletOptions;
use kubelet_config::types::KubeletConfiguration;
use kubelet_cri::{RemoteRuntime, RuntimeService};

use crate::{AppError, CONTAINER_LOGS_DIR};

/// How long start-up waits for the container runtime to answer.
const RUNTIME_WAIT: Duration = Duration::from_secs(30);

/// The runtime handlers whose CRI features include recursive read-only mounts, and those that
/// support user namespaces (upstream reads them from the runtime's `Status`; here at start).
pub(crate) async fn handler_features(runtime: &dyn RuntimeService) -> (Vec<String>, Vec<String>) {
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
pub(crate) fn user_namespaces(
    cfg: &KubeletConfiguration,
    root_dir: &Path,
) -> Result<kubelet::kuberuntime::userns::UserNamespaces, AppError> {
    use kubelet::kuberuntime::userns;
    let per_pod = cfg.user_namespaces.as_ref().and_then(|u| u.ids_per_pod).unwrap_or(i64::from(userns::IDS_UNIT));
    let per_pod =
        u32::try_from(per_pod).map_err(|_| AppError::UserNamespaces(format!("userNamespaces.idsPerPod {per_pod} is out of range")))?;
    let ranges = userns::kubelet_ranges(per_pod).map_err(AppError::UserNamespaces)?;
    ranges.validate(u32::try_from(cfg.max_pods).unwrap_or(0)).map_err(AppError::UserNamespaces)?;
    Ok(userns::UserNamespaces::new(root_dir, ranges))
}

pub(crate) async fn connect_runtime(endpoint: &str, timeout: Duration) -> Result<(RemoteRuntime, String), AppError> {
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

/// The cgroup driver: the runtime's (CRI `RuntimeConfig`) when it reports one, else the
/// configured one.
pub(crate) async fn cgroup_driver(
    cfg: &KubeletConfiguration,
    runtime: &RemoteRuntime,
) -> Result<kubelet::cm::pod_cgroups::CgroupDriver, AppError> {
    // Upstream asks three times, two seconds apart, before giving up.
    let mut attempt = 0;
    let (cgroup_driver, driver_source) = loop {
        attempt += 1;
        match kubelet::cm::driver::effective(&cfg.cgroup_driver, runtime.runtime_config().await) {
            Ok(found) => break found,
            Err(e) if attempt < 3 => {
                tracing::warn!("{e}; asking again");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(AppError::CgroupDriver(e)),
        }
    };
    match driver_source {
        kubelet::cm::driver::DriverSource::Runtime { overrides: None } => {
            tracing::info!(driver = ?cgroup_driver, "using the container runtime's cgroup driver (CRI RuntimeConfig)")
        }
        kubelet::cm::driver::DriverSource::Runtime { overrides: Some(configured) } => {
            tracing::warn!(driver = ?cgroup_driver, "cgroupDriver {configured:?} in the configuration is ignored: the container runtime uses {cgroup_driver:?} (CRI RuntimeConfig)")
        }
        kubelet::cm::driver::DriverSource::Config { reason } => {
            tracing::info!(driver = %cfg.cgroup_driver, "using the configured cgroup driver: {reason}")
        }
    }
    Ok(cgroup_driver)
}

/// The runtime manager's settings: paths, DNS (with the host's `resolvConf`), the node's facts,
/// and `handlers` (the runtime handlers with recursive read-only mounts, and with user
/// namespaces).
pub(crate) fn manager_config(
    opts: &KubeletOptions,
    node_name: &str,
    host_ip: IpAddr,
    node_allocatable: NodeAllocatable,
    handlers: (Vec<String>, Vec<String>),
) -> RuntimeManagerConfig {
    let host_resolv = std::fs::read_to_string(&opts.config.resolv_conf).unwrap_or_else(|e| {
        if !opts.config.resolv_conf.is_empty() {
            tracing::warn!("resolvConf {}: {e}; pods get no host DNS servers", opts.config.resolv_conf);
        }
        String::new()
    });
    RuntimeManagerConfig {
        root_dir: opts.flags.root_dir.clone(),
        sandbox: SandboxContext {
            pod_logs_dir: PathBuf::from(&opts.config.pod_logs_dir),
            dns: ClusterDns {
                servers: opts.config.cluster_dns.clone(),
                domain: opts.config.cluster_domain.clone(),
                host: parse_resolv_conf(&host_resolv),
            },
            cgroup_parent: String::new(),
        },
        node_name: node_name.to_string(),
        host_ip: host_ip.to_string(),
        host_hosts_file: PathBuf::from("/etc/hosts"),
        container_logs_dir: PathBuf::from(CONTAINER_LOGS_DIR),
        memory_capacity: node_info::memory_capacity(Path::new(crate::PROC_ROOT)),
        runtime_handler: String::new(),
        seccomp_default: opts.config.seccomp_default,
        node_allocatable,
        rro_handlers: handlers.0,
        userns_handlers: handlers.1,
    }
}
