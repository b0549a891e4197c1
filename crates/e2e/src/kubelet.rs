//! A test node (temporary root, manifest and log directories, free loopback ports, a
//! `KubeletConfiguration` file) and the kubelet process running on it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use crate::{containerd_socket, free_port, http_get, wait_for};

/// Node name every e2e kubelet uses (`--hostname-override`).
pub const NODE_NAME: &str = "e2e-node";

/// Directories, ports and config of one test kubelet. Removes its directories on drop.
pub struct TestNode {
    /// The node's temporary directory (`knode-e2e-*`), holding `manifests`, `root`, `logs`,
    /// the config file and the kubelet logs.
    pub dir: tempfile::TempDir,
    /// Free loopback port for the kubelet's `/healthz` (`healthzPort`).
    pub healthz_port: u16,
    /// Free loopback port for the kubelet's read-only API (`readOnlyPort`).
    pub read_only_port: u16,
}

impl Drop for TestNode {
    /// The kubelet bind-mounts its root directory on itself (shared propagation, as upstream)
    /// and leaves it mounted; detach it so the directory can be removed.
    fn drop(&mut self) {
        let root = self.root();
        let mounted = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|m| m.lines().any(|l| l.split(' ').nth(4).map(Path::new) == Some(root.as_path())))
            .unwrap_or(false);
        if mounted {
            let _ = std::process::Command::new("umount").arg("--lazy").arg(&root).status();
        }
    }
}

impl TestNode {
    /// Makes the directories, picks two free ports and writes the default config.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("knode-e2e-").tempdir().expect("tempdir");
        for sub in ["manifests", "root", "logs"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let node = Self { dir, healthz_port: free_port(), read_only_port: free_port() };
        node.write_config("");
        node
    }

    /// The static pod directory (`staticPodPath`).
    pub fn manifests(&self) -> PathBuf {
        self.dir.path().join("manifests")
    }
    /// The kubelet's root directory (`--root-dir`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    /// The container log directory (`podLogsDir`).
    pub fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }
    /// The KubeletConfiguration file passed as `--config`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("kubelet-config.yaml")
    }

    /// Writes the KubeletConfiguration, with `extra` YAML lines appended. Disk-based eviction
    /// thresholds and image garbage collection are off (as kind does): the test machine's disk
    /// is shared with other work, DiskPressure would make the scheduler and node admission
    /// refuse every test pod, and image GC would remove the shared containerd's images.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
             staticPodPath: {}\npodLogsDir: {}\nhealthzBindAddress: 127.0.0.1\nhealthzPort: {}\n\
             address: 127.0.0.1\nreadOnlyPort: {}\ncontainerRuntimeEndpoint: unix://{}\n\
             failSwapOn: false\ncgroupsPerQOS: false\nenforceNodeAllocatable: []\nsyncFrequency: 10s\n\
             evictionHard: {{memory.available: 100Mi, nodefs.available: \"0%\", nodefs.inodesFree: \"0%\", imagefs.available: \"0%\"}}\n\
             imageGCHighThresholdPercent: 100\nimageGCLowThresholdPercent: 99\n{extra}",
            self.manifests().display(),
            self.logs().display(),
            self.healthz_port,
            self.read_only_port,
            containerd_socket(),
        );
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// Writes a manifest file into the static pod directory (atomically, via rename).
    pub fn write_manifest(&self, file: &str, content: &str) {
        let tmp = self.dir.path().join(format!(".{file}.tmp"));
        std::fs::write(&tmp, content).expect("write manifest");
        std::fs::rename(&tmp, self.manifests().join(file)).expect("rename manifest");
    }

    /// Deletes manifest `file` from the static pod directory.
    pub fn remove_manifest(&self, file: &str) {
        std::fs::remove_file(self.manifests().join(file)).expect("remove manifest");
    }

    /// The pods the read-only port reports.
    pub async fn pods(&self) -> Vec<Pod> {
        let Ok((200, body)) = http_get(&format!("127.0.0.1:{}", self.read_only_port), "/pods").await else {
            return Vec::new();
        };
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        serde_json::from_value(list["items"].clone()).unwrap_or_default()
    }

    /// The pod whose name starts with `name` (static pods get `-<node>` appended).
    pub async fn pod(&self, name: &str) -> Option<Pod> {
        let full = format!("{name}-{NODE_NAME}");
        self.pods().await.into_iter().find(|p| p.metadata.name.as_deref() == Some(full.as_str()))
    }

    /// Waits until pod `name` reports `phase`.
    pub async fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> Pod {
        wait_for(&format!("pod {name} phase {phase}"), timeout, || async {
            self.pod(name).await.filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase))
        })
        .await
    }
}

impl Default for TestNode {
    fn default() -> Self {
        Self::new()
    }
}

/// A running kubelet; killed (SIGKILL) on drop. Its stderr goes to `<node>/kubelet-N.log`, which
/// is kept in `$KNODE_E2E_LOG_DIR` (default `/var/log/knode/e2e`) when the test is failing.
pub struct KubeletProcess {
    child: tokio::process::Child,
    /// The file the kubelet's stderr goes to (`<node>/kubelet-N.log`).
    pub log: PathBuf,
}

impl KubeletProcess {
    /// Starts `binary` on `node` with extra flags, and waits for `/healthz`.
    pub async fn start(binary: &Path, node: &TestNode, extra: &[&str]) -> Self {
        let n = std::fs::read_dir(node.dir.path()).map(|d| d.count()).unwrap_or(0);
        let log = node.dir.path().join(format!("kubelet-{n}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = tokio::process::Command::new(binary)
            .arg(format!("--config={}", node.config_path().display()))
            .arg(format!("--root-dir={}", node.root().display()))
            // The self-signed serving certificate stays with the node (upstream's default
            // --cert-dir is the host's /var/lib/kubelet/pki, whatever --root-dir says).
            .arg(format!("--cert-dir={}", node.root().join("pki").display()))
            .arg(format!("--hostname-override={NODE_NAME}"))
            .arg("--v=2")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn kubelet");
        let proc = Self { child, log };
        let addr = format!("127.0.0.1:{}", node.healthz_port);
        wait_for("kubelet /healthz", Duration::from_secs(30), || async {
            matches!(http_get(&addr, "/healthz").await, Ok((200, _))).then_some(())
        })
        .await;
        proc
    }

    /// The kubelet's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the kubelet with SIGTERM and waits for it to exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        }
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(Ok(status)) => status,
            _ => {
                let _ = self.child.start_kill();
                self.child.wait().await.expect("wait kubelet")
            }
        }
    }
}

impl Drop for KubeletProcess {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let dir = PathBuf::from(std::env::var("KNODE_E2E_LOG_DIR").unwrap_or_else(|_| "/var/log/knode/e2e".into()));
        let test = std::thread::current().name().unwrap_or("test").replace("::", "-");
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let file = self.log.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let kept = dir.join(format!("{test}-{stamp}-{file}"));
        if std::fs::create_dir_all(&dir).and_then(|_| std::fs::copy(&self.log, &kept)).is_ok() {
            eprintln!("kubelet log kept: {}", kept.display());
        }
    }
}
