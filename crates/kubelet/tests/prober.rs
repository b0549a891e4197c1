//! Probes and lifecycle hooks against the fake CRI runtime, through the same steps a pod worker
//! takes (sync with the prober's failures, publish a status with its verdicts, wake it), with
//! paused time: liveness restarts, readiness both ways, startup gating, thresholds, hooks.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, ExecAction, Lifecycle, LifecycleHandler, Pod, PodSpec, Probe, SleepAction};
use kubelet::kuberuntime::env::NoEnvSources;
use kubelet::kuberuntime::labels::PodRef;
use kubelet::kuberuntime::{RuntimeManager, pod_is_terminal};
use kubelet::prober::ProbeManager;
use kubelet::status::{StatusInputs, generate_api_pod_status};
use kubelet::status_manager::StatusManager;
use kubelet_types::clock::{Clock, TokioClock};
use test_support::{ExecAnswer, FakeRuntime, RecordingEvents};
use tokio::sync::mpsc;

const IMAGE: &str = "localhost/knode/busybox:1.35";

struct Node {
    fake: FakeRuntime,
    manager: RuntimeManager,
    prober: ProbeManager,
    status: StatusManager,
    events: Arc<RecordingEvents>,
    clock: TokioClock,
    updates: mpsc::UnboundedReceiver<PodRef>,
    _root: tempfile::TempDir,
}

fn node() -> Node {
    let fake = FakeRuntime::with_images([IMAGE]);
    let root = tempfile::tempdir().unwrap();
    let clock = TokioClock::starting_at(SystemTime::now());
    let cfg = common::manager_config(root.path());
    let events = Arc::new(RecordingEvents::default());
    let manager =
        RuntimeManager::new(Arc::new(fake.clone()), Arc::new(fake.clone()), events.clone(), Arc::new(NoEnvSources), cfg, Arc::new(clock));
    let status = StatusManager::default();
    let (tx, updates) = mpsc::unbounded_channel();
    let prober = ProbeManager::new(Arc::new(fake.clone()), status.clone(), events.clone(), Arc::new(clock), tx);
    Node { fake, manager, prober, status, events, clock, updates, _root: root }
}

fn exec(cmd: &str) -> Option<ExecAction> {
    Some(ExecAction { command: Some(cmd.split(' ').map(str::to_owned).collect()) })
}

fn probe(cmd: &str, period: i32, failure: i32) -> Option<Probe> {
    Some(Probe { exec: exec(cmd), period_seconds: Some(period), failure_threshold: Some(failure), ..Default::default() })
}

fn pod(name: &str, container: Container) -> Arc<Pod> {
    let mut p = Pod::default();
    p.metadata.name = Some(name.into());
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.spec = Some(PodSpec {
        restart_policy: Some("Always".into()),
        termination_grace_period_seconds: Some(5),
        containers: vec![Container { image: Some(IMAGE.into()), ..container }],
        ..Default::default()
    });
    Arc::new(p)
}

fn pod_ref(p: &Pod) -> PodRef {
    PodRef { uid: p.metadata.uid.clone().unwrap(), name: p.metadata.name.clone().unwrap(), namespace: "default".into() }
}

impl Node {
    /// One pod worker iteration.
    async fn sync(&self, p: &Arc<Pod>) -> k8s_openapi::api::core::v1::PodStatus {
        self.prober.add_pod(p);
        let status = self.manager.pod_status(&pod_ref(p)).await.unwrap();
        let verdicts = self.prober.verdicts(&status);
        let outcome = self.manager.sync_pod(p, &status, &verdicts).await;
        let fresh = self.manager.pod_status(&pod_ref(p)).await.unwrap();
        let probes = self.prober.results_for(&fresh);
        let previous = self.status.pod_status(p.metadata.uid.as_deref().unwrap());
        let api = generate_api_pod_status(&StatusInputs {
            pod: p,
            runtime: &fresh,
            previous: previous.as_ref(),
            waiting_reasons: &outcome.waiting,
            probes: &probes,
            host_ip: Some("198.18.255.1"),
            pod_is_terminal: pod_is_terminal(p, &fresh),
            runtime_name: "containerd",
            now: self.clock.now(),
        });
        self.status.set_pod_status(p.clone(), api.clone());
        self.prober.wake_pod(p.metadata.uid.as_deref().unwrap());
        api
    }

    /// Lets `secs` seconds pass, syncing the pod whenever the prober reports a change (as the
    /// sync loop does) and once a second otherwise.
    async fn run_for(&mut self, p: &Arc<Pod>, secs: u64) -> k8s_openapi::api::core::v1::PodStatus {
        let mut api = self.sync(p).await;
        for _ in 0..secs {
            tokio::time::sleep(Duration::from_secs(1)).await;
            while self.updates.try_recv().is_ok() {}
            api = self.sync(p).await;
        }
        api
    }
}

fn ready(api: &k8s_openapi::api::core::v1::PodStatus) -> bool {
    api.container_statuses.as_ref().unwrap()[0].ready
}

fn restarts(api: &k8s_openapi::api::core::v1::PodStatus) -> i32 {
    api.container_statuses.as_ref().unwrap()[0].restart_count
}

