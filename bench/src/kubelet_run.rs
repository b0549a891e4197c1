//! One benchmark run of the real kubelet binary: start it on an empty manifest directory, measure
//! it idle, drop all manifests in at once, time until every container runs (seen over CRI, and
//! until `/pods` reports every pod `Running`), measure it with the pods, remove the manifests and
//! time the teardown, then stop it with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use kubelet_cri::RemoteRuntime;

use crate::probe::{self, ProcSample};
use crate::workload::{self, NODE_NAME, NodeConfig};

/// Settings shared by every kubelet run.
pub struct KubeletBench<'a> {
    pub binary: &'a Path,
    pub endpoint: &'a str,
    pub image: &'a str,
    pub pods: usize,
    pub idle_wait: Duration,
    pub settle: Duration,
    pub ticks: f64,
    /// Where the kubelet's log and `smaps_rollup` snapshots are kept.
    pub out_dir: &'a Path,
}

/// What one kubelet run measured.
#[derive(Clone, Debug)]
pub struct KubeletRun {
    pub idle: ProcSample,
    pub loaded: ProcSample,
    /// From the manifests' rename into the directory until CRI shows every container running.
    pub all_running: Duration,
    /// Until `/pods` reports every pod with phase `Running`.
    pub all_reported: Duration,
    /// Kubelet CPU seconds from the manifests until all running.
    pub startup_cpu_s: f64,
    /// containerd's CPU seconds over the same window.
    pub containerd_cpu_s: f64,
    /// Kubelet CPU seconds per second while idle with every pod running (the settle window).
    pub loaded_cpu_per_s: f64,
    /// From removing the manifests until no benchmark sandbox is left.
    pub teardown: Duration,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Pods that `/pods` reports in phase `Running`.
async fn reported_running(addr: &str) -> usize {
    let Ok((200, body)) = probe::http_get(addr, "/pods").await else { return 0 };
    let Ok(list) = serde_json::from_str::<serde_json::Value>(&body) else { return 0 };
    list["items"]
        .as_array()
        .map(|items| {
            items.iter().filter(|p| p["status"]["phase"] == "Running" && p["metadata"]["namespace"] == workload::NAMESPACE).count()
        })
        .unwrap_or(0)
}

/// A kubelet child process, killed if the run fails half-way.
struct Child(tokio::process::Child);

impl Child {
    fn pid(&self) -> u32 {
        self.0.id().unwrap_or(0)
    }

    async fn terminate(mut self) -> anyhow::Result<()> {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        match tokio::time::timeout(Duration::from_secs(20), self.0.wait()).await {
            Ok(r) => {
                r?;
            }
            Err(_) => {
                self.0.start_kill()?;
                self.0.wait().await?;
            }
        }
        Ok(())
    }
}

impl KubeletBench<'_> {
    /// Runs the kubelet once; `n` numbers the run in file names.
    pub async fn run(&self, rt: &RemoteRuntime, n: usize) -> anyhow::Result<KubeletRun> {
        let dir = tempfile::Builder::new().prefix("knode-bench-kubelet-").tempdir()?;
        let staging = dir.path().join("staging");
        let node = NodeConfig {
            manifests: dir.path().join("manifests"),
            logs: dir.path().join("logs"),
            healthz_port: free_port()?,
            read_only_port: free_port()?,
            endpoint: self.endpoint.into(),
        };
        for d in [&node.manifests, &node.logs, &staging, &dir.path().join("root")] {
            std::fs::create_dir_all(d)?;
        }
        let config = dir.path().join("kubelet-config.yaml");
        std::fs::write(&config, node.yaml())?;
        let log: PathBuf = self.out_dir.join(format!("kubelet-run{n}.log"));
        let child = tokio::process::Command::new(self.binary)
            .arg(format!("--config={}", config.display()))
            .arg(format!("--root-dir={}", dir.path().join("root").display()))
            .arg(format!("--hostname-override={NODE_NAME}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let child = Child(child);
        let pid = child.pid();
        let result = self.measure(rt, &node, &staging, pid, n).await;
        // Whatever happened, leave containerd clean for the next run.
        let _ = std::fs::remove_dir_all(&node.manifests);
        if result.is_err() {
            let _ = probe::remove_bench_pods(rt).await;
        }
        child.terminate().await?;
        probe::remove_bench_pods(rt).await?;
        result.with_context(|| format!("kubelet run {n} (log: {})", log.display()))
    }

    async fn measure(&self, rt: &RemoteRuntime, node: &NodeConfig, staging: &Path, pid: u32, n: usize) -> anyhow::Result<KubeletRun> {
        let healthz = format!("127.0.0.1:{}", node.healthz_port);
        let ready = Instant::now();
        while !matches!(probe::http_get(&healthz, "/healthz").await, Ok((200, _))) {
            anyhow::ensure!(ready.elapsed() < Duration::from_secs(30), "kubelet /healthz did not answer in 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(self.idle_wait).await;
        let idle = probe::sample(pid, self.ticks)?;
        std::fs::write(self.out_dir.join(format!("smaps-idle-run{n}.txt")), probe::smaps_rollup(pid))?;

        for i in 0..self.pods {
            std::fs::write(staging.join(workload::manifest_file(i)), workload::manifest(i, self.image))?;
        }
        let containerd = probe::containerd_pid();
        let cpu = |pid: Option<u32>| pid.and_then(|p| probe::sample(p, self.ticks).ok()).map_or(0.0, |s| s.cpu_s);
        let (kubelet_before, containerd_before) = (cpu(Some(pid)), cpu(containerd));
        let start = Instant::now();
        for i in 0..self.pods {
            let file = workload::manifest_file(i);
            std::fs::rename(staging.join(&file), node.manifests.join(&file))?;
        }
        let all_running = probe::wait_running(rt, self.pods, start, Duration::from_secs(300)).await?;
        let (startup_cpu_s, containerd_cpu_s) = (cpu(Some(pid)) - kubelet_before, cpu(containerd) - containerd_before);
        let read_only = format!("127.0.0.1:{}", node.read_only_port);
        while reported_running(&read_only).await < self.pods {
            anyhow::ensure!(start.elapsed() < Duration::from_secs(300), "/pods did not report every pod Running");
            tokio::time::sleep(probe::POLL).await;
        }
        let all_reported = start.elapsed();

        let settle_start = probe::sample(pid, self.ticks)?;
        tokio::time::sleep(self.settle).await;
        let loaded = probe::sample(pid, self.ticks)?;
        let loaded_cpu_per_s = (loaded.cpu_s - settle_start.cpu_s) / self.settle.as_secs_f64();
        std::fs::write(self.out_dir.join(format!("smaps-loaded-run{n}.txt")), probe::smaps_rollup(pid))?;
        anyhow::ensure!(probe::running_containers(rt).await? == self.pods, "containers stopped while settling");

        let t = Instant::now();
        for i in 0..self.pods {
            std::fs::remove_file(node.manifests.join(workload::manifest_file(i)))?;
        }
        let teardown = probe::wait_no_sandboxes(rt, t, Duration::from_secs(120)).await?;
        Ok(KubeletRun { idle, loaded, all_running, all_reported, startup_cpu_s, containerd_cpu_s, loaded_cpu_per_s, teardown })
    }
}
