//! `knode join`: kubeadm's join, for our kubelet, in one command.
//!
//! 1. discovery: `cluster-info` fetched without trusting the server, its signature checked
//!    with the token and its CA with the pinned hash, then fetched again over TLS verified
//!    against that CA (or a given bootstrap kubeconfig instead);
//! 2. the cluster's KubeletConfiguration (`kube-system/kubelet-config`) when published;
//! 3. preflight checks ([`crate::preflight`]), before anything is written;
//! 4. the files, with upstream's paths and modes;
//! 5. the kubelet started: under systemd with the shipped units, or as a process from the
//!    same units' command line;
//! 6. waits for TLS bootstrap (`kubelet.conf`) and for the Node to be Ready.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::api::{self, ApiError};
use crate::discovery::{self, ClusterInfo, DiscoveryError};
use crate::facts::{self, KubeletSettings};
use crate::files::{self, FilesError};
use crate::layout::{
    BOOTSTRAP_KUBECONFIG, CA_CERT, KUBEADM_FLAGS, KUBELET_CONFIG, KUBELET_DIR, KUBELET_KUBECONFIG, KUBELET_PKI, Layout, MANIFESTS,
};
use crate::preflight::{self, Finding, Mode, Severity};
use crate::report::Report;
use crate::service::{self, ServiceError};
use crate::token::BootstrapToken;

/// How to find and authenticate to the cluster.
#[derive(Debug)]
pub enum Discovery {
    /// kubeadm's token discovery through `kube-public/cluster-info`.
    Token {
        /// The API server as given: `host:port` or an `https://` URL.
        server: String,
        /// The bootstrap token that signs `cluster-info` and authenticates the kubelet.
        token: BootstrapToken,
        /// `--ca-cert-hash` values (`sha256:<hex>`) the cluster CA's public key must match.
        pins: Vec<String>,
        /// `--unsafe-skip-ca-verification`: trust the token alone when no pin is given.
        unsafe_skip_ca_verification: bool,
    },
    /// A bootstrap kubeconfig given as is (`--bootstrap-kubeconfig`), naming the server and CA.
    BootstrapKubeconfig(PathBuf),
}

/// How the kubelet is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceMode {
    /// systemd when it runs, else a process.
    Auto,
    /// Install the units and start `kubelet.service` with `systemctl`.
    Systemd,
    /// Start the kubelet as a plain background process with the units' command line.
    Process,
}

/// What `knode join` was asked to do.
#[derive(Debug)]
pub struct JoinOptions {
    /// How to find the API server and trust it.
    pub discovery: Discovery,
    /// The node's name (`--node-name`, default the host name); given as `--hostname-override`.
    pub node_name: String,
    /// `--node-ip` for the kubelet, if given.
    pub node_ip: Option<String>,
    /// The container runtime's CRI endpoint (`--cri-socket`), written as `containerRuntimeEndpoint`.
    pub cri_socket: String,
    /// Where the CNI network configuration should be (`--cni-conf-dir`, default `/etc/cni/net.d`).
    pub cni_conf_dir: PathBuf,
    /// The kubelet binary (`--kubelet-binary`, default `/usr/bin/kubelet`).
    pub kubelet_binary: PathBuf,
    /// Where the node's files go (`--root`, default `/`).
    pub layout: Layout,
    /// Preflight checks whose errors only warn (`--ignore-preflight-errors`; `all` for every one).
    pub ignore_preflight_errors: Vec<String>,
    /// How the kubelet is started.
    pub service: ServiceMode,
    /// How long discovery may wait, and then TLS bootstrap and the Node turning Ready
    /// (`--timeout`, default 4 minutes).
    pub ready_timeout: Duration,
}