#[tokio::test(start_paused = true)]
async fn failing_liveness_probe_restarts_the_container_after_the_threshold() {
    let mut n = node();
    let p = pod("live", Container { name: "app".into(), liveness_probe: probe("check", 2, 3), ..Default::default() });
    n.fake.set_exec_answer("app", "check", ExecAnswer::Exit(0, String::new()));
    let api = n.run_for(&p, 10).await;
    assert_eq!(restarts(&api), 0);
    n.fake.set_exec_answer("app", "check", ExecAnswer::Exit(1, "down\n".into()));
    // Three failures two seconds apart (the first within a period), then the kill and restart.
    let api = n.run_for(&p, 7).await;
    assert_eq!(restarts(&api), 1, "{api:?}");
    let unhealthy = n.events.with_reason("Unhealthy");
    assert!(unhealthy.len() >= 3, "{unhealthy:?}");
    assert!(unhealthy[0].starts_with("Liveness probe failed: command [\"check\"] exited with 1: down"), "{unhealthy:?}");
    let killing = n.events.with_reason("Killing");
    assert_eq!(killing, ["Container app failed liveness probe, will be restarted"]);
    // The new instance is probed afresh: three more failures before each further restart.
    let api = n.run_for(&p, 12).await;
    let unhealthy = n.events.with_reason("Unhealthy").len() as i32;
    assert!(restarts(&api) >= 2 && unhealthy >= 3 * restarts(&api), "{} restarts, {unhealthy} failures", restarts(&api));
}

#[tokio::test(start_paused = true)]
async fn readiness_flips_both_ways_and_never_restarts() {
    let mut n = node();
    let mut c = Container { name: "app".into(), readiness_probe: probe("ready", 1, 2), ..Default::default() };
    c.readiness_probe.as_mut().unwrap().success_threshold = Some(2);
    let p = pod("ready", c);
    n.fake.set_exec_answer("app", "ready", ExecAnswer::Exit(1, String::new()));
    let api = n.run_for(&p, 5).await;
    assert!(!ready(&api), "never passed: not ready");
    n.fake.set_exec_answer("app", "ready", ExecAnswer::Exit(0, String::new()));
    let api = n.run_for(&p, 4).await;
    assert!(ready(&api), "two successes: ready");
    let cond = |api: &k8s_openapi::api::core::v1::PodStatus, t: &str| {
        api.conditions.as_ref().unwrap().iter().find(|c| c.type_ == t).unwrap().status.clone()
    };
    assert_eq!(cond(&api, "Ready"), "True");
    n.fake.set_exec_answer("app", "ready", ExecAnswer::Exit(1, String::new()));
    let api = n.run_for(&p, 4).await;
    assert!(!ready(&api));
    assert_eq!(cond(&api, "ContainersReady"), "False");
    assert_eq!(restarts(&api), 0, "readiness never restarts");
}

#[tokio::test(start_paused = true)]
async fn startup_probe_gates_liveness_and_readiness() {
    let mut n = node();
    let p = pod(
        "slow",
        Container {
            name: "app".into(),
            startup_probe: probe("started", 1, 30),
            liveness_probe: probe("alive", 1, 1),
            readiness_probe: probe("ready", 1, 1),
            ..Default::default()
        },
    );
    n.fake.set_exec_answer("app", "started", ExecAnswer::Exit(1, String::new()));
    n.fake.set_exec_answer("app", "alive", ExecAnswer::Exit(1, String::new()));
    let api = n.run_for(&p, 6).await;
    let execs = n.fake.calls_of("ExecSync");
    assert!(execs.iter().all(|c| c == "ExecSync started"), "only the startup probe runs: {execs:?}");
    assert_eq!(api.container_statuses.as_ref().unwrap()[0].started, Some(false));
    assert_eq!(restarts(&api), 0);
    // Started: now liveness runs, fails once (threshold 1) and the container is restarted.
    n.fake.set_exec_answer("app", "started", ExecAnswer::Exit(0, String::new()));
    let api = n.run_for(&p, 4).await;
    assert!(n.fake.calls_of("ExecSync").iter().any(|c| c == "ExecSync alive"));
    assert!(restarts(&api) >= 1, "{api:?}");
    assert!(n.events.with_reason("Killing").iter().all(|m| m == "Container app failed liveness probe, will be restarted"));
}

#[tokio::test(start_paused = true)]
async fn failing_startup_probe_restarts_the_container() {
    let mut n = node();
    let p = pod("never-starts", Container { name: "app".into(), startup_probe: probe("started", 1, 3), ..Default::default() });
    n.fake.set_exec_answer("app", "started", ExecAnswer::Exit(1, String::new()));
    let api = n.run_for(&p, 6).await;
    assert!(restarts(&api) >= 1, "{api:?}");
    assert_eq!(n.events.with_reason("Killing")[0], "Container app failed startup probe, will be restarted");
}

