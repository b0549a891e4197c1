//! Device plugin resources through the pod workers and the runtime manager, with a fake device
//! allocator and the fake CRI runtime: a pod asking for a device is admitted, its container
//! gets the device's mounts and annotations; a pod asking for more than is free is rejected
//! with upstream's `UnexpectedAdmissionError` before its sandbox; a removed pod frees its devices.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubelet::kuberuntime::RuntimeManager;
use kubelet::kuberuntime::env::NoEnvSources;
use kubelet::kuberuntime::labels::PodRef;
use kubelet::pod_workers::PodWorkers;
use kubelet_cri::RuntimeService;
use kubelet_deviceplugin::RunContainerOptions;
use kubelet_deviceplugin::v1beta1::Mount;
use kubelet_types::clock::TokioClock;
use kubelet_types::events::LogEventRecorder;
use test_support::{FakeDeviceAllocator, FakeRuntime};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "localhost/knode/busybox:1.35";
const R: &str = "test.device/a";

fn pod(uid: &str, devices: i64) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some(uid.into());
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some(uid.into());
    let rl: std::collections::BTreeMap<String, Quantity> = [(R.to_string(), Quantity(devices.to_string()))].into();
    let resources = ResourceRequirements { limits: Some(rl.clone()), requests: Some(rl), ..Default::default() };
    p.spec = Some(PodSpec {
        containers: vec![Container { name: "c".into(), image: Some(IMAGE.into()), resources: Some(resources), ..Default::default() }],
        ..Default::default()
    });
    p
}

#[tokio::test(start_paused = true)]
async fn devices_are_allocated_at_admission_and_given_to_the_container() {
    let fake = FakeRuntime::with_images([IMAGE]);
    let root = tempfile::tempdir().unwrap();
    let clock = TokioClock::starting_at(SystemTime::now());
    let devices = FakeDeviceAllocator::default();
    devices.add_devices(R, 1);
    devices.set_options(RunContainerOptions {
        mounts: vec![Mount { container_path: "/usr/lib/device".into(), host_path: "/opt/device".into(), read_only: true }],
        annotations: vec![("vendor.example/device".into(), "0".into())],
        ..Default::default()
    });
    let manager = RuntimeManager::new(
        Arc::new(fake.clone()),
        Arc::new(fake.clone()),
        Arc::new(LogEventRecorder),
        Arc::new(NoEnvSources),
        common::manager_config(root.path()),
        Arc::new(clock),
    )
    .with_devices(Arc::new(devices.clone()));
    let (ctx, _probe_updates) = common::worker_context(&fake, manager, Arc::new(LogEventRecorder), clock);
    let status = ctx.status.clone();
    let shutdown = CancellationToken::new();
    let (mut workers, _finished) = PodWorkers::new(ctx, shutdown.clone());

    let first = Arc::new(pod("uid-1", 1));
    workers.update_pod(first.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(status.pod_status("uid-1").and_then(|s| s.phase).as_deref(), Some("Running"));
    let id = fake.container_ids().pop().expect("a container");
    let container = fake.container_status(&id).await.unwrap();
    let mount = container.mounts.iter().find(|m| m.container_path == "/usr/lib/device").expect("the device's mount");
    assert_eq!((mount.host_path.as_str(), mount.readonly), ("/opt/device", true));
    assert_eq!(container.annotations["vendor.example/device"], "0");
    assert_eq!(devices.calls(), vec!["allocate_pod uid-1", "container_options uid-1 c"]);

    // No device left: the next pod is refused before it gets a sandbox.
    workers.update_pod(Arc::new(pod("uid-2", 1)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refused = status.pod_status("uid-2").expect("a status");
    assert_eq!(refused.phase.as_deref(), Some("Failed"));
    assert_eq!(refused.reason.as_deref(), Some("UnexpectedAdmissionError"));
    assert_eq!(
        refused.message.as_deref(),
        Some(
            "Pod was rejected: Allocate failed due to requested number of devices unavailable for test.device/a. Requested: 1, Available: 0, which is unexpected"
        )
    );
    assert_eq!(fake.calls_of("RunPodSandbox").len(), 1, "{:?}", fake.calls());

    // The first pod goes: its device is free again.
    let r = PodRef { uid: "uid-1".into(), name: "uid-1".into(), namespace: "default".into() };
    workers.terminate(r, Some(first), Some(0));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(devices.calls().contains(&"remove_pod uid-1".to_string()), "{:?}", devices.calls());
    assert_eq!(devices.free(R), 1);
    shutdown.cancel();
}
