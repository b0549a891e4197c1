//! Table tests of the pure sync planner.

use super::*;
use crate::container::{ContainerStatus, SandboxStatus};
use crate::kuberuntime::hash::container_hash;
use k8s_openapi::api::core::v1::PodSpec;

fn pod(policy: &str, names: &[&str], inits: &[&str]) -> Pod {
    let mk = |n: &&str| Container { name: n.to_string(), image: Some("busybox".into()), ..Default::default() };
    Pod {
        spec: Some(PodSpec {
            restart_policy: Some(policy.into()),
            containers: names.iter().map(mk).collect(),
            init_containers: (!inits.is_empty()).then(|| inits.iter().map(mk).collect()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ready_sandbox() -> SandboxStatus {
    SandboxStatus {
        id: "sb1".into(),
        state: SandboxState::Ready,
        attempt: 0,
        created_at: None,
        ips: vec!["198.18.0.5".into()],
        host_network: false,
    }
}

fn ctr(pod: &Pod, name: &str, state: ContainerState, exit_code: i32) -> ContainerStatus {
    let spec = pod
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .chain(pod.spec.as_ref().unwrap().init_containers.iter().flatten())
        .find(|c| c.name == name)
        .unwrap();
    ContainerStatus {
        id: format!("id-{name}"),
        name: name.into(),
        state,
        created_at: None,
        started_at: None,
        finished_at: None,
        exit_code,
        image: "busybox".into(),
        image_ref: String::new(),
        hash: container_hash(spec),
        restart_count: 0,
        reason: String::new(),
        message: String::new(),
        termination_message_path: String::new(),
        recursive_read_only_paths: Vec::new(),
    }
}

fn status(sandboxes: Vec<SandboxStatus>, containers: Vec<ContainerStatus>) -> PodStatus {
    PodStatus { sandboxes, containers, ..Default::default() }
}

#[test]
fn new_pod_creates_sandbox_and_starts_all_containers() {
    let p = pod("Always", &["a", "b"], &[]);
    let a = compute_pod_actions(&p, &PodStatus::default());
    assert!(a.create_sandbox && a.kill_pod);
    assert_eq!(a.attempt, 0);
    assert_eq!(a.containers_to_start, vec![0, 1]);
}

#[test]
fn running_pod_needs_nothing() {
    let p = pod("Always", &["a"], &[]);
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "a", ContainerState::Running, 0)]);
    assert_eq!(compute_pod_actions(&p, &s), PodActions { sandbox_id: Some("sb1".into()), ..Default::default() });
}

#[test]
fn exited_container_restart_follows_policy() {
    for (policy, code, restart) in [
        ("Always", 0, true),
        ("Always", 1, true),
        ("OnFailure", 0, false),
        ("OnFailure", 2, true),
        ("Never", 0, false),
        ("Never", 1, false),
    ] {
        let p = pod(policy, &["a"], &[]);
        let s = status(vec![ready_sandbox()], vec![ctr(&p, "a", ContainerState::Exited, code)]);
        let a = compute_pod_actions(&p, &s);
        assert_eq!(a.containers_to_start == vec![0], restart, "{policy} exit {code}");
        // Nothing left to run: the sandbox is killed.
        assert_eq!(a.kill_pod, !restart, "{policy} exit {code}");
    }
}

#[test]
fn changed_spec_restarts_running_container() {
    let p = pod("Always", &["a"], &[]);
    let mut c = ctr(&p, "a", ContainerState::Running, 0);
    c.hash = "stale".into();
    let a = compute_pod_actions(&p, &status(vec![ready_sandbox()], vec![c]));
    assert_eq!(a.containers_to_kill.len(), 1);
    assert_eq!(a.containers_to_start, vec![0]);
}

#[test]
fn dead_sandbox_is_recreated_unless_never_policy_already_ran() {
    let mut sb = ready_sandbox();
    sb.state = SandboxState::NotReady;
    let p = pod("Always", &["a"], &[]);
    let s = status(vec![sb.clone()], vec![ctr(&p, "a", ContainerState::Exited, 137)]);
    let a = compute_pod_actions(&p, &s);
    assert!(a.create_sandbox && a.kill_pod);
    assert_eq!(a.attempt, 1);
    assert_eq!(a.containers_to_start, vec![0]);

    let p = pod("Never", &["a"], &[]);
    let s = status(vec![sb], vec![ctr(&p, "a", ContainerState::Exited, 137)]);
    let a = compute_pod_actions(&p, &s);
    assert!(!a.create_sandbox && a.kill_pod);
    assert!(a.containers_to_start.is_empty());
}

#[test]
fn on_failure_sandbox_recreation_skips_succeeded_containers() {
    let mut sb = ready_sandbox();
    sb.state = SandboxState::NotReady;
    let p = pod("OnFailure", &["a", "b"], &[]);
    let s = status(vec![sb], vec![ctr(&p, "a", ContainerState::Exited, 0), ctr(&p, "b", ContainerState::Exited, 1)]);
    assert_eq!(compute_pod_actions(&p, &s).containers_to_start, vec![1]);
}

#[test]
fn init_containers_run_one_at_a_time_before_app_containers() {
    let p = pod("Always", &["app"], &["i1", "i2"]);
    let a = compute_pod_actions(&p, &PodStatus::default());
    assert_eq!(a.init_containers_to_start, vec![0]);
    assert!(a.containers_to_start.is_empty());

    let s = status(vec![ready_sandbox()], vec![ctr(&p, "i1", ContainerState::Running, 0)]);
    assert!(compute_pod_actions(&p, &s).init_containers_to_start.is_empty());

    let s = status(vec![ready_sandbox()], vec![ctr(&p, "i1", ContainerState::Exited, 0)]);
    assert_eq!(compute_pod_actions(&p, &s).init_containers_to_start, vec![1]);

    let s = status(vec![ready_sandbox()], vec![ctr(&p, "i1", ContainerState::Exited, 0), ctr(&p, "i2", ContainerState::Exited, 0)]);
    let a = compute_pod_actions(&p, &s);
    assert_eq!((a.init_containers_to_start, a.containers_to_start), (vec![], vec![0]));
}

#[test]
fn failed_init_container_restarts_or_fails_the_pod() {
    let p = pod("Always", &["app"], &["i1"]);
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "i1", ContainerState::Exited, 1)]);
    assert_eq!(compute_pod_actions(&p, &s).init_containers_to_start, vec![0]);

    let p = pod("Never", &["app"], &["i1"]);
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "i1", ContainerState::Exited, 1)]);
    let a = compute_pod_actions(&p, &s);
    assert!(a.kill_pod && a.init_containers_to_start.is_empty());
}