#[tokio::test(start_paused = true)]
async fn probe_timeout_is_a_failure() {
    let mut n = node();
    let mut c = Container { name: "app".into(), liveness_probe: probe("hang", 1, 2), ..Default::default() };
    c.liveness_probe.as_mut().unwrap().timeout_seconds = Some(3);
    let p = pod("hangs", c);
    n.fake.set_exec_answer("app", "hang", ExecAnswer::Hang);
    let api = n.run_for(&p, 12).await;
    assert!(restarts(&api) >= 1, "{api:?}");
    assert!(n.events.with_reason("Unhealthy")[0].contains("timed out after 3s"), "{:?}", n.events.with_reason("Unhealthy"));
}

#[tokio::test(start_paused = true)]
async fn post_start_failure_kills_the_container_and_pre_stop_runs_before_stop() {
    let n = node();
    let mut c = Container { name: "app".into(), ..Default::default() };
    c.lifecycle = Some(Lifecycle {
        post_start: Some(LifecycleHandler { exec: exec("poststart"), ..Default::default() }),
        pre_stop: Some(LifecycleHandler { sleep: Some(SleepAction { seconds: 3 }), ..Default::default() }),
        ..Default::default()
    });
    let p = pod("hooks", c);
    n.fake.set_exec_answer("app", "poststart", ExecAnswer::Exit(2, "no".into()));
    n.sync(&p).await;
    let failed = n.events.with_reason("FailedPostStartHook");
    assert_eq!(failed.len(), 1);
    assert!(failed[0].starts_with("Exec lifecycle hook ([\"poststart\"]) for Container \"app\" in Pod \"hooks_default"), "{failed:?}");
    assert!(n.fake.calls_of("StopContainer").len() == 1, "{:?}", n.fake.calls());
    // preStop: a 3 s sleep, then StopContainer with the grace period left (5 - 3 = 2 s).
    n.fake.set_exec_answer("app", "poststart", ExecAnswer::Exit(0, String::new()));
    tokio::time::sleep(Duration::from_secs(30)).await;
    n.sync(&p).await;
    n.fake.clear_calls();
    let status = n.manager.pod_status(&pod_ref(&p)).await.unwrap();
    let started = tokio::time::Instant::now();
    n.manager.kill_pod(Some(&p), &status, None).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(n.fake.calls_of("StopContainer").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn while_terminating_readiness_goes_on_and_liveness_stops() {
    let mut n = node();
    let p = pod(
        "stopping",
        Container { name: "app".into(), readiness_probe: probe("ready", 1, 1), liveness_probe: probe("alive", 1, 1), ..Default::default() },
    );
    let api = n.run_for(&p, 4).await;
    assert!(ready(&api));
    // The pod is being deleted: the pod worker is busy stopping it and publishes nothing.
    n.prober.pod_terminating("uid-stopping");
    n.fake.set_exec_answer("app", "ready", ExecAnswer::Exit(1, String::new()));
    n.fake.set_exec_answer("app", "alive", ExecAnswer::Exit(1, String::new()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = n.status.pod_status("uid-stopping").unwrap();
    assert!(!ready(&status), "readiness probed on while terminating");
    let cond = status.conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((cond.status.as_str(), cond.reason.as_deref()), ("False", Some("ContainersNotReady")));
    let runtime = n.manager.pod_status(&pod_ref(&p)).await.unwrap();
    assert!(n.prober.verdicts(&runtime).failed.is_empty(), "liveness no longer kills");
    assert!(!n.fake.calls_of("ExecSync").iter().rev().take(2).any(|c| c == "ExecSync alive"));
}

#[tokio::test(start_paused = true)]
async fn readiness_runs_as_soon_as_the_startup_probe_passes() {
    let mut n = node();
    let mut c = Container {
        name: "app".into(),
        startup_probe: probe("started", 1, 60),
        readiness_probe: probe("ready", 30, 1),
        ..Default::default()
    };
    c.readiness_probe.as_mut().unwrap().success_threshold = Some(1);
    let p = pod("quick-ready", c);
    n.fake.set_exec_answer("app", "started", ExecAnswer::Exit(1, String::new()));
    n.run_for(&p, 40).await;
    n.fake.set_exec_answer("app", "started", ExecAnswer::Exit(0, String::new()));
    // The readiness period is 30 s, but it runs right after the container has started.
    let api = n.run_for(&p, 4).await;
    assert!(ready(&api), "{api:?}");
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_cannot_run_neither_passes_nor_fails() {
    let mut n = node();
    let p = pod("typo", Container { name: "app".into(), liveness_probe: probe("nosuchcmd", 1, 1), ..Default::default() });
    n.fake.set_exec_answer("app", "nosuchcmd", ExecAnswer::Refuse("executable file not found in $PATH".into()));
    let api = n.run_for(&p, 10).await;
    assert_eq!(restarts(&api), 0, "an error is not a failure");
    let unhealthy = n.events.with_reason("Unhealthy");
    assert!(unhealthy[0].starts_with("Liveness probe errored and resulted in unknown state:"), "{unhealthy:?}");
    // Each round tried three times.
    let execs = n.fake.calls_of("ExecSync").len();
    assert!(execs >= 3 * unhealthy.len(), "{execs} execs for {} rounds", unhealthy.len());
}
