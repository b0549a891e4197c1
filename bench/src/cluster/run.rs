//! One measured run of one kubelet: clean slate (no benchmark pods, sandboxes or Node object),
//! start the kubelet, wait for Node Ready, idle for a while and sample it, create the pods and
//! time each to `Running`, settle and sample it again, watch it for a steady window (CPU and the
//! API requests it makes, from the API server's audit log), time its stats endpoints (after the
//! window, so their requests and CPU stay out of it), delete the pods (grace 0) and time until no
//! container runs, stop the kubelet, and clean up again — also when a step fails.

use std::time::{Duration, Instant};

use anyhow::Context;
use kubelet_cri::RemoteRuntime;
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::endpoints::{self, Latency};
use crate::kubelets::{self, Paths, Which};
use crate::node;
use crate::pods::{self, PodTimes};
use crate::proc_stats::{self, ProcSample};

/// Settings of a run.
pub struct Settings {
    pub pods: usize,
    pub image: String,
    /// Each pod has a readiness and a liveness probe every second (see `pods::pod`).
    pub probes: bool,
    /// Each pod has a ConfigMap volume and an environment variable from a Secret (see
    /// `pods::with_objects`).
    pub objects: bool,
    pub idle_wait: Duration,
    pub settle: Duration,
    /// The steady window at all pods: CPU per minute and API requests per minute.
    pub steady: Duration,
}

/// Everything one run measured (written as JSON, read back by `report`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    pub kubelet: String,
    pub round: usize,
    pub args: Vec<String>,
    pub load_before: String,
    pub load_after: String,
    pub allocatable: String,
    /// Process start until the Node is Ready.
    pub node_ready_s: f64,
    pub idle: ProcSample,
    pub loaded: ProcSample,
    /// Kubelet CPU seconds from the first create until the last pod Running.
    pub ramp_cpu_s: f64,
    /// containerd's CPU seconds over the same window.
    pub containerd_ramp_cpu_s: f64,
    /// Kubelet CPU seconds per second over the settle window, every pod running.
    pub steady_cpu_per_s: f64,
    /// Kubelet CPU seconds per minute over the steady window.
    #[serde(default)]
    pub steady_cpu_per_min: f64,
    /// Length of the steady window, seconds.
    #[serde(default)]
    pub steady_s: f64,
    /// API requests the node made in the steady window, by `verb resource`.
    #[serde(default)]
    pub steady_requests: std::collections::BTreeMap<String, u64>,
    /// `GET /stats/summary`, `/metrics/cadvisor` and `/metrics/resource` on the secure port, with
    /// every pod running, after the steady window.
    #[serde(default)]
    pub endpoints: Vec<Latency>,
    /// Kubelet CPU seconds while those requests were served (its background work included)…
    #[serde(default)]
    pub endpoints_cpu_s: f64,
    /// …and how long that took, seconds.
    #[serde(default)]
    pub endpoints_wall_s: f64,
    /// Pods deleted in the API until no benchmark container runs.
    pub teardown_s: f64,
    pub pods: Vec<(String, PodTimes)>,
}

/// Runs `which` once; cleans up whatever happens.
pub async fn run(
    which: Which,
    round: usize,
    paths: &Paths,
    settings: &Settings,
    client: &kube::Client,
    rt: &RemoteRuntime,
) -> anyhow::Result<RunResult> {
    clean(client, rt).await.context("cleaning up before the run")?;
    let load_before = proc_stats::load_average();
    let started = Instant::now();
    let kubelet = kubelets::start(which, paths, round).await?;
    let args = kubelet.args.clone();
    let snapshot = |name: &str| paths.out_dir.join(format!("{}-round{round}-{name}", which.name()));
    let measured = measure(&kubelet, settings, client, rt, started, snapshot).await;
    let stopped = kubelet.stop(paths).await;
    let cleaned = clean(client, rt).await;
    let mut result = measured.with_context(|| format!("{} kubelet, round {round} (logs in {})", which.name(), paths.out_dir.display()))?;
    stopped?;
    cleaned.context("cleaning up after the run")?;
    result.kubelet = which.name().into();
    result.round = round;
    result.args = args;
    result.load_before = load_before;
    result.load_after = proc_stats::load_average();
    Ok(result)
}

/// Removes benchmark pods from the API and containerd and the Node object.
async fn clean(client: &kube::Client, rt: &RemoteRuntime) -> anyhow::Result<()> {
    pods::delete_all(client, Duration::from_secs(60)).await?;
    node::remove_bench_pods(rt).await?;
    node::delete(client).await
}