#[test]
fn two_ready_sandboxes_force_recreation() {
    let p = pod("Always", &["a"], &[]);
    let mut second = ready_sandbox();
    second.id = "sb0".into();
    let s = status(vec![ready_sandbox(), second], vec![]);
    assert!(compute_pod_actions(&p, &s).create_sandbox);
}

#[test]
fn on_failure_pod_whose_containers_all_succeeded_is_terminal() {
    let mut sb = ready_sandbox();
    sb.state = SandboxState::NotReady;
    let p = pod("OnFailure", &["a"], &[]);
    let s = status(vec![sb], vec![ctr(&p, "a", ContainerState::Exited, 0)]);
    let a = compute_pod_actions(&p, &s);
    assert!(a.kill_pod && !a.create_sandbox);
    assert!(pod_is_terminal(&p, &s));
    let p = pod("Always", &["a"], &[]);
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "a", ContainerState::Exited, 0)]);
    assert!(!pod_is_terminal(&p, &s));
}

fn with_sidecar(mut p: Pod, name: &str, startup_probe: bool) -> Pod {
    let inits = p.spec.as_mut().unwrap().init_containers.get_or_insert_with(Vec::new);
    let c = inits.iter_mut().find(|c| c.name == name).unwrap();
    c.restart_policy = Some("Always".into());
    if startup_probe {
        c.startup_probe = Some(Default::default());
    }
    p
}

#[test]
fn a_started_sidecar_lets_the_next_init_container_run() {
    let p = with_sidecar(pod("Never", &["app"], &["proxy", "setup"]), "proxy", false);
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "proxy", ContainerState::Running, 0)]);
    assert_eq!(compute_pod_actions(&p, &s).init_containers_to_start, vec![1]);
    // After the regular init container succeeded, the app starts; the sidecar keeps running.
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "proxy", ContainerState::Running, 0), ctr(&p, "setup", ContainerState::Exited, 0)]);
    let a = compute_pod_actions(&p, &s);
    assert_eq!((a.init_containers_to_start, a.containers_to_start, a.kill_pod), (vec![], vec![0], false));
}

#[test]
fn a_sidecar_with_a_startup_probe_holds_init_until_it_passes() {
    let p = with_sidecar(pod("Always", &["app"], &["proxy", "setup"]), "proxy", true);
    let proxy = ctr(&p, "proxy", ContainerState::Running, 0);
    let s = status(vec![ready_sandbox()], vec![proxy.clone()]);
    let a = compute_pod_actions(&p, &s);
    assert!(a.init_containers_to_start.is_empty() && a.containers_to_start.is_empty(), "{a:?}");
    let started = ProbeVerdicts { started: [proxy.id.clone()].into(), ..Default::default() };
    assert_eq!(compute_pod_actions_with_probes(&p, &s, &started).init_containers_to_start, vec![1]);
    // A failed startup probe restarts the sidecar even in a pod that never restarts.
    let failed = ProbeVerdicts { failed: [(proxy.id.clone(), ProbeKind::Startup)].into(), ..Default::default() };
    let a = compute_pod_actions_with_probes(&p, &s, &failed);
    assert_eq!(a.containers_to_kill[0].message, "Init container proxy failed startup probe");
    assert_eq!(a.init_containers_to_start, vec![0]);
}

