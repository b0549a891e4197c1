//! The sync loop and pod workers against the fake CRI runtime, with paused time: desired pods
//! in (as the pod config merges them), CRI calls out.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Lifecycle, LifecycleHandler, Pod, PodSpec, SleepAction};
use kubelet::kuberuntime::RuntimeManager;
use kubelet::kuberuntime::env::NoEnvSources;
use kubelet::pleg::{Pleg, Relist};
use kubelet::pod_workers::PodWorkers;
use kubelet::status_manager::StatusManager;
use kubelet::sync_loop::SyncLoop;
use kubelet_podconfig::DesiredPods;
use kubelet_types::clock::TokioClock;
use test_support::{FakeRuntime, RecordingEvents};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "localhost/knode/busybox:1.35";

/// A static pod `web-node1` (from a manifest file) whose container takes 20 s to stop (a
/// `preStop` sleep) within a 30 s grace period.
fn static_pod(uid: &str, command: &str) -> Arc<Pod> {
    let mut p = Pod::default();
    p.metadata.name = Some("web-node1".into());
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some(uid.into());
    p.metadata.annotations = Some(BTreeMap::from([("kubernetes.io/config.source".to_string(), "file".to_string())]));
    p.spec = Some(PodSpec {
        termination_grace_period_seconds: Some(30),
        containers: vec![Container {
            name: "main".into(),
            image: Some(IMAGE.into()),
            command: Some(vec![command.into()]),
            lifecycle: Some(Lifecycle {
                pre_stop: Some(LifecycleHandler { sleep: Some(SleepAction { seconds: 20 }), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    });
    Arc::new(p)
}

fn desired(pods: &[Arc<Pod>]) -> DesiredPods {
    DesiredPods {
        pods: pods.iter().map(|p| (p.metadata.uid.clone().unwrap(), p.clone())).collect(),
        sources_ready: true,
        errors: Vec::new(),
    }
}

/// The sync loop over a fake runtime, with its desired-pods sender.
struct Harness {
    fake: FakeRuntime,
    desired: watch::Sender<DesiredPods>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    status: StatusManager,
    _root: tempfile::TempDir,
}

fn start(initial: DesiredPods) -> Harness {
    start_on(FakeRuntime::with_images([IMAGE]), initial)
}

fn start_on(fake: FakeRuntime, initial: DesiredPods) -> Harness {
    let root = tempfile::tempdir().unwrap();
    let clock = TokioClock::starting_at(SystemTime::now());
    let manager = RuntimeManager::new(
        Arc::new(fake.clone()),
        Arc::new(fake.clone()),
        Arc::new(RecordingEvents::default()),
        Arc::new(NoEnvSources),
        common::manager_config(root.path()),
        Arc::new(clock),
    );
    let (ctx, probe_updates) = common::worker_context(&fake, manager, Arc::new(RecordingEvents::default()), clock);
    let status = ctx.status.clone();
    let shutdown = CancellationToken::new();
    let (workers, finished) = PodWorkers::new(ctx, shutdown.clone());
    let (desired, desired_rx) = watch::channel(initial);
    let (pleg_tx, pleg_events) = mpsc::channel(16);
    let (relist_tx, relist) = watch::channel(Relist::default());
    let sync_loop = SyncLoop {
        workers,
        finished,
        desired: desired_rx,
        pleg_events,
        probe_updates,
        relist,
        heartbeat: Default::default(),
        deleting: Default::default(),
    };
    tokio::spawn(Pleg::new(Arc::new(fake.clone()), Duration::from_secs(1)).run(pleg_tx, relist_tx, shutdown.clone()));
    let task = tokio::spawn(sync_loop.run(shutdown.clone()));
    Harness { fake, desired, shutdown, task, status, _root: root }
}

impl Harness {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_replaced_static_pod_starts_after_the_previous_one_has_stopped() {
    let h = start(desired(&[static_pod("v1", "first")]));
    let fake = h.fake.clone();
    let sandboxes = || fake.calls_of("RunPodSandbox").len();

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!((sandboxes(), fake.calls_of("StartContainer").len()), (1, 1), "{:?}", fake.calls());

    // The manifest changes: the old pod runs its 20 s preStop hook; the new one waits for it.
    h.desired.send(desired(&[static_pod("v2", "second")])).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(sandboxes(), 1, "the new pod waits while the old one terminates: {:?}", fake.calls());
    assert!(fake.calls_of("StopContainer").is_empty(), "still in its preStop hook: {:?}", fake.calls());

    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(!fake.calls_of("StopPodSandbox").is_empty(), "the old pod stopped: {:?}", fake.calls());
    assert_eq!((sandboxes(), fake.calls_of("StartContainer").len()), (2, 2), "then the new one started: {:?}", fake.calls());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_pod_deleted_while_its_image_pull_hangs_stops_at_once_and_fails() {
    const UNREACHABLE: &str = "registry.invalid/app:1";
    let mut pod = (*static_pod("p1", "app")).clone();
    pod.metadata.annotations = Some(BTreeMap::from([("kubernetes.io/config.source".to_string(), "api".to_string())]));
    let spec = pod.spec.as_mut().unwrap();
    spec.containers[0].image = Some(UNREACHABLE.into());
    spec.containers[0].lifecycle = None;
    let h = start(desired(&[Arc::new(pod.clone())]));
    h.fake.set_pull_delay(UNREACHABLE, Duration::from_secs(600));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.fake.calls_of("PullImage").len(), 1, "{:?}", h.fake.calls());
    // Published before the pull ends, as upstream: Pending, the container ContainerCreating.
    let st = h.status.pod_status("p1").expect("a status while the image pulls");
    assert_eq!(st.phase.as_deref(), Some("Pending"));
    let waiting = st.container_statuses.unwrap_or_default().first().and_then(|c| c.state.clone()?.waiting?.reason);
    assert_eq!(waiting.as_deref(), Some("ContainerCreating"));

    // Deleted while the pull hangs: the sync is abandoned and the pod stopped right away.
    pod.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
    pod.metadata.deletion_grace_period_seconds = Some(30);
    h.desired.send(desired(&[Arc::new(pod)])).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!h.fake.calls_of("StopPodSandbox").is_empty(), "sandbox stopped: {:?}", h.fake.calls());
    assert!(h.fake.calls_of("CreateContainer").is_empty(), "{:?}", h.fake.calls());
    let finals = h.status.final_statuses();
    let phase = finals.iter().find(|p| p.metadata.uid.as_deref() == Some("p1")).and_then(|p| p.status.as_ref()?.phase.clone());
    assert_eq!(phase.as_deref(), Some("Failed"), "a pending pod that is deleted ends Failed: {finals:?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_container_that_cannot_start_is_retried_with_backoff_not_in_a_loop() {
    for create in [false, true] {
        retried_with_backoff(create, false).await;
        retried_with_backoff(create, true).await;
    }
}

async fn retried_with_backoff(create: bool, init: bool) {
    let mut pod = (*static_pod("p2", "app")).clone();
    pod.metadata.annotations = Some(BTreeMap::from([("kubernetes.io/config.source".to_string(), "api".to_string())]));
    pod.spec.as_mut().unwrap().containers[0].lifecycle = None;
    let failing = if init { "init" } else { "main" };
    if init {
        let spec = pod.spec.as_mut().unwrap();
        spec.init_containers = Some(vec![Container { name: "init".into(), image: Some(IMAGE.into()), ..Default::default() }]);
    }
    let fake = FakeRuntime::with_images([IMAGE]);
    let err = kubelet_cri::CriError::Status {
        op: "CreateContainer",
        object: "main".into(),
        code: tonic::Code::Unknown,
        message: "failed to generate container spec".into(),
    };
    if create {
        fake.set_create_error(failing, err)
    } else {
        fake.set_start_error(failing, err)
    }
    let h = start_on(fake, desired(&[Arc::new(pod)]));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let op = if create { "CreateContainer" } else { "StartContainer" };
    let attempts = h.fake.calls_of(op).len();
    assert!((2..=12).contains(&attempts), "{attempts} {op} attempts of {failing} in a minute: {:?}", h.fake.calls());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_static_pod_added_again_while_terminating_restarts_from_its_stopped_containers() {
    let pod = static_pod("same", "app");
    let h = start(desired(std::slice::from_ref(&pod)));
    let fake = h.fake.clone();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.calls_of("StartContainer").len(), 1, "{:?}", fake.calls());

    // The manifest is removed, then written again unchanged (same UID) during the preStop hook.
    h.desired.send(desired(&[])).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    h.desired.send(desired(std::slice::from_ref(&pod))).unwrap();
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(!fake.calls_of("StopPodSandbox").is_empty(), "the pod stopped first: {:?}", fake.calls());
    assert!(fake.calls_of("RemoveContainer").is_empty(), "its stopped container is kept: {:?}", fake.calls());
    assert_eq!(fake.calls_of("StartContainer").len(), 2, "then it started again: {:?}", fake.calls());
    let status = h.status.pod_status("same").expect("status of the restarted pod");
    let restarts: Vec<i32> = status.container_statuses.iter().flatten().map(|c| c.restart_count).collect();
    assert_eq!(restarts, vec![1], "counted from the kept container, as upstream: {status:?}");

    // Removed for good: everything goes.
    h.desired.send(desired(&[])).unwrap();
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(fake.calls_of("RemoveContainer").len(), 2, "{:?}", fake.calls());
    h.stop().await;
}

/// A kubelet with no pod source at all (standalone, no `staticPodPath`): the pod config ends at
/// once and drops its sender. The sync loop keeps running, as upstream's does, so its
/// housekeeping still stops a pod the runtime runs that no source wants.
#[tokio::test(start_paused = true)]
async fn the_sync_loop_outlives_its_pod_sources() {
    use kubelet::kuberuntime::labels::{POD_NAME, POD_NAMESPACE, POD_UID};
    use kubelet_cri::{RuntimeService, api};
    let fake = FakeRuntime::with_images([IMAGE]);
    let labels = [(POD_UID, "gone"), (POD_NAME, "left-over"), (POD_NAMESPACE, "default")].map(|(k, v)| (k.to_string(), v.to_string()));
    let config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata { name: "left-over".into(), uid: "gone".into(), namespace: "default".into(), attempt: 0 }),
        labels: labels.into(),
        ..Default::default()
    };
    fake.run_pod_sandbox(config, "").await.unwrap();
    let h = start_on(fake.clone(), desired(&[]));
    let Harness { desired, shutdown, task, .. } = h;
    drop(desired);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!task.is_finished(), "the sync loop ended with its sources");
    assert_eq!(fake.calls_of("StopPodSandbox").len(), 1, "the orphaned pod was stopped: {:?}", fake.calls());
    shutdown.cancel();
    task.await.unwrap();
}
