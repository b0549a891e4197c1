//! End-to-end tests of [`generate_api_pod_status`] from runtime state.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PodCondition, Probe};

use super::test_util::*;
use super::*;
use crate::container::{ContainerState as RS, ContainerStatus as RC, SandboxStatus};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn sandbox(ips: &[&str]) -> SandboxStatus {
    SandboxStatus {
        id: "sb1".into(),
        state: SandboxState::Ready,
        attempt: 0,
        created_at: Some(at(10)),
        ips: ips.iter().map(|s| s.to_string()).collect(),
        host_network: false,
    }
}

fn instance(name: &str, id: &str, state: RS, exit_code: i32, restart_count: i32, created: u64) -> RC {
    RC {
        id: id.into(),
        name: name.into(),
        state,
        created_at: Some(at(created)),
        started_at: (state != RS::Created).then(|| at(created + 1)),
        finished_at: (state == RS::Exited).then(|| at(created + 2)),
        exit_code,
        image: format!("docker.io/library/{name}:latest"),
        image_ref: format!("sha256:{name}"),
        hash: "h".into(),
        restart_count,
        reason: if state == RS::Exited { if exit_code == 0 { "Completed" } else { "Error" } } else { "" }.into(),
        message: String::new(),
        termination_message_path: String::new(),
        recursive_read_only_paths: Vec::new(),
    }
}

fn runtime(sandboxes: Vec<SandboxStatus>, containers: Vec<RC>) -> PodStatus {
    PodStatus { uid: "uid-1".into(), name: "p".into(), namespace: "default".into(), sandboxes, containers }
}

struct Case {
    pod: Pod,
    runtime: PodStatus,
    previous: Option<ApiPodStatus>,
    reasons: BTreeMap<String, (String, String)>,
    probes: ProbeResults,
    terminal: bool,
}

impl Case {
    fn new(pod: Pod, runtime: PodStatus) -> Self {
        Self { pod, runtime, previous: None, reasons: BTreeMap::new(), probes: ProbeResults::default(), terminal: false }
    }

    fn run(&self, now: u64) -> ApiPodStatus {
        generate_api_pod_status(&StatusInputs {
            pod: &self.pod,
            runtime: &self.runtime,
            previous: self.previous.as_ref(),
            waiting_reasons: &self.reasons,
            probes: &self.probes,
            host_ip: Some("192.168.1.5"),
            pod_is_terminal: self.terminal,
            runtime_name: "containerd",
            now: at(now),
        })
    }
}

fn cond<'a>(s: &'a ApiPodStatus, type_: &str) -> &'a PodCondition {
    s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == type_).unwrap()
}

fn state_reason(s: &ApiPodStatus, name: &str) -> (Option<String>, Option<String>) {
    let all = s.container_statuses.iter().flatten().chain(s.init_container_statuses.iter().flatten());
    let st = all.into_iter().find(|c| c.name == name).unwrap().state.clone().unwrap();
    (st.waiting.and_then(|w| w.reason), st.terminated.and_then(|t| t.reason))
}

