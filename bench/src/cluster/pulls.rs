//! The image pull benchmark: 20 pods, each on an image of its own (busybox with a 4 MiB random
//! layer, in a docker-registry on loopback that `hack/bench-pulls.sh` fills), pulled with
//! `serializeImagePulls` true and false, ours against upstream's, each in turn as node
//! `knode-node`.
//!
//! A run: the images are removed from containerd, the kubelet starts (with `registryPullQPS:
//! 0`, so the rate limit does not set the pace), and once the node is Ready and no longer
//! tainted `NoSchedule`, the 20 pods are created at once; the
//! figure is the time from their creation to the last one `Running`, with the kubelet's CPU
//! time over it and its peak resident memory.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kubelet_cri::{ImageService, RemoteRuntime, api};
use serde::{Deserialize, Serialize};

use crate::kubelets::{self, Paths, Which};
use crate::{node, pods, proc_stats};

/// One run's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullsResult {
    pub kubelet: String,
    pub round: usize,
    pub serialized: bool,
    pub images: usize,
    /// From the pods' creation to the last one `Running`.
    pub all_running_s: f64,
    /// The first and the median pod `Running`.
    pub first_running_s: f64,
    pub median_running_s: f64,
    pub kubelet_cpu_s: f64,
    pub hwm_mib: f64,
    /// Each pod's times (ms since the pods' creation), for a closer look.
    pub pods: Vec<(String, pods::PodTimes)>,
}

/// Removes the images from the runtime, so the run pulls them all.
async fn remove_images(rt: &RemoteRuntime, images: &[String]) -> anyhow::Result<()> {
    for image in images {
        let spec = api::ImageSpec { image: image.clone(), ..Default::default() };
        if rt.image_status(&spec).await?.is_some() {
            rt.remove_image(&spec).await?;
        }
    }
    Ok(())
}

/// One run with `which`.
pub async fn run(
    which: Which,
    round: usize,
    serialized: bool,
    paths: &Paths,
    images: &[String],
    client: &kube::Client,
    rt: &RemoteRuntime,
) -> anyhow::Result<PullsResult> {
    clean(client, rt, images).await?;
    let extra = format!("serializeImagePulls: {serialized}\nregistryPullQPS: 0\n");
    let kubelet = kubelets::start_with(which, paths, round, "100Mi", &extra).await?;
    let measured = measure(&kubelet, which, round, serialized, images, client).await;
    let stopped = kubelet.stop(paths).await;
    let cleaned = clean(client, rt, images).await;
    let mode = if serialized { "serialized" } else { "parallel" };
    // Our kubelet's log is per round; keep each mode's.
    let log = paths.out_dir.join(format!("{}-round{round}.log", which.name()));
    let _ = std::fs::rename(&log, paths.out_dir.join(format!("pulls-{mode}-{}-round{round}.log", which.name())));
    let result = anyhow::Context::with_context(measured, || format!("{} kubelet, {mode} pulls round {round}", which.name()))?;
    stopped?;
    cleaned?;
    Ok(result)
}

async fn measure(
    k: &kubelets::Running,
    which: Which,
    round: usize,
    serialized: bool,
    images: &[String],
    client: &kube::Client,
) -> anyhow::Result<PullsResult> {
    node::wait_schedulable(client, Duration::from_secs(120), || k.alive()).await?;
    let ticks = proc_stats::clock_ticks();
    let before = proc_stats::sample(k.pid, ticks)?;
    let pods: Vec<Pod> = images.iter().enumerate().map(|(i, image)| pods::pod(i, image, false)).collect::<anyhow::Result<_>>()?;
    let start = Instant::now();
    let times = pods::create_pods_and_wait_running(client, pods, start, Duration::from_secs(300)).await?;
    let after = proc_stats::sample(k.pid, ticks)?;
    let mut running: Vec<f64> = times.iter().filter_map(|(_, t)| t.running_ms).map(|ms| ms / 1000.0).collect();
    running.sort_by(f64::total_cmp);
    Ok(PullsResult {
        kubelet: which.name().into(),
        round,
        serialized,
        images: images.len(),
        all_running_s: running.last().copied().unwrap_or_default(),
        first_running_s: running.first().copied().unwrap_or_default(),
        median_running_s: running.get(running.len() / 2).copied().unwrap_or_default(),
        kubelet_cpu_s: after.cpu_s - before.cpu_s,
        hwm_mib: after.hwm_kib as f64 / 1024.0,
        pods: times,
    })
}

async fn clean(client: &kube::Client, rt: &RemoteRuntime, images: &[String]) -> anyhow::Result<()> {
    pods::delete_all(client, Duration::from_secs(60)).await?;
    node::remove_bench_pods(rt).await?;
    remove_images(rt, images).await?;
    node::delete(client).await
}

fn median(v: impl Iterator<Item = f64>) -> f64 {
    let mut s: Vec<f64> = v.collect();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// The runs as a table, then each mode's medians with ours over upstream's, and each kubelet's
/// parallel over serialized.
pub fn report(results: &[PullsResult]) -> String {
    let mut out = String::from("kubelet   round  pulls       all Running  first  median  kubelet CPU  peak RSS\n");
    let mode = |serialized: bool| if serialized { "serialized" } else { "parallel" };
    for r in results {
        out.push_str(&format!(
            "{:<9} {:>5}  {:<10} {:>10.2}s {:>5.2}s {:>6.2}s {:>10.2}s {:>7.1} MiB\n",
            r.kubelet,
            r.round,
            mode(r.serialized),
            r.all_running_s,
            r.first_running_s,
            r.median_running_s,
            r.kubelet_cpu_s,
            r.hwm_mib
        ));
    }
    let med = |kubelet: &str, serialized: bool| {
        median(results.iter().filter(|r| r.kubelet == kubelet && r.serialized == serialized).map(|r| r.all_running_s))
    };
    for serialized in [true, false] {
        let (ours, upstream) = (med("ours", serialized), med("upstream", serialized));
        if ours > 0.0 && upstream > 0.0 {
            out.push_str(&format!(
                "{} pulls, median to all Running: ours {ours:.2}s, upstream {upstream:.2}s, ratio {:.2}\n",
                mode(serialized),
                ours / upstream
            ));
        }
    }
    for kubelet in ["ours", "upstream"] {
        let (serial, parallel) = (med(kubelet, true), med(kubelet, false));
        if serial > 0.0 && parallel > 0.0 {
            out.push_str(&format!("{kubelet}: parallel / serialized {:.2}\n", parallel / serial));
        }
    }
    out
}
