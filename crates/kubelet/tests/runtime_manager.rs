//! The runtime manager and pod worker decisions against the fake CRI runtime: what a sync creates,
//! how exits drive restarts per policy with backoff, and what the generated status says.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kubelet::kuberuntime::env::NoEnvSources;
use kubelet::kuberuntime::labels::PodRef;
use kubelet::kuberuntime::{RuntimeManager, pod_is_terminal};
use kubelet::status::{ProbeResults, StatusInputs, generate_api_pod_status};
use kubelet_types::clock::{Clock, TokioClock};
use kubelet_types::events::LogEventRecorder;
use test_support::FakeRuntime;

const IMAGE: &str = "localhost/knode/busybox:1.35";

struct Harness {
    fake: FakeRuntime,
    manager: RuntimeManager,
    clock: TokioClock,
    _root: tempfile::TempDir,
}

fn harness() -> Harness {
    let fake = FakeRuntime::with_images([IMAGE]);
    let root = tempfile::tempdir().unwrap();
    let clock = TokioClock::starting_at(SystemTime::now());
    let cfg = common::manager_config(root.path());
    let manager = RuntimeManager::new(
        Arc::new(fake.clone()),
        Arc::new(fake.clone()),
        Arc::new(LogEventRecorder),
        Arc::new(NoEnvSources),
        cfg,
        Arc::new(clock),
    );
    Harness { fake, manager, clock, _root: root }
}

fn pod(name: &str, policy: &str, containers: &[&str]) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some(name.into());
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.spec = Some(PodSpec {
        restart_policy: Some(policy.into()),
        termination_grace_period_seconds: Some(5),
        containers: containers.iter().map(|c| Container { name: c.to_string(), image: Some(IMAGE.into()), ..Default::default() }).collect(),
        ..Default::default()
    });
    p
}

fn pod_ref(p: &Pod) -> PodRef {
    PodRef { uid: p.metadata.uid.clone().unwrap(), name: p.metadata.name.clone().unwrap(), namespace: "default".into() }
}

impl Harness {
    /// One worker iteration: sync, then the API status from the fresh runtime state.
    async fn sync(&self, p: &Pod) -> (kubelet::kuberuntime::SyncOutcome, k8s_openapi::api::core::v1::PodStatus) {
        let status = self.manager.pod_status(&pod_ref(p)).await.unwrap();
        let outcome = self.manager.sync_pod(p, &status, &Default::default()).await;
        let fresh = self.manager.pod_status(&pod_ref(p)).await.unwrap();
        let api = generate_api_pod_status(&StatusInputs {
            pod: p,
            runtime: &fresh,
            previous: None,
            waiting_reasons: &outcome.waiting,
            probes: &ProbeResults::default(),
            host_ip: Some("198.18.255.1"),
            pod_is_terminal: pod_is_terminal(p, &fresh),
            runtime_name: "containerd",
            now: self.clock.now(),
        });
        (outcome, api)
    }

    /// Makes the running instance of `container` exit with `code`.
    async fn exit(&self, p: &Pod, container: &str, code: i32) {
        let status = self.manager.pod_status(&pod_ref(p)).await.unwrap();
        let running = status
            .containers
            .iter()
            .find(|c| c.name == container && c.state == kubelet::container::ContainerState::Running)
            .expect("a running instance");
        assert!(self.fake.exit_container(&running.id, code));
    }
}

fn waiting_reason(api: &k8s_openapi::api::core::v1::PodStatus, i: usize) -> Option<String> {
    api.container_statuses.as_ref()?[i].state.as_ref()?.waiting.as_ref()?.reason.clone()
}