#[test]
fn running_pod() {
    let case = Case::new(
        pod_with("Always", &["web"], &[]),
        runtime(vec![sandbox(&["10.0.0.7", "fd00::7"])], vec![instance("web", "abc", RS::Running, 0, 0, 20)]),
    );
    let s = case.run(100);
    assert_eq!(s.phase.as_deref(), Some(PHASE_RUNNING));
    assert_eq!(s.qos_class.as_deref(), Some(QOS_BEST_EFFORT));
    assert_eq!(s.pod_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(s.pod_ips.as_ref().unwrap().len(), 2);
    assert_eq!(s.host_ip.as_deref(), Some("192.168.1.5"));
    assert_eq!(s.host_ips.as_ref().unwrap()[0].ip, "192.168.1.5");
    assert_eq!(s.start_time, Some(api_time(at(100))));
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(c.container_id.as_deref(), Some("containerd://abc"));
    assert_eq!(c.image, "docker.io/library/web:latest");
    assert_eq!(c.image_id, "sha256:web");
    assert!(c.ready);
    assert_eq!(c.started, Some(true));
    assert_eq!(c.state.as_ref().unwrap().running.as_ref().unwrap().started_at, Some(api_time(at(21))));
    assert!(s.init_container_statuses.is_none());

    let types: Vec<_> = s.conditions.as_ref().unwrap().iter().map(|c| (c.type_.as_str(), c.status.as_str())).collect();
    assert_eq!(
        types,
        [
            (POD_READY_TO_START_CONTAINERS, "True"),
            (POD_INITIALIZED, "True"),
            (POD_READY, "True"),
            (CONTAINERS_READY, "True"),
            (POD_SCHEDULED, "True")
        ]
    );
    assert!(s.conditions.as_ref().unwrap().iter().all(|c| c.last_transition_time == Some(api_time(at(100)))));

    // JSON shape as the API expects.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["containerStatuses"][0]["state"]["running"]["startedAt"], "1970-01-01T00:00:21Z");
}

#[test]
fn started_containers_report_their_mounts_and_recursive_read_only_mode() {
    use k8s_openapi::api::core::v1::VolumeMount;
    let mut pod = pod_with("Always", &["web"], &[]);
    let mount = |name: &str, path: &str, ro: bool, rro: Option<&str>| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(ro),
        recursive_read_only: rro.map(Into::into),
        ..Default::default()
    };
    pod.spec.as_mut().unwrap().containers[0].volume_mounts = Some(vec![
        mount("mnt", "/ro", true, None),
        mount("mnt", "/if-possible", true, Some("IfPossible")),
        mount("mnt", "/rw", false, None),
    ]);
    let case = Case::new(pod.clone(), runtime(vec![sandbox(&["10.0.0.7"])], vec![instance("web", "abc", RS::Running, 0, 0, 20)]));
    let s = case.run(100);
    let mounts = s.container_statuses.unwrap()[0].volume_mounts.clone().unwrap();
    let got: Vec<(&str, Option<bool>, Option<&str>)> =
        mounts.iter().map(|m| (m.mount_path.as_str(), m.read_only, m.recursive_read_only.as_deref())).collect();
    assert_eq!(
        got,
        vec![("/ro", Some(true), Some("Disabled")), ("/if-possible", Some(true), Some("Disabled")), ("/rw", Some(false), None)]
    );
    // Not started yet: no mounts reported.
    let waiting = Case::new(pod, runtime(vec![], vec![])).run(5);
    assert_eq!(waiting.container_statuses.unwrap()[0].volume_mounts, None);
}

#[test]
fn never_created_containers_wait_with_reasons() {
    let mut case = Case::new(pod_with("Always", &["a", "b"], &[]), runtime(vec![], vec![]));
    case.reasons.insert("b".into(), ("ErrImagePull".into(), "pull access denied".into()));
    let s = case.run(5);
    assert_eq!(s.phase.as_deref(), Some(PHASE_PENDING));
    assert_eq!(state_reason(&s, "a").0.as_deref(), Some(REASON_CONTAINER_CREATING));
    let b = &s.container_statuses.as_ref().unwrap()[1];
    let w = b.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!((w.reason.as_deref(), w.message.as_deref()), (Some("ErrImagePull"), Some("pull access denied")));
    assert_eq!(b.image, "img-b");
    assert!(!b.ready);
    assert_eq!(cond(&s, POD_READY_TO_START_CONTAINERS).status, "False");
    let ready = cond(&s, POD_READY);
    assert_eq!(ready.reason.as_deref(), Some(REASON_CONTAINERS_NOT_READY));
    assert_eq!(ready.message.as_deref(), Some("containers with unready status: [a b]"));
    assert!(s.pod_ip.is_none());
}