/// `snapshot(name)` names a file kept in the output directory: the kubelet's `smaps_rollup` at
/// the idle and the loaded sample, the last body each stats endpoint served.
async fn measure(
    k: &kubelets::Running,
    s: &Settings,
    client: &kube::Client,
    rt: &RemoteRuntime,
    started: Instant,
    snapshot: impl Fn(&str) -> std::path::PathBuf,
) -> anyhow::Result<RunResult> {
    let ticks = proc_stats::clock_ticks();
    let node = node::wait_ready(client, Duration::from_secs(120), || k.alive()).await?;
    let node_ready_s = started.elapsed().as_secs_f64();
    let allocatable = node::allocatable(&node);
    eprintln!("  {}: node Ready after {node_ready_s:.2} s, allocatable {allocatable}", k.which.name());
    tokio::time::sleep(s.idle_wait).await;
    let idle = proc_stats::sample(k.pid, ticks)?;
    proc_stats::save_smaps_rollup(k.pid, &snapshot("idle.smaps_rollup"));

    let containerd = proc_stats::containerd_pid();
    let (kubelet_before, containerd_before) = (proc_stats::cpu_s(Some(k.pid), ticks), proc_stats::cpu_s(containerd, ticks));
    let start = Instant::now();
    let times = pods::create_and_wait_running(client, s.pods, &s.image, s.probes, s.objects, start, Duration::from_secs(300)).await?;
    let ramp_cpu_s = proc_stats::cpu_s(Some(k.pid), ticks) - kubelet_before;
    let containerd_ramp_cpu_s = proc_stats::cpu_s(containerd, ticks) - containerd_before;
    anyhow::ensure!(k.alive(), "the kubelet exited during the ramp");

    let settle_start = proc_stats::sample(k.pid, ticks)?;
    tokio::time::sleep(s.settle).await;
    let loaded = proc_stats::sample(k.pid, ticks)?;
    proc_stats::save_smaps_rollup(k.pid, &snapshot("loaded.smaps_rollup"));
    let steady_cpu_per_s = (loaded.cpu_s - settle_start.cpu_s) / s.settle.as_secs_f64();
    let running = node::running_containers(rt).await?;
    anyhow::ensure!(running == s.pods, "{running} of {} benchmark containers running after settling", s.pods);

    let cursor = audit::Cursor::at_end(&audit::log_path())?;
    let steady_start = proc_stats::cpu_s(Some(k.pid), ticks);
    tokio::time::sleep(s.steady).await;
    let steady_cpu_per_min = (proc_stats::cpu_s(Some(k.pid), ticks) - steady_start) * 60.0 / s.steady.as_secs_f64();
    let steady_requests = cursor.count_since(&format!("system:node:{}", kubelets::NODE))?;
    anyhow::ensure!(k.alive(), "the kubelet exited during the steady window");

    let (probe_start, probe_cpu) = (Instant::now(), proc_stats::cpu_s(Some(k.pid), ticks));
    let endpoints = endpoints::measure(|name| snapshot(&format!("{name}.txt"))).await.context("timing the stats endpoints")?;
    let endpoints_cpu_s = proc_stats::cpu_s(Some(k.pid), ticks) - probe_cpu;
    let endpoints_wall_s = probe_start.elapsed().as_secs_f64();
    for l in &endpoints {
        eprintln!("  {}: GET {} p50 {:.1} ms, max {:.1} ms, {} bytes", k.which.name(), l.path, l.p50_ms(), l.max_ms(), l.bytes);
    }

    let t = Instant::now();
    pods::delete_all(client, Duration::from_secs(120)).await?;
    let teardown_s = node::wait_no_running(rt, t, Duration::from_secs(120)).await?.as_secs_f64();
    Ok(RunResult {
        kubelet: String::new(),
        round: 0,
        args: Vec::new(),
        load_before: String::new(),
        load_after: String::new(),
        allocatable,
        node_ready_s,
        idle,
        loaded,
        ramp_cpu_s,
        containerd_ramp_cpu_s,
        steady_cpu_per_s,
        steady_cpu_per_min,
        steady_s: s.steady.as_secs_f64(),
        steady_requests,
        endpoints,
        endpoints_cpu_s,
        endpoints_wall_s,
        teardown_s,
        pods: times,
    })
}