/// Why `knode join` stopped.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Token discovery refused `cluster-info` or the pins.
    #[error("discovery: {0}")]
    Discovery(#[from] DiscoveryError),
    /// An API server call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The given bootstrap kubeconfig is unreadable or names no server or CA.
    #[error("the bootstrap kubeconfig {path}: {reason}")]
    BootstrapKubeconfig {
        /// The kubeconfig's path, as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Preflight found this many errors not ignored; nothing was written.
    #[error("preflight found {0} error(s) (above): fix them, or pass --ignore-preflight-errors=<check>,… to go on regardless")]
    Preflight(usize),
    /// A node file could not be rendered or written.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// The kubelet could not be installed or started.
    #[error("starting the kubelet: {0}")]
    Service(#[from] ServiceError),
    /// TLS bootstrap or the Node turning Ready did not happen in time.
    #[error("{what} did not happen within {secs} s: {hint}")]
    Timeout {
        /// What was waited for (`node <name> Ready`).
        what: String,
        /// The whole wait allowed, in seconds.
        secs: u64,
        /// Where to look next.
        hint: String,
    },
}

/// Runs the join, reporting each step to `out`.
pub async fn join<W: Write>(opts: &JoinOptions, report: &mut Report<W>) -> Result<(), JoinError> {
    let layout = &opts.layout;
    // 1. Discovery.
    let (info, bootstrap_kubeconfig) = match &opts.discovery {
        Discovery::Token { server, token, pins, unsafe_skip_ca_verification } => {
            let server = api::server_url(server)?;
            report.step(format!("discovery: fetching cluster-info from {server} (not trusted yet)"));
            let deadline = Instant::now() + opts.ready_timeout;
            let info = token_discovery(&server, token, pins, *unsafe_skip_ca_verification, deadline, report).await?;
            let ca = if pins.is_empty() { "its CA NOT verified (--unsafe-skip-ca-verification)" } else { "its CA matches the pinned hash" };
            report.step(format!("discovery: cluster-info signed by token {} and {ca}; API server {}", token.id, info.server));
            let kubeconfig = files::bootstrap_kubeconfig(&info.server, &info.ca_pem, token);
            (info, kubeconfig)
        }
        Discovery::BootstrapKubeconfig(path) => {
            let (info, text) = read_bootstrap_kubeconfig(path)?;
            report.step(format!("discovery: bootstrap kubeconfig {} names API server {}", path.display(), info.server));
            (info, text)
        }
    };
    let client = api::from_kubeconfig_yaml(&bootstrap_kubeconfig, "the bootstrap kubeconfig").await?;

    // 2. The cluster's kubelet configuration.
    let cluster_config = api::kubelet_config(&client).await?;
    report.step(match &cluster_config {
        Some(_) => "kubelet configuration: from the cluster's kube-system/kubelet-config",
        None => "kubelet configuration: the cluster publishes none (kube-system/kubelet-config); using the kubelet's defaults",
    });
    let config_text = files::kubelet_config(cluster_config.as_deref(), &opts.cri_socket, layout)?;

    // 3. Preflight.
    let settings = KubeletSettings::from_config(Some(&config_text));
    let probe = facts::Probe {
        layout,
        settings: &settings,
        cri_socket: &opts.cri_socket,
        cni_conf_dir: &opts.cni_conf_dir,
        kubelet_binary: Some(&opts.kubelet_binary),
        api: Some(&client),
        node_name: &opts.node_name,
        check_node: true,
        check_client_cert: false,
        check_leftovers: true,
    };
    let findings = preflight::check(&facts::gather(&probe).await, Mode::Join, &opts.ignore_preflight_errors);
    report_findings(report, &findings);
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    if errors > 0 {
        return Err(JoinError::Preflight(errors));
    }

    // 4. Files.
    let mut flags = vec![format!("--hostname-override={}", opts.node_name)];
    flags.extend(opts.node_ip.iter().map(|ip| format!("--node-ip={ip}")));
    if !layout.is_host() {
        // Upstream's --cert-dir default is /var/lib/kubelet/pki whatever --root-dir says.
        flags.push(format!("--root-dir={}", layout.path(KUBELET_DIR).display()));
        flags.push(format!("--cert-dir={}", layout.path(KUBELET_PKI).display()));
    }
    let written = [
        (CA_CERT, String::from_utf8_lossy(&info.ca_pem).into_owned(), 0o644),
        (BOOTSTRAP_KUBECONFIG, bootstrap_kubeconfig, 0o600),
        (KUBELET_CONFIG, config_text, 0o644),
        (KUBEADM_FLAGS, files::kubeadm_flags_env(&flags), 0o644),
    ];
    for (path, text, mode) in &written {
        files::write(&layout.path(path), text, *mode)?;
        report.step(format!("wrote {} ({mode:o})", layout.path(path).display()));
    }
    std::fs::create_dir_all(layout.path(MANIFESTS))
        .map_err(|source| FilesError::Write { path: layout.path(MANIFESTS).display().to_string(), source })?;

    // 5. The kubelet.
    let systemd = match opts.service {
        ServiceMode::Auto => service::systemd_runs(),
        ServiceMode::Systemd => true,
        ServiceMode::Process => false,
    };
    if systemd {
        let units = service::install_units(layout)?;
        report.step(format!("installed {} and {}", units[0].display(), units[1].display()));
        service::systemctl(&["daemon-reload"])?;
        service::systemctl(&["enable", "kubelet"])?;
        service::systemctl(&["restart", "kubelet"])?;
        report.step("systemctl enable kubelet; systemctl restart kubelet");
    } else {
        service::stop_process(layout, Duration::from_secs(10));
        let pid = service::start_process(layout, &opts.kubelet_binary)?;
        report.step(format!(
            "systemd is not running here: started the kubelet as the units would (pid {pid}, log {}); start it at boot yourself",
            layout.path(crate::layout::LOG_FILE).display()
        ));
    }

    // 6. TLS bootstrap and Ready.
    let deadline = Instant::now() + opts.ready_timeout;
    let kubeconfig = layout.path(KUBELET_KUBECONFIG);
    wait(
        deadline,
        opts.ready_timeout,
        "the kubelet's TLS bootstrap (kubelet.conf)",
        "see the kubelet's log; is the CSR approved? (kubectl get csr)",
        || async { kubeconfig.exists().then_some(()) },
    )
    .await?;
    report.step(format!("TLS bootstrap done: client certificate issued, {} written", kubeconfig.display()));
    let node_client = api::from_kubeconfig(&kubeconfig).await?;
    wait(
        deadline,
        opts.ready_timeout,
        &format!("node {} Ready", opts.node_name),
        "see the kubelet's log and kubectl describe node",
        || async { api::node(&node_client, &opts.node_name).await.ok().flatten().filter(api::is_ready).map(|_| ()) },
    )
    .await?;
    report.step(format!("node {} is Ready ({:.1} s in all)", opts.node_name, report.elapsed().as_secs_f64()));
    Ok(())
}

/// kubeadm's token discovery: unverified fetch, signature, pins, verified fetch. A server not
/// answering yet and a `cluster-info` not signed yet for the token (the bootstrapsigner runs
/// after `kubeadm token create`) are waited for until `deadline`, as kubeadm does.
async fn token_discovery<W: Write>(
    server: &str,
    token: &BootstrapToken,
    pins: &[String],
    skip_ca: bool,
    deadline: Instant,
    report: &mut Report<W>,
) -> Result<ClusterInfo, JoinError> {
    let pins = pins.iter().map(|p| discovery::parse_pin(p)).collect::<Result<Vec<_>, _>>()?;
    if pins.is_empty() && !skip_ca {
        return Err(DiscoveryError::BadPin(
            "(none given): pass --ca-cert-hash, or --unsafe-skip-ca-verification to trust the token alone".into(),
        )
        .into());
    }
    let mut waiting_reported = false;
    let (first, info) = loop {
        let attempt = async {
            let first = api::cluster_info(&api::anonymous(server, None)?).await?;
            let info = discovery::verify(&first, token)?;
            Ok::<_, JoinError>((first, info))
        };
        match attempt.await {
            Ok(found) => break found,
            Err(e @ (JoinError::Discovery(DiscoveryError::NotSigned { .. }) | JoinError::Api(ApiError::Unreachable { .. })))
                if Instant::now() < deadline =>
            {
                if !waiting_reported {
                    report.step(format!("discovery: waiting ({e})"));
                    waiting_reported = true;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e),
        }
    };
    // Pins given are checked even with --unsafe-skip-ca-verification (which only allows none).
    if !pins.is_empty() {
        discovery::check_pins(&info, &pins)?;
    }
    let second = api::cluster_info(&api::anonymous(server, Some(&info.ca_pem))?).await?;
    if second.get(discovery::KUBECONFIG_KEY) != first.get(discovery::KUBECONFIG_KEY) {
        return Err(DiscoveryError::Changed.into());
    }
    Ok(info)
}

fn read_bootstrap_kubeconfig(path: &std::path::Path) -> Result<(ClusterInfo, String), JoinError> {
    let bad = |reason: String| JoinError::BootstrapKubeconfig { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let kc = kube::config::Kubeconfig::from_yaml(&text).map_err(|e| bad(e.to_string()))?;
    let cluster = kc.clusters.first().and_then(|c| c.cluster.clone()).ok_or_else(|| bad("no cluster".into()))?;
    let server = cluster.server.ok_or_else(|| bad("the cluster has no server".into()))?;
    let ca_pem = match (cluster.certificate_authority_data, cluster.certificate_authority) {
        (Some(data), _) => {
            base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|e| bad(format!("certificate-authority-data: {e}")))?
        }
        (None, Some(file)) => std::fs::read(&file).map_err(|e| bad(format!("certificate-authority {file}: {e}")))?,
        (None, None) => return Err(bad("the cluster names no certificate authority".into())),
    };
    Ok((ClusterInfo { server, ca_pem }, text))
}

fn report_findings<W: Write>(report: &mut Report<W>, findings: &[Finding]) {
    let problems = findings.iter().filter(|f| f.severity != Severity::Ok).count();
    report.step(format!("preflight: {} checks, {problems} problem(s)", findings.len()));
    for f in findings.iter().filter(|f| f.severity != Severity::Ok) {
        report.detail(f.to_string());
    }
}

async fn wait<F, Fut>(deadline: Instant, total: Duration, what: &str, hint: &str, mut check: F) -> Result<(), JoinError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    loop {
        if check().await.is_some() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(JoinError::Timeout { what: what.into(), secs: total.as_secs(), hint: hint.into() });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
