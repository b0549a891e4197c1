//! End-to-end tests of `RemoteRuntime` against a real containerd (started by `hack/node-env.sh`).
//!
//! Ignored by default; `hack/test.sh` runs them. The socket comes from `KNODE_CONTAINERD_SOCK`, the
//! images from `KNODE_BUSYBOX_IMAGE` and `KNODE_PAUSE_IMAGE` (already imported by node-env.sh).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use kubelet_cri::{ImageService, RemoteRuntime, RuntimeService, api};

const DEFAULT_SOCK: &str = "/run/knode/containerd/containerd.sock";
const DEFAULT_BUSYBOX: &str = "localhost/knode/busybox:1.35";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

fn runtime() -> anyhow::Result<RemoteRuntime> {
    let endpoint = format!("unix://{}", env_or("KNODE_CONTAINERD_SOCK", DEFAULT_SOCK));
    Ok(RemoteRuntime::connect(&endpoint, Duration::from_secs(120))?)
}

/// A name no earlier run used, so a crashed run's leftovers never collide with this one.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

fn sandbox_config(name: &str, log_directory: &Path) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.to_owned(),
            uid: format!("{name}-uid"),
            namespace: "knode-e2e".to_owned(),
            attempt: 0,
        }),
        hostname: name.to_owned(),
        log_directory: log_directory.display().to_string(),
        labels: HashMap::from([("io.kubernetes.pod.name".to_owned(), name.to_owned())]),
        linux: Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: api::NamespaceMode::Pod as i32,
                    pid: api::NamespaceMode::Container as i32,
                    ipc: api::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn busybox_config(image: &str, script: &str) -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: "busybox".to_owned(), attempt: 0 }),
        image: Some(api::ImageSpec { image: image.to_owned(), ..Default::default() }),
        command: vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()],
        log_path: "busybox/0.log".to_owned(),
        linux: Some(api::LinuxContainerConfig {
            security_context: Some(api::LinuxContainerSecurityContext::default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
#[ignore = "needs containerd: run hack/test.sh"]
async fn version_reports_cri_v1() -> anyhow::Result<()> {
    let version = runtime()?.version().await?;
    ensure!(version.runtime_api_version == "v1", "{version:?}");
    ensure!(version.runtime_name == "containerd", "{version:?}");
    let status = runtime()?.status(false).await?;
    let conditions = status.status.map(|s| s.conditions).unwrap_or_default();
    // The two conditions the kubelet requires. Others are informational: containerd 2.2+ reports
    // `ContainerdHasNoDeprecationWarnings=false` on cgroup v1 hosts like this one.
    for required in ["RuntimeReady", "NetworkReady"] {
        ensure!(conditions.iter().any(|c| c.r#type == required && c.status), "runtime not ready ({required}): {conditions:?}");
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs containerd: run hack/test.sh"]
async fn sandbox_and_container_run_to_exit() -> anyhow::Result<()> {
    let runtime = runtime()?;
    let logs = tempfile::tempdir()?;
    let name = unique("cri-e2e");
    let config = sandbox_config(&name, logs.path());

    let started = Instant::now();
    let sandbox_id = runtime.run_pod_sandbox(config.clone(), "").await?;
    let sandbox_took = started.elapsed();
    // Run the checks in their own task so that a panic still reaches the cleanup below.
    let body = tokio::spawn(run_busybox(runtime.clone(), sandbox_id.clone(), config, logs.path().to_owned()));
    let outcome = body.await;

    let stopped = runtime.stop_pod_sandbox(&sandbox_id).await;
    let removed = runtime.remove_pod_sandbox(&sandbox_id).await;
    let container_took = match outcome {
        Ok(result) => result?,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    };
    stopped?;
    removed?;
    ensure!(
        runtime.pod_sandbox_status(&sandbox_id).await.is_err_and(|e| e.is_not_found()),
        "sandbox {sandbox_id} still there after removal"
    );
    eprintln!("RunPodSandbox took {sandbox_took:?}; CreateContainer+StartContainer took {container_took:?}");
    Ok(())
}

/// Checks the sandbox, runs busybox in it to exit code 3 and checks its log. Returns how long
/// creating and starting the container took.
async fn run_busybox(
    runtime: RemoteRuntime,
    sandbox_id: String,
    config: api::PodSandboxConfig,
    logs: std::path::PathBuf,
) -> anyhow::Result<Duration> {
    let status = runtime.pod_sandbox_status(&sandbox_id).await?;
    ensure!(status.state == api::PodSandboxState::SandboxReady as i32, "sandbox not ready: {status:?}");
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    let ip: Ipv4Addr = ip.parse().with_context(|| format!("sandbox IP {ip:?}"))?;
    ensure!(ip.octets()[..3] == [198, 18, 0], "sandbox IP {ip} outside 198.18.0.0/24");

    let image = env_or("KNODE_BUSYBOX_IMAGE", DEFAULT_BUSYBOX);
    let spec = api::ImageSpec { image: image.clone(), ..Default::default() };
    ensure!(runtime.image_status(&spec).await?.is_some(), "{image} missing: run hack/node-env.sh");

    let started = Instant::now();
    let id = runtime.create_container(&sandbox_id, busybox_config(&image, "echo hello; exit 3"), config).await?;
    runtime.start_container(&id).await?;
    let took = started.elapsed();

    let status = wait_exited(&runtime, &id).await?;
    ensure!(status.exit_code == 3, "exit code {} ({})", status.exit_code, status.reason);
    ensure!(status.reason == "Error", "reason {:?}", status.reason);
    let log_path = logs.join("busybox/0.log");
    ensure!(Path::new(&status.log_path) == log_path, "log path {}", status.log_path);

    let log = tokio::fs::read_to_string(&log_path).await.with_context(|| log_path.display().to_string())?;
    let line = log.lines().next().unwrap_or_default();
    let fields: Vec<&str> = line.splitn(4, ' ').collect();
    ensure!(fields.len() == 4 && fields[1..] == ["stdout", "F", "hello"], "log line {line:?}");
    ensure!(fields[0].contains('T') && (fields[0].ends_with('Z') || fields[0].contains('+')), "timestamp {:?} is not RFC 3339", fields[0]);

    runtime.remove_container(&id).await?;
    Ok(took)
}

async fn wait_exited(runtime: &RemoteRuntime, id: &str) -> anyhow::Result<api::ContainerStatus> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = runtime.container_status(id).await?;
        if status.state == api::ContainerState::ContainerExited as i32 {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!("container {id} did not exit within 30s: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