#[test]
fn exited_sidecars_restart_whatever_the_pod_policy() {
    let p = with_sidecar(pod("Never", &["app"], &["proxy"]), "proxy", false);
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "proxy", ContainerState::Exited, 1)]);
    assert_eq!(compute_pod_actions(&p, &s).init_containers_to_start, vec![0]);
    // After initialisation too, without touching the running app.
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "proxy", ContainerState::Exited, 0), ctr(&p, "app", ContainerState::Running, 0)]);
    let a = compute_pod_actions(&p, &s);
    assert_eq!((a.init_containers_to_start, a.containers_to_start, a.kill_pod), (vec![0], vec![], false));
}

#[test]
fn a_job_with_a_sidecar_completes_when_its_app_does() {
    let p = with_sidecar(pod("Never", &["app"], &["proxy"]), "proxy", false);
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "proxy", ContainerState::Running, 0), ctr(&p, "app", ContainerState::Exited, 0)]);
    let a = compute_pod_actions(&p, &s);
    assert!(a.kill_pod && !a.create_sandbox && a.containers_to_start.is_empty(), "{a:?}");
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "proxy", ContainerState::Exited, 137), ctr(&p, "app", ContainerState::Exited, 0)]);
    assert!(pod_is_terminal(&p, &s));
}

#[test]
fn container_restart_policy_and_rules_decide_over_the_pod_policy() {
    use k8s_openapi::api::core::v1::{ContainerRestartRule, ContainerRestartRuleOnExitCodes};
    let mut p = pod("Always", &["once", "retry"], &[]);
    let spec = p.spec.as_mut().unwrap();
    spec.containers[0].restart_policy = Some("Never".into());
    spec.containers[1].restart_policy = Some("Never".into());
    spec.containers[1].restart_policy_rules = Some(vec![ContainerRestartRule {
        action: "Restart".into(),
        exit_codes: Some(ContainerRestartRuleOnExitCodes { operator: "In".into(), values: Some(vec![42]) }),
    }]);
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "once", ContainerState::Exited, 1), ctr(&p, "retry", ContainerState::Exited, 42)]);
    assert_eq!(compute_pod_actions(&p, &s).containers_to_start, vec![1]);
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "once", ContainerState::Exited, 1), ctr(&p, "retry", ContainerState::Exited, 7)]);
    let a = compute_pod_actions(&p, &s);
    assert!(a.containers_to_start.is_empty() && a.kill_pod, "{a:?}");
}

#[test]
fn ephemeral_containers_start_once_even_during_init() {
    use k8s_openapi::api::core::v1::EphemeralContainer;
    let mut p = pod("Always", &["app"], &["setup"]);
    p.spec.as_mut().unwrap().ephemeral_containers = Some(vec![EphemeralContainer { name: "debug".into(), ..Default::default() }]);
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "setup", ContainerState::Running, 0)]);
    assert_eq!(compute_pod_actions(&p, &s).ephemeral_containers_to_start, vec![0]);
    let mut debug = ctr(&p, "app", ContainerState::Exited, 0);
    debug.name = "debug".into();
    let s = status(vec![ready_sandbox()], vec![ctr(&p, "app", ContainerState::Running, 0), debug]);
    let a = compute_pod_actions(&p, &s);
    assert!(a.ephemeral_containers_to_start.is_empty() && a.containers_to_start.is_empty(), "never restarted: {a:?}");
}

#[test]
fn a_sidecar_whose_image_changed_is_restarted_during_and_after_init() {
    let p = with_sidecar(pod("Never", &["app"], &["proxy", "setup"]), "proxy", false);
    let mut old = ctr(&p, "proxy", ContainerState::Running, 0);
    old.hash = "stale".into();
    let s = status(vec![ready_sandbox()], vec![old.clone(), ctr(&p, "setup", ContainerState::Running, 0)]);
    let a = compute_pod_actions(&p, &s);
    assert_eq!(a.containers_to_kill[0].message, "Init container proxy definition changed");
    assert_eq!(a.init_containers_to_start, vec![0]);
    let s = status(vec![ready_sandbox()], vec![old, ctr(&p, "app", ContainerState::Running, 0)]);
    let a = compute_pod_actions(&p, &s);
    assert_eq!((a.containers_to_kill.len(), a.init_containers_to_start), (1, vec![0]));
}
