//! Tests of the resize planner.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerResizePolicy, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::*;
use crate::container::{ContainerStatus, SandboxState, SandboxStatus};
use crate::kuberuntime::hash::container_hash;

fn res(cpu: &str, memory: &str) -> ResourceRequirements {
    let list: BTreeMap<String, Quantity> =
        [("cpu", cpu), ("memory", memory)].iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect();
    ResourceRequirements { requests: Some(list.clone()), limits: Some(list), ..Default::default() }
}

fn container(name: &str, r: ResourceRequirements, memory_restarts: bool) -> Container {
    let policy =
        memory_restarts.then(|| vec![ContainerResizePolicy { resource_name: "memory".into(), restart_policy: "RestartContainer".into() }]);
    Container { name: name.into(), image: Some("busybox".into()), resources: Some(r), resize_policy: policy, ..Default::default() }
}

fn running(c: &Container) -> ContainerStatus {
    ContainerStatus {
        id: format!("id-{}", c.name),
        name: c.name.clone(),
        state: ContainerState::Running,
        created_at: None,
        started_at: None,
        finished_at: None,
        exit_code: 0,
        image: "busybox".into(),
        image_ref: String::new(),
        hash: container_hash(c),
        restart_count: 0,
        reason: String::new(),
        message: String::new(),
        termination_message_path: String::new(),
        recursive_read_only_paths: Vec::new(),
    }
}

fn pod(containers: Vec<Container>, sidecar: Option<Container>) -> Pod {
    let spec = PodSpec { containers, init_containers: sidecar.map(|s| vec![s]), ..Default::default() };
    Pod { spec: Some(spec), ..Default::default() }
}

fn status_of(p: &Pod) -> PodStatus {
    let s = p.spec.as_ref().unwrap();
    let sandbox = SandboxStatus {
        id: "sb".into(),
        state: SandboxState::Ready,
        attempt: 0,
        created_at: None,
        ips: vec!["198.18.0.9".into()],
        host_network: false,
    };
    PodStatus {
        sandboxes: vec![sandbox],
        containers: s.containers.iter().chain(s.init_containers.iter().flatten()).map(running).collect(),
        ..Default::default()
    }
}

#[test]
fn changed_containers_are_updated_or_restarted_by_their_policy() {
    let mut sidecar = container("proxy", res("10m", "20Mi"), false);
    sidecar.restart_policy = Some("Always".into());
    let p = pod(
        vec![container("a", res("20m", "40Mi"), false), container("b", res("20m", "40Mi"), true), container("c", res("20m", "40Mi"), true)],
        Some(sidecar),
    );
    let s = status_of(&p);
    let actuated = |name: &str| match name {
        "a" => Some(res("25m", "40Mi")), // cpu changed, updated in place
        "b" => Some(res("20m", "35Mi")), // memory changed, restart policy
        "c" => Some(res("25m", "40Mi")), // cpu changed only: memory's policy does not apply
        "proxy" => Some(res("10m", "25Mi")),
        _ => None,
    };
    let plan = plan_resize(&p, &s, &PodActions::default(), actuated);
    let updated: Vec<_> = plan.update.iter().map(|u| (u.name.as_str(), u.slot)).collect();
    assert_eq!(updated, vec![("a", Slot::Regular(0)), ("c", Slot::Regular(2)), ("proxy", Slot::Init(0))]);
    assert_eq!(plan.restart.len(), 1);
    assert_eq!(plan.restart[0].0, Slot::Regular(1));
    assert_eq!(plan.restart[0].1.message, "Container b resize requires restart");
    let mut actions = PodActions::default();
    plan.add_restarts(&mut actions);
    assert_eq!((actions.containers_to_kill.len(), actions.containers_to_start.clone()), (1, vec![1]));
}

