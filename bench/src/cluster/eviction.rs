//! The eviction benchmark: how long after the node crosses a memory eviction threshold the
//! kubelet evicts a pod, ours against upstream's, each in turn as node `knode-node`.
//!
//! A round: `evictionHard: memory.available` is set 1 GiB below what the machine has
//! available now; one Burstable pod runs and has been sampled; then this process fills a file
//! in the host's `/dev/shm` (tmpfs: anonymous memory, nothing is exhausted) in 32 MiB steps
//! until `memory.available` (computed as both kubelets do: MemTotal minus the root memory
//! cgroup's working set) is below the threshold, plus 256 MiB of margin. The
//! figure is the time from that crossing to the API showing the pod `Failed` with reason
//! `Evicted`. The file is removed at the end of the round.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kubelet_cri::RemoteRuntime;
use serde::{Deserialize, Serialize};

use crate::kubelets::{self, Paths, Which};
use crate::{node, pods};

const VICTIM: &str = "bench-victim";
const MARGIN: i64 = 1 << 30;
const EXTRA: i64 = 256 << 20;
const STEP: usize = 32 << 20;
const HOG: &str = "/dev/shm/knode-eviction-bench-hog";

/// One round's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvictionResult {
    pub kubelet: String,
    pub round: usize,
    /// `memory.available` before the round, and the threshold set, in MiB.
    pub available_mib: i64,
    pub threshold_mib: i64,
    /// Time from the crossing to the API showing the pod evicted.
    pub eviction_ms: f64,
    /// How much this process wrote to cross it (MiB).
    pub hog_mib: usize,
}

/// `memory.available` as both kubelets compute it on a cgroup v1 host: MemTotal minus the root
/// memory cgroup's usage less its inactive file pages (on other hosts: MemFree +
/// Inactive(file)), bytes.
fn memory_available() -> anyhow::Result<i64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    let kib = |key: &str| -> anyhow::Result<i64> {
        let line = text.lines().find(|l| l.split(':').next() == Some(key)).with_context(|| format!("no {key} in /proc/meminfo"))?;
        Ok(line.split_whitespace().nth(1).context("meminfo value")?.parse()?)
    };
    let root = std::path::Path::new("/sys/fs/cgroup/memory");
    if let (Ok(usage), Ok(stat)) =
        (std::fs::read_to_string(root.join("memory.usage_in_bytes")), std::fs::read_to_string(root.join("memory.stat")))
    {
        let usage: i64 = usage.trim().parse()?;
        let inactive: i64 =
            stat.lines().find_map(|l| l.strip_prefix("total_inactive_file ")).context("no total_inactive_file")?.trim().parse()?;
        return Ok(kib("MemTotal")? * 1024 - (usage - inactive));
    }
    Ok((kib("MemFree")? + kib("Inactive(file)")?) * 1024)
}

fn victim(image: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": VICTIM, "namespace": pods::NAMESPACE, "labels": {"app": "knode-bench"}},
        "spec": {
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "sleep", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "1m", "memory": "16Mi"}},
            }],
        },
    }))?)
}

fn phase_reason(p: &Pod) -> (Option<&str>, Option<&str>) {
    let s = p.status.as_ref();
    (s.and_then(|s| s.phase.as_deref()), s.and_then(|s| s.reason.as_deref()))
}

