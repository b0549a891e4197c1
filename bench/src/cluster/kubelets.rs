//! The two kubelets under comparison, as node `knode-node` (node IP 198.18.255.1) against the
//! shared control plane and containerd:
//!
//! - **ours**: the release binary, started here in cluster mode with a `KubeletConfiguration`
//!   like the cluster end-to-end tests' (`cmd/kubelet/tests/cluster_support`) and the node
//!   kubeconfig; stopped with SIGTERM.
//! - **upstream**: kubelet 1.37 started and stopped by `hack/control-plane.sh kubelet-up` /
//!   `kubelet-down` (its flags are in `hack/lib/control-plane-kubelet.sh`); found by its
//!   executable and `--root-dir` in `/proc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;

use crate::proc_stats;

pub const NODE: &str = "knode-node";
pub const NODE_IP: &str = "198.18.255.1";
pub const CP_DIR: &str = "/var/lib/knode/control-plane";
const UPSTREAM_ROOT_ARG: &str = "--root-dir=/var/lib/knode/upstream-kubelet";

/// Which kubelet a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Ours,
    Upstream,
}

impl Which {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "ours" => Ok(Self::Ours),
            "upstream" => Ok(Self::Upstream),
            other => anyhow::bail!("--kubelet must be ours or upstream, not {other:?}"),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Upstream => "upstream",
        }
    }
}

/// Where to find things.
pub struct Paths {
    pub repo: PathBuf,
    pub ours: PathBuf,
    pub upstream: PathBuf,
    pub containerd_endpoint: String,
    pub out_dir: PathBuf,
}

/// A running kubelet: its PID, its command line, and what stops it.
pub struct Running {
    pub which: Which,
    pub pid: u32,
    pub args: Vec<String>,
    child: Option<tokio::process::Child>,
    _root: Option<tempfile::TempDir>,
}

/// Our kubelet's configuration: the cluster e2e tests' settings with pod and QoS cgroups (as
/// upstream's, under a cgroup root of its own, so both collect stats the same way), default sync
/// frequency, and the
/// default API and event rate limits (50 QPS, burst 100, as upstream 1.37's), so both kubelets have
/// the same API budget. Disk eviction thresholds are
/// off for both (the machine's disk is shared; DiskPressure would keep every pod Pending).
/// Port 10250 is served as upstream's is (and as the e2e tests' `secure_config` does): on the
/// node IP with the cluster's serving certificate, client certificates from the cluster CA,
/// webhook authentication and authorization.
fn ours_config(dir: &Path, endpoint: &str, memory_available: &str, extra: &str) -> String {
    let pki = format!("{CP_DIR}/pki");
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         podLogsDir: {}\nhealthzBindAddress: 127.0.0.1\nhealthzPort: 10248\naddress: {NODE_IP}\n\
         readOnlyPort: 0\ncontainerRuntimeEndpoint: {endpoint}\nfailSwapOn: false\n\
         cgroupsPerQOS: true\ncgroupRoot: /knode-cluster-bench\n\
         evictionHard: {{memory.available: {memory_available}, nodefs.available: \"0%\", nodefs.inodesFree: \"0%\", imagefs.available: \"0%\"}}\n\
         imageGCHighThresholdPercent: 100\nimageGCLowThresholdPercent: 99\n\
         tlsCertFile: {pki}/kubelet-serving-{NODE}.crt\ntlsPrivateKeyFile: {pki}/kubelet-serving-{NODE}.key\n\
         authentication:\n  x509: {{clientCAFile: {pki}/ca.crt}}\n  webhook: {{enabled: true}}\n  anonymous: {{enabled: false}}\n\
         authorization: {{mode: Webhook}}\n{extra}",
        dir.join("logs").display()
    )
}

/// Starts one kubelet; returns once its process is found (not yet Ready).
pub async fn start(which: Which, paths: &Paths, round: usize) -> anyhow::Result<Running> {
    start_with_memory_threshold(which, paths, round, "100Mi").await
}

/// [`start`] with `evictionHard`'s `memory.available` set to `memory_available` (a quantity)
/// for either kubelet.
pub async fn start_with_memory_threshold(which: Which, paths: &Paths, round: usize, memory_available: &str) -> anyhow::Result<Running> {
    start_with(which, paths, round, memory_available, "").await
}

/// [`start_with_memory_threshold`] with `extra` YAML lines in either kubelet's configuration.
pub async fn start_with(which: Which, paths: &Paths, round: usize, memory_available: &str, extra: &str) -> anyhow::Result<Running> {
    match which {
        Which::Ours => {
            let dir = tempfile::Builder::new().prefix("knode-cluster-bench-").tempdir()?;
            for sub in ["logs", "root"] {
                std::fs::create_dir_all(dir.path().join(sub))?;
            }
            let config = dir.path().join("kubelet-config.yaml");
            std::fs::write(&config, ours_config(dir.path(), &paths.containerd_endpoint, memory_available, extra))?;
            let args = vec![
                paths.ours.display().to_string(),
                format!("--config={}", config.display()),
                format!("--root-dir={}", dir.path().join("root").display()),
                format!("--kubeconfig={CP_DIR}/node.kubeconfig"),
                format!("--node-ip={NODE_IP}"),
                format!("--hostname-override={NODE}"),
                // KNODE_BENCH_KUBELET_V raises our kubelet's log level for a closer look.
                format!("--v={}", std::env::var("KNODE_BENCH_KUBELET_V").unwrap_or_else(|_| "1".into())),
            ];
            let log = paths.out_dir.join(format!("ours-round{round}.log"));
            let child = tokio::process::Command::new(&args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", paths.ours.display()))?;
            let pid = child.id().context("our kubelet exited at once")?;
            Ok(Running { which, pid, args, child: Some(child), _root: Some(dir) })
        }
        Which::Upstream => {
            let status = tokio::process::Command::new(paths.repo.join("hack/control-plane.sh"))
                .arg("kubelet-up")
                .env("KNODE_UPSTREAM_KUBELET_MEMORY_AVAILABLE", memory_available)
                .env("KNODE_UPSTREAM_KUBELET_EXTRA_CONFIG", extra)
                .status()
                .await?;
            anyhow::ensure!(status.success(), "hack/control-plane.sh kubelet-up failed");
            let exe = paths.upstream.display().to_string();
            let (pid, args) =
                proc_stats::find_process(&exe, UPSTREAM_ROOT_ARG).with_context(|| format!("no process {exe} {UPSTREAM_ROOT_ARG}"))?;
            Ok(Running { which, pid, args, child: None, _root: None })
        }
    }
}

impl Running {
    /// Stops the kubelet (SIGTERM for ours, `kubelet-down` for upstream, which also removes the
    /// sandboxes it ran and its Node object).
    pub async fn stop(mut self, paths: &Paths) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
            if tokio::time::timeout(Duration::from_secs(20), child.wait()).await.is_err() {
                child.start_kill()?;
                child.wait().await?;
            }
        }
        // Our kubelet bind-mounts its root dir on itself (shared propagation, as upstream):
        // unmount it so the temporary directory can go.
        if let Some(dir) = &self._root {
            let _ = std::process::Command::new("umount").arg("--lazy").arg(dir.path().join("root")).status();
        }
        if self.which == Which::Upstream {
            let status = tokio::process::Command::new(paths.repo.join("hack/control-plane.sh")).arg("kubelet-down").status().await?;
            anyhow::ensure!(status.success(), "hack/control-plane.sh kubelet-down failed");
        }
        Ok(())
    }

    /// Whether the process still runs.
    pub fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}