#[test]
fn init_containers_block_regular_ones() {
    let case = Case::new(
        pod_with("Always", &["app"], &["init"]),
        runtime(vec![sandbox(&["10.0.0.8"])], vec![instance("init", "i1", RS::Running, 0, 0, 20)]),
    );
    let s = case.run(30);
    assert_eq!(s.phase.as_deref(), Some(PHASE_PENDING));
    assert_eq!(state_reason(&s, "app").0.as_deref(), Some(REASON_POD_INITIALIZING));
    let init = cond(&s, POD_INITIALIZED);
    assert_eq!(init.reason.as_deref(), Some(REASON_CONTAINERS_NOT_INITIALIZED));
    assert_eq!(init.message.as_deref(), Some("containers with incomplete status: [init]"));

    // Init done, app running.
    let case = Case::new(
        case.pod.clone(),
        runtime(
            vec![sandbox(&["10.0.0.8"])],
            vec![instance("app", "a1", RS::Running, 0, 0, 40), instance("init", "i1", RS::Exited, 0, 0, 20)],
        ),
    );
    let s = case.run(50);
    assert_eq!(s.phase.as_deref(), Some(PHASE_RUNNING));
    let init = &s.init_container_statuses.as_ref().unwrap()[0];
    assert!(init.ready);
    assert_eq!(init.state.as_ref().unwrap().terminated.as_ref().unwrap().reason.as_deref(), Some("Completed"));
    assert_eq!(cond(&s, POD_INITIALIZED).status, "True");
    assert_eq!(cond(&s, POD_READY).status, "True");
}

#[test]
fn crash_loop_shows_waiting_with_last_state() {
    let mut case = Case::new(
        pod_with("Always", &["app"], &[]),
        runtime(
            vec![sandbox(&["10.0.0.9"])],
            vec![instance("app", "c2", RS::Exited, 1, 1, 40), instance("app", "c1", RS::Exited, 1, 0, 20)],
        ),
    );
    case.reasons.insert("app".into(), ("CrashLoopBackOff".into(), "back-off 10s restarting failed container".into()));
    let s = case.run(50);
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(c.restart_count, 1);
    assert_eq!(c.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("CrashLoopBackOff"));
    let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.container_id.as_deref()), (1, Some("containerd://c2")));
    // Waiting after a termination counts as stopped: Running under Always.
    assert_eq!(s.phase.as_deref(), Some(PHASE_RUNNING));
    assert_eq!(cond(&s, CONTAINERS_READY).status, "False");

    // Restarted: the previous instance becomes lastState.
    case.runtime.containers.insert(0, instance("app", "c3", RS::Running, 0, 2, 60));
    case.reasons.clear();
    let s = case.run(70);
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(c.restart_count, 2);
    assert!(c.state.as_ref().unwrap().running.is_some());
    assert_eq!(c.last_state.as_ref().unwrap().terminated.as_ref().unwrap().container_id.as_deref(), Some("containerd://c2"));
}

#[test]
fn run_to_completion() {
    let case = Case::new(
        pod_with("Never", &["job"], &[]),
        runtime(vec![sandbox(&["10.0.0.9"])], vec![instance("job", "j1", RS::Exited, 0, 0, 20)]),
    );
    let s = case.run(50);
    assert_eq!(s.phase.as_deref(), Some(PHASE_SUCCEEDED));
    let ready = cond(&s, POD_READY);
    assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some(REASON_POD_COMPLETED)));
    assert_eq!(cond(&s, POD_INITIALIZED).reason.as_deref(), Some(REASON_POD_COMPLETED));
}

