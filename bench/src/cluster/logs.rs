//! The container log benchmark: `kubectl logs --tail=100` of a container whose log file holds
//! more than 1 GiB, ours against upstream's, each in turn as node `knode-node`.
//!
//! A round: the kubelet runs with `containerLogMaxSize: 4Gi` (no rotation during the round);
//! one pod writes 1 GiB of 100-byte lines (`head -c 1G /dev/zero | tr | fold`) and then sleeps;
//! once its CRI log file has stopped growing, the API server's `pods/log` with `tailLines=100`
//! (what `kubectl logs --tail=100` asks) is read five times through the kubelet. The figures are
//! each read's time and the kubelet's resident memory before and after the reads (and its peak,
//! `VmHWM`, which also covers the pod's start).

use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use kubelet_cri::{RemoteRuntime, RuntimeService};
use serde::{Deserialize, Serialize};

use crate::kubelets::{self, Paths, Which};
use crate::{node, pods, proc_stats};

const LOGGER: &str = "bench-logger";
const READS: usize = 5;

/// One round's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsResult {
    pub kubelet: String,
    pub round: usize,
    pub log_mib: u64,
    /// Each `tailLines=100` read, in ms.
    pub tail_ms: Vec<f64>,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    pub hwm_mib: f64,
}

fn logger(image: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": LOGGER, "namespace": pods::NAMESPACE, "labels": {"app": "knode-bench"}},
        "spec": {
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "logger", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "head -c 1073741824 /dev/zero | tr '\\0' x | fold -w 99; sleep 3600"],
            }],
        },
    }))?)
}

/// The logger's CRI log file, once the container runs.
async fn log_path(rt: &RemoteRuntime) -> anyhow::Result<String> {
    for c in rt.list_containers(None).await? {
        if c.labels.get("io.kubernetes.pod.name").map(String::as_str) == Some(LOGGER) {
            return Ok(rt.container_status(&c.id).await?.log_path);
        }
    }
    anyhow::bail!("no container of {LOGGER} in the runtime")
}

/// Waits until the file is over 1 GiB and has not grown for 3 s; returns its size.
async fn wait_written(path: &str, timeout: Duration) -> anyhow::Result<u64> {
    let start = Instant::now();
    let (mut last, mut since) = (0u64, Instant::now());
    loop {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size != last {
            (last, since) = (size, Instant::now());
        } else if size > 1 << 30 && since.elapsed() > Duration::from_secs(3) {
            return Ok(size);
        }
        anyhow::ensure!(start.elapsed() < timeout, "the log reached {} MiB in {timeout:?}", size >> 20);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One round with `which`.
pub async fn run(
    which: Which,
    round: usize,
    paths: &Paths,
    image: &str,
    client: &kube::Client,
    rt: &RemoteRuntime,
) -> anyhow::Result<LogsResult> {
    clean(client, rt).await?;
    let kubelet = kubelets::start_with(which, paths, round, "100Mi", "containerLogMaxSize: 4Gi\n").await?;
    let measured = measure(&kubelet, which, round, image, client, rt).await;
    // The 1.5 GiB log is removed with its pod's log directory (neither kubelet garbage-collects
    // it before it stops).
    let pod_log_dir = log_path(rt).await.ok().and_then(|p| Some(std::path::Path::new(&p).parent()?.parent()?.to_path_buf()));
    let stopped = kubelet.stop(paths).await;
    let cleaned = clean(client, rt).await;
    if let Some(dir) = pod_log_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let result = measured.with_context(|| format!("{} kubelet, logs round {round}", which.name()))?;
    stopped?;
    cleaned?;
    Ok(result)
}

async fn measure(
    k: &kubelets::Running,
    which: Which,
    round: usize,
    image: &str,
    client: &kube::Client,
    rt: &RemoteRuntime,
) -> anyhow::Result<LogsResult> {
    node::wait_ready(client, Duration::from_secs(120), || k.alive()).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), pods::NAMESPACE);
    api.create(&PostParams::default(), &logger(image)?).await?;
    let start = Instant::now();
    let path = loop {
        if let Ok(p) = log_path(rt).await {
            break p;
        }
        anyhow::ensure!(start.elapsed() < Duration::from_secs(120), "{LOGGER} never started");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let size = wait_written(&path, Duration::from_secs(600)).await?;
    let ticks = proc_stats::clock_ticks();
    let before = proc_stats::sample(k.pid, ticks)?;
    let mut tail_ms = Vec::new();
    for _ in 0..READS {
        let t = Instant::now();
        let text = api.logs(LOGGER, &LogParams { tail_lines: Some(100), ..Default::default() }).await?;
        tail_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(text.lines().count() == 100, "tailLines=100 gave {} lines", text.lines().count());
    }
    let after = proc_stats::sample(k.pid, ticks)?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(LogsResult {
        kubelet: which.name().into(),
        round,
        log_mib: size >> 20,
        tail_ms,
        rss_before_mib: mib(before.rss_kib),
        rss_after_mib: mib(after.rss_kib),
        hwm_mib: mib(after.hwm_kib),
    })
}

async fn clean(client: &kube::Client, rt: &RemoteRuntime) -> anyhow::Result<()> {
    pods::delete_all(client, Duration::from_secs(60)).await?;
    node::remove_bench_pods(rt).await?;
    node::delete(client).await
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// The rounds as a table, with each kubelet's median read and the ratio of ours to upstream's.
pub fn report(results: &[LogsResult]) -> String {
    let mut out = String::from("kubelet   round  log MiB  tail=100 reads (ms)                 RSS before → after  peak\n");
    for r in results {
        let reads: Vec<String> = r.tail_ms.iter().map(|m| format!("{m:.0}")).collect();
        out.push_str(&format!(
            "{:<9} {:>5}  {:>7}  {:<34}  {:>6.1} → {:>6.1} MiB  {:>6.1} MiB\n",
            r.kubelet,
            r.round,
            r.log_mib,
            reads.join(" "),
            r.rss_before_mib,
            r.rss_after_mib,
            r.hwm_mib
        ));
    }
    let med = |k: &str| {
        let v: Vec<f64> = results.iter().filter(|r| r.kubelet == k).flat_map(|r| r.tail_ms.clone()).collect();
        (!v.is_empty()).then(|| median(&v))
    };
    if let (Some(o), Some(u)) = (med("ours"), med("upstream")) {
        out.push_str(&format!("median read: ours {o:.0} ms, upstream {u:.0} ms, ratio ours/upstream {:.2}\n", o / u));
    }
    out
}
