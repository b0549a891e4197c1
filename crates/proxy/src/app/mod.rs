//! kube-proxy as a program, minus `main`: connects to the API server, reads
//! its own Node, builds the proxier for the configured mode, starts the
//! watches (Services, EndpointSlices — `discovery.k8s.io/v1`, or `v1beta1`
//! on API servers before 1.21 — and the Node), the healthz and metrics
//! servers, and runs the sync loop until shutdown. `--cleanup` is
//! [`cleanup`]. Owns wiring only; the decisions live in the submodules.

pub mod backend;
pub mod health;
pub mod host_setup;
pub mod metrics;
pub mod mode;
pub mod proxier;
pub mod service_health;
pub mod settings;
pub mod store;
pub mod sync_loop;
pub mod v1beta1;
pub mod watch;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::{Api, Client};
use proxy_config::ProxyOptions;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::applier::cleanup::{IpvsCleanup, RunningMode, cleanup_leftovers, cleanup_other_modes};
use crate::net::IpFamily;
use health::ProxierHealth;
use metrics::Metrics;
use settings::SettingsError;
use sync_loop::{Outputs, ProxyEvent};

/// Why kube-proxy could not start, run or clean up.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The kubeconfig (`clientConnection.kubeconfig`) or `--master` URL could not be
    /// read or turned into a client configuration.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The kubeconfig path, empty when the client came from `--master` or in-cluster.
        path: String,
        /// What went wrong reading or applying it.
        message: String,
    },
    /// The API client could not be built from a valid configuration.
    #[error("cannot create the API client: {0}")]
    Client(#[source] kube::Error),
    /// The KubeProxyConfiguration could not be turned into proxier settings.
    #[error("{0}")]
    Settings(#[from] SettingsError),
    /// The healthz or metrics server could not listen on its bind address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The bind address as configured (`healthzBindAddress` / `metricsBindAddress`).
        addr: String,
        /// The parse or bind error.
        #[source]
        source: std::io::Error,
    },
    /// `--cleanup` removed what it could but some rules remained; the errors, joined by `; `.
    #[error("cleanup failed: {0}")]
    Cleanup(String),
}

/// Label selector upstream watches Services and EndpointSlices with.
const PROXY_SELECTOR: &str = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless";

/// `kube-proxy --cleanup`: removes the rules of every mode, reports what it did.
pub fn cleanup(netns: Option<&str>) -> Result<(), AppError> {
    let report = cleanup_leftovers(netns, Path::new("/proc/net"));
    for t in &report.nft_tables {
        tracing::info!("deleted nftables table {t}");
    }
    for (family, table, chain) in &report.iptables_chains {
        tracing::info!("deleted {family:?} iptables chain {table}/{chain}");
    }
    match report.ipvs {
        Some(IpvsCleanup::NoKernelSupport) => {
            tracing::info!("ipvs: no kernel support (/proc/net/ip_vs absent), nothing to clean")
        }
        Some(IpvsCleanup::Cleaned { interface_deleted }) => tracing::info!(
            "ipvs: deleted {} virtual servers and ipsets {:?}; kube-ipvs0 deleted: {interface_deleted}",
            report.ipvs_virtual_servers,
            report.ipsets
        ),
        None => {}
    }
    if report.errors.is_empty() {
        return Ok(());
    }
    let msgs: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    Err(AppError::Cleanup(msgs.join("; ")))
}

/// The API client from `clientConnection.kubeconfig` / `--master` (else in-cluster).
pub async fn client(opts: &ProxyOptions) -> Result<Client, AppError> {
    let path = &opts.config.client_connection.kubeconfig;
    let master = &opts.flags.master;
    let kc_err = |message: String| AppError::Kubeconfig { path: path.clone(), message };
    let mut config = if !path.is_empty() {
        let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| kc_err(e.to_string()))?;
        kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.map_err(|e| kc_err(e.to_string()))?
    } else if !master.is_empty() {
        kube::Config::new(master.parse().map_err(|e| kc_err(format!("--master {master:?}: {e}")))?)
    } else {
        kube::Config::incluster().map_err(|e| kc_err(e.to_string()))?
    };
    if !master.is_empty() {
        config.cluster_url = master.parse().map_err(|e| kc_err(format!("--master {master:?}: {e}")))?;
    }
    Client::try_from(config).map_err(AppError::Client)
}

