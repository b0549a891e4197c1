//! The baseline: what containerd itself needs to run the benchmark pods, driven over CRI with no
//! kubelet in between.
//!
//! Like the kubelet (one worker per pod), every pod proceeds concurrently on one shared CRI
//! connection and a two-worker Tokio runtime. Per pod it does what the kubelet's first sync does
//! that containerd needs: the pod and log directories, `RunPodSandbox`, the `/etc/hosts` and
//! termination-message files that are bind-mounted, `CreateContainer`, `StartContainer`, with the
//! very configs the kubelet builds. It skips what only the kubelet needs (`PodSandboxStatus` for
//! the pod IPs, `ImageStatus` per container: the image reference is resolved once beforehand).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use kubelet::kuberuntime::container_config::{ContainerContext, container_config};
use kubelet::kuberuntime::env::{EnvObjects, PodFacts};
use kubelet::kuberuntime::pod_dirs::PodDirs;
use kubelet::kuberuntime::sandbox::{SandboxContext, pod_sandbox_config};
use kubelet::kuberuntime::security_context::{ImageUser, NodeSecurity};
use kubelet_cri::{ImageService, RemoteRuntime, RuntimeService, api};

use crate::probe;
use crate::workload::{self, NODE_NAME};

/// What one baseline run measured.
#[derive(Clone, Debug)]
pub struct BaselineRun {
    /// From the first CRI call until the watcher saw every container running.
    pub all_running: Duration,
    /// From the first CRI call until the last `StartContainer` returned.
    pub last_start_returned: Duration,
    /// containerd's CPU seconds over the run (until all running).
    pub containerd_cpu_s: f64,
    /// Stop + remove of every sandbox, all concurrently.
    pub teardown: Duration,
}

/// Everything one pod's creation needs, shared by the pod tasks.
struct Shared {
    rt: RemoteRuntime,
    sandbox: SandboxContext,
    root: PathBuf,
    manifests: PathBuf,
    image: String,
    image_ref: String,
    memory_capacity: i64,
}

async fn create_pod(s: &Shared, i: usize) -> anyhow::Result<()> {
    let pod = workload::static_pod(i, &s.image, &s.manifests)?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let config = pod_sandbox_config(&pod, 0, &s.sandbox);
    let dirs = PodDirs::new(&s.root, &uid);
    dirs.create()?;
    std::fs::create_dir_all(&config.log_directory)?;
    let sandbox_id = s.rt.run_pod_sandbox(config.clone(), "").await.context("RunPodSandbox")?;
    dirs.write_etc_hosts(&pod, &[], Path::new("/etc/hosts"), "cluster.local")?;
    let facts = PodFacts { pod_ips: Vec::new(), host_ip: String::new(), node_name: NODE_NAME.into(), allocatable: Default::default() };
    let security = NodeSecurity::new(&s.root, false);
    let (volumes, image_volumes) = (Default::default(), Default::default());
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        let ctx = ContainerContext {
            facts: &facts,
            env_objects: &EnvObjects::default(),
            volume_paths: &volumes,
            image_volumes: &image_volumes,
            etc_hosts: Some(dirs.etc_hosts()),
            termination_log: Some(dirs.termination_log(&c.name, &format!("{i:08x}"))?),
            memory_capacity: s.memory_capacity,
            security: &security,
            image_user: ImageUser::default(),
            sub_paths: &kubelet::kuberuntime::sub_path::HostSubPaths { pod_dir: dirs.pod_dir.clone() },
            runtime_supports_rro: false,
        };
        let (mut cc, extras) = container_config(&pod, c, 0, &ctx)?;
        if let Some(image) = cc.image.as_mut() {
            image.user_specified_image = s.image.clone();
            image.image = s.image_ref.clone();
        }
        let id = s.rt.create_container_with(&sandbox_id, cc, &extras, config.clone()).await.context("CreateContainer")?;
        s.rt.start_container(&id).await.context("StartContainer")?;
    }
    Ok(())
}

/// Creates `pods` pods concurrently, waits until all run, then removes them and their files.
pub async fn run(rt: &RemoteRuntime, endpoint: &str, image: &str, pods: usize, ticks: f64) -> anyhow::Result<BaselineRun> {
    let dir = tempfile::Builder::new().prefix("knode-bench-baseline-").tempdir()?;
    let node = workload::NodeConfig {
        manifests: dir.path().join("manifests"),
        logs: dir.path().join("logs"),
        healthz_port: 10248,
        read_only_port: 10255,
        endpoint: endpoint.into(),
    };
    let cfg = node.parsed()?;
    let image_ref = rt
        .image_status(&api::ImageSpec { image: image.into(), ..Default::default() })
        .await?
        .map(|i| i.id)
        .with_context(|| format!("image {image} is not in containerd (run hack/node-env.sh)"))?;
    let shared = Arc::new(Shared {
        rt: rt.clone(),
        sandbox: workload::sandbox_context(&cfg),
        root: dir.path().join("root"),
        manifests: node.manifests.clone(),
        image: image.into(),
        image_ref,
        memory_capacity: kubelet_types::machine::memory_capacity(Path::new("/proc")),
    });

    let containerd = probe::containerd_pid();
    let cpu = |pid: Option<u32>| pid.and_then(|p| probe::sample(p, ticks).ok()).map_or(0.0, |s| s.cpu_s);
    let cpu_before = cpu(containerd);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..pods {
        let shared = shared.clone();
        tasks.spawn(async move { create_pod(&shared, i).await.with_context(|| format!("baseline pod {i}")) });
    }
    let creator = async {
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        Ok::<_, anyhow::Error>(start.elapsed())
    };
    let (last_start_returned, all_running) = tokio::try_join!(creator, probe::wait_running(rt, pods, start, Duration::from_secs(300)))?;
    let containerd_cpu_s = cpu(containerd) - cpu_before;

    let t = Instant::now();
    probe::remove_bench_pods(rt).await?;
    let teardown = t.elapsed();
    Ok(BaselineRun { all_running, last_start_returned, containerd_cpu_s, teardown })
}