#[test]
fn unchanged_unrecorded_and_already_killed_containers_are_left_alone() {
    let p = pod(vec![container("a", res("1", "1Gi"), false), container("b", res("1", "1Gi"), false)], None);
    let s = status_of(&p);
    let killed = PodActions {
        containers_to_kill: vec![ContainerToKill { id: "id-b".into(), name: "b".into(), message: String::new(), grace_override: None }],
        ..Default::default()
    };
    let plan = plan_resize(&p, &s, &killed, |n| (n == "a").then(|| res("1000m", "1024Mi")).or_else(|| Some(res("2", "1Gi"))));
    assert!(plan.is_empty(), "{plan:?}");
    assert!(plan_resize(&p, &s, &PodActions::default(), |_| None).is_empty());
}

#[test]
fn the_pod_cgroup_widens_first_and_refuses_to_shrink_below_use() {
    let target = CgroupResources {
        cpu_shares: Some(30),
        cpu_quota: Some(3000),
        cpu_period: Some(100_000),
        memory_limit: Some(40 << 20),
        pids_limit: None,
    };
    let current = CgroupLimits { cpu_quota: Some(5000), memory_limit: Some(30 << 20), memory_usage: Some(10 << 20) };
    let w = widened(&current, &target);
    assert_eq!((w.cpu_shares, w.cpu_quota, w.memory_limit), (Some(30), Some(5000), Some(40 << 20)));
    // An unlimited pod cgroup stays so until the final write.
    let w = widened(&CgroupLimits::default(), &target);
    assert_eq!((w.cpu_quota, w.memory_limit), (None, None));
    assert!(memory_shrink_refused(&current, &target).is_none());
    let busy = CgroupLimits { memory_limit: Some(60 << 20), memory_usage: Some(50 << 20), ..current };
    assert_eq!(
        memory_shrink_refused(&busy, &target).unwrap(),
        format!("attempting to set pod memory limit ({}) below current usage ({})", 40 << 20, 50 << 20)
    );
    // Only a lowered (or newly set) limit is checked, as upstream.
    let at_limit = CgroupLimits { memory_limit: Some(40 << 20), memory_usage: Some(40 << 20), ..current };
    assert!(memory_shrink_refused(&at_limit, &target).is_none());
    let unlimited = CgroupLimits { memory_limit: None, memory_usage: Some(50 << 20), ..current };
    assert!(memory_shrink_refused(&unlimited, &target).is_some());
}

#[test]
fn memory_decreases_are_found_and_refused_as_upstream() {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let req = |mem: Option<&str>| ResourceRequirements {
        limits: mem.map(|m| std::collections::BTreeMap::from([("memory".to_string(), Quantity(m.into()))])),
        ..Default::default()
    };
    let update = |name: &str, mem: Option<&str>| ContainerUpdate {
        id: format!("id-{name}"),
        name: name.into(),
        slot: Slot::Regular(0),
        resources: req(mem),
    };
    let plan = ResizePlan {
        update: vec![update("down", Some("64Mi")), update("up", Some("256Mi")), update("new", Some("32Mi")), update("none", None)],
        restart: Vec::new(),
    };
    let actuated = |name: &str| match name {
        "down" | "up" => Some(req(Some("128Mi"))),
        "new" => Some(req(None)),
        _ => None,
    };
    assert_eq!(
        memory_decreases(&plan, actuated),
        vec![("id-down".to_string(), "down".to_string(), 64 << 20), ("id-new".to_string(), "new".to_string(), 32 << 20)]
    );
    assert_eq!(container_shrink_refused("down", 64 << 20, Some(10)), None);
    assert_eq!(
        container_shrink_refused("down", 64, Some(64)).unwrap(),
        "attempting to set container \"down\" memory limit (64) below current usage (64)"
    );
    assert_eq!(container_shrink_refused("down", 64, None).unwrap(), "missing container \"down\" memory usage");
    assert_eq!(memory_decrease_error(&[]), None);
    assert_eq!(memory_decrease_error(&["a".into()]).unwrap(), "cannot decrease memory limits: a");
    assert_eq!(memory_decrease_error(&["a".into(), "b".into()]).unwrap(), "cannot decrease memory limits: [a, b]");
}