async fn wait_pod(api: &Api<Pod>, what: &str, timeout: Duration, done: impl Fn(&Pod) -> bool) -> anyhow::Result<Instant> {
    let start = Instant::now();
    loop {
        if let Some(p) = api.get_opt(VICTIM).await?
            && done(&p)
        {
            return Ok(Instant::now());
        }
        anyhow::ensure!(start.elapsed() < timeout, "{what}: not after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fills the hog file until `memory.available` is below `threshold`, then `EXTRA` more;
/// returns when it crossed and how much was written (MiB).
fn fill_until_below(threshold: i64) -> anyhow::Result<(Instant, usize)> {
    let mut f = std::fs::File::create(HOG).with_context(|| format!("creating {HOG}"))?;
    let chunk = vec![0x5au8; STEP];
    let (mut written, mut crossed) = (0usize, None);
    let limit = (MARGIN * 4) as usize;
    while written < limit {
        f.write_all(&chunk)?;
        written += STEP;
        if crossed.is_none() && memory_available()? < threshold {
            crossed = Some((Instant::now(), written));
        }
        if let Some((_, at)) = crossed
            && written >= at + EXTRA as usize
        {
            break;
        }
    }
    let (at, _) = crossed.with_context(|| format!("memory.available never went below the threshold after {} MiB", written >> 20))?;
    Ok((at, written >> 20))
}

/// One round with `which`.
pub async fn run(
    which: Which,
    round: usize,
    paths: &Paths,
    image: &str,
    client: &kube::Client,
    rt: &RemoteRuntime,
) -> anyhow::Result<EvictionResult> {
    clean(client, rt).await?;
    let available = memory_available()?;
    let threshold = available - MARGIN;
    anyhow::ensure!(threshold > 1 << 30, "too little memory available for the benchmark ({} MiB)", available >> 20);
    let quantity = format!("{}Ki", threshold / 1024);
    let kubelet = kubelets::start_with_memory_threshold(which, paths, round, &quantity).await?;
    let measured = measure(&kubelet, threshold, image, client).await;
    let _ = std::fs::remove_file(HOG);
    let stopped = kubelet.stop(paths).await;
    let cleaned = clean(client, rt).await;
    let (eviction, hog_mib) = measured.with_context(|| format!("{} kubelet, eviction round {round}", which.name()))?;
    stopped?;
    cleaned?;
    Ok(EvictionResult {
        kubelet: which.name().into(),
        round,
        available_mib: available >> 20,
        threshold_mib: threshold >> 20,
        eviction_ms: eviction.as_secs_f64() * 1000.0,
        hog_mib,
    })
}

async fn measure(k: &kubelets::Running, threshold: i64, image: &str, client: &kube::Client) -> anyhow::Result<(Duration, usize)> {
    node::wait_ready(client, Duration::from_secs(120), || k.alive()).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), pods::NAMESPACE);
    api.create(&PostParams::default(), &victim(image)?).await?;
    wait_pod(&api, "victim Running", Duration::from_secs(120), |p| phase_reason(p).0 == Some("Running")).await?;
    // Both kubelets have sampled the pod's stats by then.
    tokio::time::sleep(Duration::from_secs(25)).await;
    anyhow::ensure!(
        memory_available()? > threshold + (512 << 20),
        "memory.available moved towards the threshold on its own; the machine is not quiet"
    );
    let (crossed, hog_mib) = fill_until_below(threshold)?;
    let evicted =
        wait_pod(&api, "victim evicted", Duration::from_secs(90), |p| phase_reason(p) == (Some("Failed"), Some("Evicted"))).await?;
    Ok((evicted.duration_since(crossed), hog_mib))
}

async fn clean(client: &kube::Client, rt: &RemoteRuntime) -> anyhow::Result<()> {
    pods::delete_all(client, Duration::from_secs(60)).await?;
    node::remove_bench_pods(rt).await?;
    node::delete(client).await
}

/// The rounds as a table, with each kubelet's mean and the ratio of ours to upstream's.
pub fn report(results: &[EvictionResult]) -> String {
    let mut out = String::from("kubelet   round  available  threshold  hog MiB  crossing → evicted\n");
    for r in results {
        out.push_str(&format!(
            "{:<9} {:>5}  {:>6} MiB  {:>6} MiB  {:>7}  {:>10.0} ms\n",
            r.kubelet, r.round, r.available_mib, r.threshold_mib, r.hog_mib, r.eviction_ms
        ));
    }
    let mean = |k: &str| {
        let v: Vec<f64> = results.iter().filter(|r| r.kubelet == k).map(|r| r.eviction_ms).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    if let (Some(o), Some(u)) = (mean("ours"), mean("upstream")) {
        out.push_str(&format!("mean: ours {o:.0} ms, upstream {u:.0} ms, ratio ours/upstream {:.2}\n", o / u));
    }
    out
}
