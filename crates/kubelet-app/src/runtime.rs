//! The container runtime at start: connecting and waiting for it (the image service too, when
//! it has its own endpoint), its handlers' features (recursive read-only mounts, user
//! namespaces), the cgroup driver it uses, the pods' user namespace ranges, the image pull
//! records and the image credential provider plugins.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kubelet::cm::pod_cgroups::CgroupDriver;
use kubelet::kuberuntime::credential_plugins::CredentialPlugins;
use kubelet::kuberuntime::pull_records::{PullRecords, VerificationPolicy};
use kubelet::metrics::KubeletMetrics;
use kubelet::metrics::instrumented::InstrumentedRuntime;
use kubelet_config::features::FeatureGates;

use kubelet::kuberuntime::RuntimeManagerConfig;
use kubelet::kuberuntime::dns::{ClusterDns, parse_resolv_conf};
use kubelet::kuberuntime::resources::NodeAllocatable;
use kubelet::kuberuntime::sandbox::SandboxContext;
use kubelet_config::KubeletOptions;
use kubelet_config::types::KubeletConfiguration;
use kubelet_cri::{ImageService, RemoteRuntime, RuntimeService};

use crate::{AppError, CONTAINER_LOGS_DIR};

/// How long start-up waits for the container runtime to answer.
const RUNTIME_WAIT: Duration = Duration::from_secs(30);

/// The connected runtime: every CRI call through it is counted and timed for `/metrics`.
pub(crate) struct Runtime {
    /// The runtime service.
    pub service: Arc<dyn RuntimeService>,
    /// The image service (the same instrumented object as `service`).
    pub images: Arc<dyn ImageService>,
    /// The runtime's name from CRI `Version` (`containerd`).
    pub name: String,
    /// The cgroup driver pods' cgroups are named for.
    pub cgroup_driver: CgroupDriver,
    /// Which credentials pulled each image (`KubeletEnsureSecretPulledImages`, on by default).
    pub pull_records: Option<Arc<PullRecords>>,
}

impl Runtime {
    /// Connects to `containerRuntimeEndpoint` (and `imageServiceEndpoint` when it differs), reads
    /// the cgroup driver, and settles the pulls a restart interrupted against the images present.
    pub(crate) async fn connect(opts: &KubeletOptions, metrics: &Arc<KubeletMetrics>) -> Result<Runtime, AppError> {
        let cfg = &opts.config;
        let (runtime, name) = connect_runtime(&cfg.container_runtime_endpoint, cfg.runtime_request_timeout).await?;
        let cgroup_driver = cgroup_driver(cfg, &runtime).await?;
        let runtime = Arc::new(runtime);
        let images: Arc<dyn ImageService> =
            if cfg.image_service_endpoint.is_empty() || cfg.image_service_endpoint == cfg.container_runtime_endpoint {
                runtime.clone()
            } else {
                Arc::new(connect_runtime(&cfg.image_service_endpoint, cfg.runtime_request_timeout).await?.0)
            };
        let instrumented = Arc::new(InstrumentedRuntime::new(runtime, images, metrics.clone()));
        let pull_records = FeatureGates::new(&cfg.feature_gates).enabled("KubeletEnsureSecretPulledImages").then(|| {
            let policy = VerificationPolicy::from_config(
                &cfg.image_pull_credentials_verification_policy,
                &cfg.preloaded_images_verification_allowlist,
            );
            Arc::new(PullRecords::new(&opts.flags.root_dir, policy).with_metrics(metrics.clone()))
        });
        if let Some(records) = &pull_records {
            match instrumented.list_images(None).await {
                Ok(list) => records.reconcile_intents(&list),
                Err(e) => tracing::warn!("listing images to settle interrupted pulls: {e}"),
            }
        }
        Ok(Runtime { service: instrumented.clone(), images: instrumented, name, cgroup_driver, pull_records })
    }
}

/// The image credential provider plugins of `--image-credential-provider-config`, if set; in
/// cluster mode (`api`) they may be handed the pod's service account token.
pub(crate) fn credential_plugins(
    opts: &KubeletOptions,
    api: Option<&kubelet_cluster::KubeApi>,
    metrics: &Arc<KubeletMetrics>,
) -> Result<Option<Arc<CredentialPlugins>>, AppError> {
    let Some(config) = &opts.flags.image_credential_provider_config else { return Ok(None) };
    let sa_tokens = FeatureGates::new(&opts.config.feature_gates).enabled("KubeletServiceAccountTokenForCredentialProviders");
    let plugins =
        CredentialPlugins::load(config, opts.flags.image_credential_provider_bin_dir.as_deref(), sa_tokens)?.with_metrics(metrics.clone());
    Ok(Some(Arc::new(match api {
        Some(api) => plugins.with_tokens(Arc::new(kubelet::kuberuntime::sa_tokens::ApiServiceAccountTokens {
            api: Arc::new(api.clone()),
            tokens: Default::default(),
        })),
        None => plugins,
    })))
}

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
    let per_pod = u32::try_from(per_pod).map_err(|_| AppError::IdsPerPodOutOfRange(per_pod))?;
    let ranges = userns::kubelet_ranges(per_pod)?;
    ranges.validate(u32::try_from(cfg.max_pods).unwrap_or(0))?;
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

/// The cgroup driver: the runtime's (CRI `RuntimeConfig`) when it reports one, else the
/// configured one.
async fn cgroup_driver(cfg: &KubeletConfiguration, runtime: &RemoteRuntime) -> Result<kubelet::cm::pod_cgroups::CgroupDriver, AppError> {
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

/// The runtime manager's settings: paths, DNS (with the host's `resolvConf`), the node's facts
/// (`memory_capacity` in bytes, as the machine info read it),
/// and `handlers` (the runtime handlers with recursive read-only mounts, and with user
/// namespaces).
pub(crate) fn manager_config(
    opts: &KubeletOptions,
    node_name: &str,
    host_ip: IpAddr,
    node_allocatable: NodeAllocatable,
    memory_capacity: i64,
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
        memory_capacity,
        runtime_handler: String::new(),
        seccomp_default: opts.config.seccomp_default,
        node_allocatable,
        rro_handlers: handlers.0,
        userns_handlers: handlers.1,
    }
}