#[test]
fn terminal_phase_is_sticky_and_keeps_reason() {
    let mut case = Case::new(
        pod_with("Always", &["app"], &[]),
        runtime(vec![sandbox(&["10.0.0.9"])], vec![instance("app", "c1", RS::Running, 0, 0, 20)]),
    );
    case.previous = Some(ApiPodStatus {
        phase: Some(PHASE_FAILED.into()),
        reason: Some("DeadlineExceeded".into()),
        message: Some("Pod was active on the node longer than the specified deadline".into()),
        ..Default::default()
    });
    let s = case.run(50);
    assert_eq!(s.phase.as_deref(), Some(PHASE_FAILED));
    assert_eq!(s.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(cond(&s, POD_READY).reason.as_deref(), Some(REASON_POD_FAILED));

    // The API server's terminal phase wins as well.
    case.previous = None;
    case.pod.status = Some(ApiPodStatus { phase: Some(PHASE_SUCCEEDED.into()), ..Default::default() });
    assert_eq!(case.run(50).phase.as_deref(), Some(PHASE_SUCCEEDED));
}

#[test]
fn previous_status_keeps_times_and_fills_vanished_containers() {
    let mut case = Case::new(
        pod_with("Always", &["app"], &[]),
        runtime(vec![sandbox(&["10.0.0.9"])], vec![instance("app", "c1", RS::Running, 0, 0, 20)]),
    );
    let first = case.run(30);
    case.previous = Some(first.clone());
    let second = case.run(90);
    assert_eq!(second.start_time, Some(api_time(at(30))));
    assert_eq!(cond(&second, POD_READY).last_transition_time, Some(api_time(at(30))));

    // The container disappears from the runtime: it ran, so it terminated with unknown status.
    case.runtime.containers.clear();
    let third = case.run(120);
    let c = &third.container_statuses.as_ref().unwrap()[0];
    let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.reason.as_deref(), last.exit_code), (Some(REASON_CONTAINER_STATUS_UNKNOWN), 137));
    assert_eq!(c.restart_count, 1);
    assert_eq!(third.phase.as_deref(), Some(PHASE_RUNNING));
    assert_eq!(cond(&third, POD_READY).last_transition_time, Some(api_time(at(120))));

    // Runtime reports it in unknown state after it was running: terminated, not waiting.
    case.runtime.containers.push(instance("app", "c1", RS::Unknown, 0, 0, 20));
    let fourth = case.run(130);
    assert_eq!(state_reason(&fourth, "app").1.as_deref(), Some(REASON_CONTAINER_STATUS_UNKNOWN));
}

#[test]
fn readiness_and_startup_probes() {
    let mut pod = pod_with("Always", &["app"], &[]);
    let c = &mut pod.spec.as_mut().unwrap().containers[0];
    c.readiness_probe = Some(Probe::default());
    c.startup_probe = Some(Probe::default());
    let mut case = Case::new(pod, runtime(vec![sandbox(&["10.0.0.9"])], vec![instance("app", "c1", RS::Running, 0, 0, 20)]));
    let s = case.run(30);
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!((c.started, c.ready), (Some(false), false));
    case.probes.startup.insert("app".into(), true);
    let c = case.run(30).container_statuses.unwrap().remove(0);
    assert_eq!((c.started, c.ready), (Some(true), false));
    case.probes.readiness.insert("app".into(), true);
    let s = case.run(30);
    assert!(s.container_statuses.as_ref().unwrap()[0].ready);
    assert_eq!(cond(&s, POD_READY).status, "True");
}

#[test]
fn host_network_uses_host_ip_and_foreign_conditions_are_kept() {
    let mut pod = pod_with("Always", &["app"], &[]);
    pod.spec.as_mut().unwrap().host_network = Some(true);
    pod.status = Some(ApiPodStatus {
        conditions: Some(vec![
            PodCondition { type_: "example.com/gate".into(), status: "True".into(), ..Default::default() },
            PodCondition { type_: POD_READY.into(), status: "False".into(), ..Default::default() },
        ]),
        ..Default::default()
    });
    let mut sb = sandbox(&[]);
    sb.host_network = true;
    let case = Case::new(pod, runtime(vec![sb], vec![instance("app", "c1", RS::Running, 0, 0, 20)]));
    let s = case.run(30);
    assert_eq!(s.pod_ip.as_deref(), Some("192.168.1.5"));
    assert_eq!(cond(&s, POD_READY_TO_START_CONTAINERS).status, "True");
    let conds = s.conditions.as_ref().unwrap();
    assert_eq!(conds[0].type_, "example.com/gate");
    assert_eq!(conds.iter().filter(|c| c.type_ == POD_READY).count(), 1);
}

#[test]
fn pod_ips_follow_node_family() {
    let ips = ["fd00::1".to_string(), "10.0.0.1".to_string(), "10.0.0.2".to_string()];
    assert_eq!(sort_pod_ips(&ips, Some("192.168.1.5")), ["10.0.0.1", "fd00::1"]);
    assert_eq!(sort_pod_ips(&ips, Some("2001:db8::5")), ["fd00::1", "10.0.0.1"]);
    assert_eq!(sort_pod_ips(&["bogus".to_string()], None), Vec::<String>::new());
}