/// Whether the API server serves `discovery.k8s.io/v1` EndpointSlices
/// (1.21+); retries other errors until it answers or `shutdown`.
async fn serves_discovery_v1(client: &Client, shutdown: &CancellationToken) -> Option<bool> {
    let api: Api<EndpointSlice> = Api::all(client.clone());
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => return Some(true),
            Err(kube::Error::Api(s)) if s.code == 404 => return Some(false),
            Err(e) => tracing::warn!("cannot reach the API server, retrying: {e}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Our Node, tried `attempts` times two seconds apart.
async fn get_node(client: &Client, name: &str, attempts: u32, shutdown: &CancellationToken) -> Option<Node> {
    let api: Api<Node> = Api::all(client.clone());
    for _ in 0..attempts {
        match api.get(name).await {
            Ok(n) => return Some(n),
            Err(e) => tracing::warn!("cannot get node {name:?}: {e}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    None
}

async fn serve(addr: &str, router: axum::Router, shutdown: CancellationToken) -> Result<(), AppError> {
    if addr.is_empty() {
        return Ok(());
    }
    let sock: SocketAddr = addr.parse().map_err(|e: std::net::AddrParseError| AppError::Bind {
        addr: addr.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
    })?;
    let listener = tokio::net::TcpListener::bind(sock).await.map_err(|source| AppError::Bind { addr: addr.to_string(), source })?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await }).await;
    });
    Ok(())
}

fn local_ips() -> Vec<IpAddr> {
    if_addrs::get_if_addrs().map(|l| l.into_iter().map(|i| i.ip()).collect()).unwrap_or_default()
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default()
}

/// Removes the other modes' rules and prepares the host for the running `mode`.
fn start_up_host(
    cfg: &proxy_config::KubeProxyConfiguration,
    mode: proxy_config::ProxyMode,
    family: IpFamily,
    node_port_ips: Option<&[IpAddr]>,
) {
    let running = if mode == proxy_config::ProxyMode::NFTables { RunningMode::Nftables } else { RunningMode::IptablesBased };
    let report = cleanup_other_modes(running, None, Path::new("/proc/net"));
    for t in &report.nft_tables {
        tracing::info!("removed the nftables mode's table {t}");
    }
    if !report.iptables_chains.is_empty() {
        tracing::info!("removed {} iptables chains of the iptables mode", report.iptables_chains.len());
    }
    for e in &report.errors {
        tracing::warn!("cleaning up other proxy modes' rules: {e}");
    }
    let mut sysctl = crate::sysctl::ProcSysctl::default();
    host_setup::log_notes(&host_setup::prepare_host(cfg, mode, family, node_port_ips, &mut sysctl, Path::new("/proc"), Path::new("/sys")));
    tracing::info!("prepared the host for the {} mode", mode::mode_name(mode));
}

/// Runs kube-proxy until `shutdown`.
pub async fn run(opts: ProxyOptions, shutdown: CancellationToken) -> Result<(), AppError> {
    if opts.flags.cleanup {
        return cleanup(None);
    }
    // An empty mode means nftables when usable (else iptables).
    let mut config = opts.config.clone();
    config.mode = mode::effective_mode(config.mode, || mode::nft_usable(None));
    proxy_config::defaults::apply_platform_defaults(&mut config);
    let cfg = &config;
    let node_name = settings::node_name(cfg, &system_hostname());
    let client = client(&opts).await?;
    // Only NodeCIDR mode cannot start without the Node (it needs the pod CIDR).
    let attempts = if cfg.detect_local_mode == proxy_config::LocalMode::NodeCIDR { 30 } else { 1 };
    let node = get_node(&client, &node_name, attempts, &shutdown).await;
    if shutdown.is_cancelled() {
        return Ok(());
    }
    if node.is_none() {
        tracing::warn!("node {node_name:?} not found; proceeding without its IPs, zone and pod CIDR");
    }
    let node_ips = node.as_ref().map(settings::node_ips).unwrap_or_default();
    let family = node_ips.first().map(IpFamily::of).unwrap_or(IpFamily::V4);
    let detector = settings::local_detector(cfg, family, node.as_ref())?;
    let np_ips = settings::node_port_ips(cfg, family, &node_ips, &local_ips())?;
    let np_ips_for_setup = np_ips.clone();
    let topology =
        node.as_ref().map(sync_loop::node_topology).unwrap_or_else(|| crate::NodeTopology { name: node_name.clone(), zone: String::new() });
    let backend_cfg = settings::backend_config(cfg, family, topology, detector, np_ips, node_ips.first().copied())?;
    let (proxier, mode) = mode::build_proxier(backend_cfg, family, None);
    start_up_host(cfg, mode, family, np_ips_for_setup.as_deref());
    tracing::info!("using the {} proxier for {family:?} on node {node_name}", mode::mode_name(mode));
    let periods = settings::sync_periods_for(cfg, mode);
    let health = Arc::new(ProxierHealth::new(periods.sync_period * 2));
    let metrics = Arc::new(Metrics::for_family(if family == IpFamily::V6 { "IPv6" } else { "IPv4" }));
    serve(&cfg.healthz_bind_address, health::healthz_router(health.clone()), shutdown.clone()).await?;
    serve(&cfg.metrics_bind_address, health::metrics_router(metrics.clone()), shutdown.clone()).await?;

    let Some(v1) = serves_discovery_v1(&client, &shutdown).await else {
        return Ok(());
    };
    let (tx, rx) = mpsc::channel(1024);
    let sel = Some(PROXY_SELECTOR.to_string());
    let svc_sel = watch::Selectors { fields: None, labels: sel.clone() };
    tokio::spawn(watch::reflect(
        Api::<Service>::all(client.clone()),
        svc_sel,
        watch::slim_service,
        ProxyEvent::Services,
        tx.clone(),
        shutdown.clone(),
    ));
    let slice_sel = watch::Selectors { fields: None, labels: sel };
    if v1 {
        tokio::spawn(watch::reflect(
            Api::<EndpointSlice>::all(client.clone()),
            slice_sel,
            watch::slim_slice,
            ProxyEvent::Slices,
            tx.clone(),
            shutdown.clone(),
        ));
    } else {
        tracing::info!("the API server does not serve discovery.k8s.io/v1 EndpointSlices; watching discovery.k8s.io/v1beta1");
        tokio::spawn(watch::reflect(
            Api::<v1beta1::EndpointSlice>::all(client.clone()),
            slice_sel,
            |s| watch::slim_slice(EndpointSlice::from(s)),
            ProxyEvent::Slices,
            tx.clone(),
            shutdown.clone(),
        ));
    }
    let node_sel = watch::Selectors { fields: Some(format!("metadata.name={node_name}")), labels: None };
    tokio::spawn(watch::reflect(
        Api::<Node>::all(client.clone()),
        node_sel,
        std::convert::identity,
        ProxyEvent::Node,
        tx,
        shutdown.clone(),
    ));
    let outputs = Outputs { health: health.clone(), metrics, health_checks: service_health::ServiceHealthServers::new(health) };
    sync_loop::run(proxier, rx, periods, outputs, shutdown).await;
    Ok(())
}