#[tokio::test(start_paused = true)]
async fn first_sync_creates_sandbox_and_starts_containers_in_order() {
    let h = harness();
    let p = pod("web", "Always", &["a", "b"]);
    let (outcome, api) = h.sync(&p).await;
    assert!(outcome.errors.is_empty() && outcome.waiting.is_empty(), "{outcome:?}");
    let ops: Vec<String> = h
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("RunPodSandbox") || c.starts_with("CreateContainer") || c.starts_with("StartContainer"))
        .collect();
    assert_eq!(ops.len(), 5, "{ops:?}");
    assert!(ops[0].starts_with("RunPodSandbox") && ops[1] == "CreateContainer a" && ops[3] == "CreateContainer b", "{ops:?}");
    assert_eq!(api.phase.as_deref(), Some("Running"));
    // A second sync has nothing to do.
    h.fake.clear_calls();
    let (outcome, _) = h.sync(&p).await;
    assert!(outcome.waiting.is_empty());
    assert!(h.fake.calls_of("CreateContainer").is_empty() && h.fake.calls_of("RunPodSandbox").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_created_but_never_started_container_is_started_not_replaced() {
    let h = harness();
    let p = pod("interrupted", "Always", &["main"]);
    h.fake.lose_next_start("main");
    let (outcome, _) = h.sync(&p).await;
    assert!(outcome.waiting.contains_key("main"), "the lost start is reported: {outcome:?}");
    assert_eq!(h.fake.calls_of("CreateContainer").len(), 1);
    // The next sync (e.g. after a kubelet restart) starts that same container.
    h.fake.clear_calls();
    let (outcome, api) = h.sync(&p).await;
    assert!(outcome.waiting.is_empty() && outcome.errors.is_empty(), "{outcome:?}");
    assert!(h.fake.calls_of("CreateContainer").is_empty(), "no second instance: {:?}", h.fake.calls());
    assert_eq!(h.fake.calls_of("StartContainer").len(), 1);
    assert_eq!(h.fake.container_ids().len(), 1);
    let cs = &api.container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.restart_count, 0, "no restart happened");
    assert!(cs.state.as_ref().unwrap().running.is_some(), "{cs:?}");
}

#[tokio::test(start_paused = true)]
async fn always_policy_restarts_with_crash_loop_backoff() {
    let h = harness();
    let p = pod("crash", "Always", &["main"]);
    h.sync(&p).await;
    h.exit(&p, "main", 1).await;
    // First restart is immediate.
    let (_, api) = h.sync(&p).await;
    assert_eq!(api.container_statuses.as_ref().unwrap()[0].restart_count, 1);
    h.exit(&p, "main", 1).await;
    let (outcome, api) = h.sync(&p).await;
    assert_eq!(waiting_reason(&api, 0).as_deref(), Some("CrashLoopBackOff"));
    let retry = outcome.retry_after.expect("worker is told when the backoff ends");
    assert!(retry <= Duration::from_secs(10) && retry > Duration::from_secs(9), "{retry:?}");
    assert!(outcome.waiting["main"].1.starts_with("back-off 10s restarting failed container=main pod=crash_default(uid-crash)"));
    tokio::time::advance(Duration::from_secs(5)).await;
    let (_, api) = h.sync(&p).await;
    assert_eq!(waiting_reason(&api, 0).as_deref(), Some("CrashLoopBackOff"), "still backing off after 5 s");
    tokio::time::advance(Duration::from_secs(6)).await;
    let (_, api) = h.sync(&p).await;
    let cs = &api.container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.restart_count, 2);
    assert!(cs.state.as_ref().unwrap().running.is_some());
    assert_eq!(cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 1);
    // The next failure waits 20 s.
    h.exit(&p, "main", 1).await;
    let (outcome, _) = h.sync(&p).await;
    assert!(outcome.retry_after.unwrap() > Duration::from_secs(19));
    // Dead instances are garbage-collected down to one.
    assert!(h.fake.container_ids().len() <= 2, "{:?}", h.fake.container_ids());
}