#[test]
fn time_conversion_truncates_to_seconds() {
    let t = UNIX_EPOCH + Duration::from_millis(1_500);
    assert_eq!(api_time(t), api_time_secs(1));
    let before = UNIX_EPOCH - Duration::from_millis(500);
    assert_eq!(api_time(before), api_time_secs(-1));
}

#[test]
fn observed_generation_follows_the_pod_generation() {
    let rt = || runtime(vec![sandbox(&["10.0.0.7"])], vec![instance("web", "abc", RS::Running, 0, 0, 20)]);
    let mut case = Case::new(pod_with("Always", &["web"], &[]), rt());
    case.pod.metadata.generation = Some(3);
    let s = case.run(100);
    assert_eq!(s.observed_generation, Some(3));
    let conds = s.conditions.unwrap();
    assert!(conds.iter().all(|c| c.observed_generation == Some(3)), "{conds:?}");
    let case = Case::new(pod_with("Always", &["web"], &[]), rt());
    assert_eq!(case.run(100).observed_generation, None);
}

#[test]
fn adopted_containers_keep_their_published_readiness_until_probed() {
    use k8s_openapi::api::core::v1::{ContainerStatus as ApiCS, PodCondition};
    let mut p = pod_with("Always", &["web"], &[]);
    p.spec.as_mut().unwrap().containers[0].readiness_probe = Some(Probe::default());
    p.spec.as_mut().unwrap().containers[0].startup_probe = Some(Probe::default());
    let rt = runtime(vec![sandbox(&["10.0.0.7"])], vec![instance("web", "abc", RS::Running, 0, 0, 20)]);
    let mut case = Case::new(p, rt);
    // What the API had before this kubelet started: started, ready, the pod Ready.
    let previous = ApiPodStatus {
        container_statuses: Some(vec![ApiCS { name: "web".into(), started: Some(true), ready: true, ..Default::default() }]),
        conditions: Some(vec![PodCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
        ..Default::default()
    };
    case.pod.status = Some(previous);
    case.probes.adopted.insert("web".into());
    let s = case.run(100);
    let cs = &s.container_statuses.unwrap()[0];
    assert_eq!((cs.started, cs.ready), (Some(true), true), "no flap on a kubelet restart");
    // A verdict, once there, decides.
    case.probes.readiness.insert("web".into(), false);
    let s = case.run(101);
    assert!(!s.container_statuses.unwrap()[0].ready);
    // Not adopted (started under this kubelet): not ready without a verdict.
    case.probes = ProbeResults::default();
    let s = case.run(102);
    assert!(!s.container_statuses.unwrap()[0].ready);
}

#[test]
fn a_finished_pod_keeps_the_ips_it_ran_with_after_its_sandbox_stopped() {
    let running = Case::new(
        pod_with("Never", &["job"], &[]),
        runtime(vec![sandbox(&["10.0.0.9"])], vec![instance("job", "abc", RS::Running, 0, 0, 20)]),
    );
    let before = running.run(100);
    assert_eq!(before.pod_ip.as_deref(), Some("10.0.0.9"));
    let mut done =
        Case::new(pod_with("Never", &["job"], &[]), runtime(vec![sandbox(&[])], vec![instance("job", "abc", RS::Exited, 0, 20, 30)]));
    done.previous = Some(before);
    done.terminal = true;
    let s = done.run(130);
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    assert_eq!((s.pod_ip.as_deref(), s.pod_ips.map(|v| v.len())), (Some("10.0.0.9"), Some(1)));
    // A pod still running with no IP (its sandbox being recreated) does not keep old ones.
    let mut pending = Case::new(pod_with("Always", &["web"], &[]), runtime(vec![sandbox(&[])], vec![]));
    pending.previous = Some(running.run(100));
    assert!(pending.run(130).pod_ip.is_none());
}