#[tokio::test(start_paused = true)]
async fn never_and_on_failure_policies_finish_the_pod() {
    let h = harness();
    let never = pod("once", "Never", &["main"]);
    h.sync(&never).await;
    h.exit(&never, "main", 2).await;
    let (_, api) = h.sync(&never).await;
    assert_eq!(api.phase.as_deref(), Some("Failed"));
    assert_eq!(api.container_statuses.as_ref().unwrap()[0].restart_count, 0);
    assert_eq!(h.fake.calls_of("CreateContainer").len(), 1, "never restarted");
    assert_eq!(h.fake.calls_of("StopPodSandbox").len(), 1, "finished pod's sandbox is stopped");

    let h = harness();
    let job = pod("job", "OnFailure", &["main"]);
    h.sync(&job).await;
    h.exit(&job, "main", 0).await;
    let (_, api) = h.sync(&job).await;
    assert_eq!(api.phase.as_deref(), Some("Succeeded"));
    let (_, api) = h.sync(&job).await;
    assert_eq!(api.phase.as_deref(), Some("Succeeded"), "no new sandbox for a completed OnFailure pod");
    assert_eq!(h.fake.calls_of("RunPodSandbox").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn missing_image_with_never_pull_waits_with_upstream_reason() {
    let h = harness();
    let mut p = pod("img", "Always", &["main"]);
    let c = &mut p.spec.as_mut().unwrap().containers[0];
    c.image = Some("localhost/knode/absent:1".into());
    c.image_pull_policy = Some("Never".into());
    let (outcome, api) = h.sync(&p).await;
    assert_eq!(waiting_reason(&api, 0).as_deref(), Some("ErrImageNeverPull"));
    assert_eq!(api.phase.as_deref(), Some("Pending"));
    assert!(outcome.waiting["main"].1.contains("localhost/knode/absent:1"));
}

#[tokio::test(start_paused = true)]
async fn kill_and_remove_pod_stop_gracefully_and_clean_up() {
    let h = harness();
    let p = pod("gone", "Always", &["main"]);
    h.sync(&p).await;
    let status = h.manager.pod_status(&pod_ref(&p)).await.unwrap();
    h.manager.kill_pod(Some(&p), &status, None).await.unwrap();
    let status = h.manager.pod_status(&pod_ref(&p)).await.unwrap();
    h.manager.remove_pod(&status).await.unwrap();
    assert!(h.fake.sandbox_ids().is_empty() && h.fake.container_ids().is_empty());
    let stops = h.fake.calls_of("StopContainer");
    assert_eq!(stops.len(), 1, "{stops:?}");
}

#[tokio::test(start_paused = true)]
async fn runtime_class_picks_the_sandbox_handler_and_a_missing_one_fails_the_sandbox() {
    let h = harness();
    let api = Arc::new(test_support::FakeVolumeApi::new());
    api.put_runtime_class("gvisor-like", "test-handler");
    let root = tempfile::tempdir().unwrap();
    let volumes = kubelet::volumemanager::VolumeManager::new(
        root.path(),
        Some(api.clone() as Arc<dyn kubelet_types::volume_api::VolumeApi>),
        Arc::new(kubelet::volumemanager::mount::SystemMounter),
        Arc::new(h.clock),
    );
    let Harness { fake, manager, clock, _root } = h;
    let h = Harness { fake, manager: manager.with_volume_manager(volumes), clock, _root };
    let mut p = pod("classy", "Always", &["main"]);
    p.spec.as_mut().unwrap().runtime_class_name = Some("gvisor-like".into());
    let (outcome, _) = h.sync(&p).await;
    assert!(outcome.errors.is_empty(), "{outcome:?}");
    let sandboxes = kubelet_cri::RuntimeService::list_pod_sandbox(&h.fake, None).await.unwrap();
    assert_eq!(sandboxes[0].runtime_handler, "test-handler");

    let mut p = pod("unknown-class", "Always", &["main"]);
    p.spec.as_mut().unwrap().runtime_class_name = Some("nope".into());
    let (outcome, _) = h.sync(&p).await;
    assert_eq!(
        outcome.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["Failed to create pod sandbox: RuntimeClass \"nope\" not found"]
    );
}

fn with_resources(mut p: Pod, cpu: &str, memory: &str, memory_restarts: &[&str]) -> Pod {
    use k8s_openapi::api::core::v1::{ContainerResizePolicy, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    for c in &mut p.spec.as_mut().unwrap().containers {
        let list: std::collections::BTreeMap<String, Quantity> =
            [("cpu".to_string(), Quantity(cpu.into())), ("memory".to_string(), Quantity(memory.into()))].into();
        c.resources = Some(ResourceRequirements { requests: Some(list.clone()), limits: Some(list), ..Default::default() });
        if memory_restarts.contains(&c.name.as_str()) {
            c.resize_policy =
                Some(vec![ContainerResizePolicy { resource_name: "memory".into(), restart_policy: "RestartContainer".into() }]);
        }
    }
    p
}

#[tokio::test(start_paused = true)]
async fn an_allocated_resize_updates_in_place_or_restarts_per_policy() {
    let h = harness();
    let v1 = with_resources(pod("resize", "Always", &["a", "b"]), "100m", "64Mi", &["b"]);
    let allocation = h.manager.allocation().clone();
    allocation.admit(&v1);
    let (outcome, _) = h.sync(&v1).await;
    assert!(outcome.errors.is_empty(), "{outcome:?}");
    let started = h.fake.calls_of("CreateContainer").len();

    // CPU grows: both containers are updated in place, nothing is created.
    h.fake.clear_calls();
    let v2 = with_resources(pod("resize", "Always", &["a", "b"]), "200m", "64Mi", &["b"]);
    assert_eq!(allocation.handle_resize(&v2), kubelet::allocation::ResizeDecision::Allocated);
    let (outcome, _) = h.sync(&allocation.allocated_pod(&v2)).await;
    assert!(outcome.errors.is_empty() && outcome.resize_error.is_none(), "{outcome:?}");
    assert_eq!(h.fake.calls_of("UpdateContainerResources").len(), 2, "{:?}", h.fake.calls());
    assert!(h.fake.calls_of("CreateContainer").is_empty());
    let actuated = allocation.actuated("uid-resize", "a").unwrap();
    assert_eq!(actuated.limits.unwrap()["cpu"].0, "200m");

    // Memory grows: `a` in place, `b` (RestartContainer for memory) restarted with it.
    h.fake.clear_calls();
    let v3 = with_resources(pod("resize", "Always", &["a", "b"]), "200m", "128Mi", &["b"]);
    assert_eq!(allocation.handle_resize(&v3), kubelet::allocation::ResizeDecision::Allocated);
    let (outcome, api) = h.sync(&allocation.allocated_pod(&v3)).await;
    assert!(outcome.errors.is_empty(), "{outcome:?}");
    assert_eq!(h.fake.calls_of("UpdateContainerResources").len(), 1, "{:?}", h.fake.calls());
    assert_eq!(h.fake.calls_of("CreateContainer"), vec!["CreateContainer b".to_string()], "{started} created before");
    let b = api.container_statuses.unwrap().into_iter().find(|c| c.name == "b").unwrap();
    assert_eq!(b.restart_count, 1);
    assert_eq!(allocation.actuated("uid-resize", "b").unwrap().limits.unwrap()["memory"].0, "128Mi");

    // Nothing left to do.
    h.fake.clear_calls();
    h.sync(&allocation.allocated_pod(&v3)).await;
    assert!(h.fake.calls_of("UpdateContainerResources").is_empty() && h.fake.calls_of("CreateContainer").is_empty());

    // Memory shrinks below what `a` uses: refused with upstream's error, nothing updated; once
    // the usage drops, applied.
    let a_id = h.fake.container_id_by_name("a").unwrap();
    h.fake.set_memory_usage(&a_id, 100 << 20);
    let v4 = with_resources(pod("resize", "Always", &["a", "b"]), "200m", "96Mi", &["b"]);
    assert_eq!(allocation.handle_resize(&v4), kubelet::allocation::ResizeDecision::Allocated);
    h.fake.clear_calls();
    let (outcome, _) = h.sync(&allocation.allocated_pod(&v4)).await;
    let want = format!(
        "cannot decrease memory limits: attempting to set container \"a\" memory limit ({}) below current usage ({})",
        96 << 20,
        100 << 20
    );
    assert_eq!(outcome.resize_error.as_deref(), Some(want.as_str()), "{outcome:?}");
    assert!(h.fake.calls_of("UpdateContainerResources").is_empty(), "{:?}", h.fake.calls());
    h.fake.set_memory_usage(&a_id, 50 << 20);
    let (outcome, _) = h.sync(&allocation.allocated_pod(&v4)).await;
    assert_eq!(outcome.resize_error, None, "{outcome:?}");
    assert_eq!(allocation.actuated("uid-resize", "a").unwrap().limits.unwrap()["memory"].0, "96Mi");
}
