//! Tests of the resize status fields.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn res(cpu: &str) -> ResourceRequirements {
    let list: BTreeMap<String, Quantity> = [("cpu".to_string(), Quantity(cpu.into()))].into_iter().collect();
    ResourceRequirements { requests: Some(list), ..Default::default() }
}

fn pod() -> Pod {
    let spec = PodSpec {
        containers: vec![
            Container { name: "a".into(), resources: Some(res("30m")), ..Default::default() },
            Container { name: "b".into(), ..Default::default() },
        ],
        ..Default::default()
    };
    Pod { metadata: ObjectMeta { generation: Some(3), ..Default::default() }, spec: Some(spec), ..Default::default() }
}

fn status(a_running: bool) -> PodStatus {
    let running = ContainerState { running: Some(ContainerStateRunning::default()), ..Default::default() };
    let waiting = ContainerState { waiting: Some(ContainerStateWaiting::default()), ..Default::default() };
    PodStatus {
        container_statuses: Some(vec![
            ContainerStatus { name: "a".into(), state: Some(if a_running { running.clone() } else { waiting }), ..Default::default() },
            ContainerStatus { name: "b".into(), state: Some(running), ..Default::default() },
        ]),
        ..Default::default()
    }
}

#[test]
fn running_containers_report_what_they_were_given_until_the_resize_lands() {
    let p = pod();
    let actuated = |n: &str| (n == "a").then(|| res("20m"));
    let facts = ResizeFacts { allocated: &p, actuated: &actuated, pending: None, error: None, allocated_generation: None, now: UNIX_EPOCH };
    let mut s = status(true);
    assert!(add_resize_status(&mut s, None, &facts));
    let cs = s.container_statuses.as_ref().unwrap();
    assert_eq!(cs[0].allocated_resources.as_ref().unwrap()["cpu"].0, "30m");
    assert_eq!(cs[0].resources.as_ref().unwrap().requests.as_ref().unwrap()["cpu"].0, "20m");
    // No resources: an empty requirements object and no allocation, as upstream.
    assert_eq!(cs[1].resources, Some(ResourceRequirements::default()));
    assert_eq!(cs[1].allocated_resources, None);
    let cond = s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == POD_RESIZE_IN_PROGRESS).unwrap();
    assert_eq!((cond.status.as_str(), cond.observed_generation, cond.reason.clone()), ("True", Some(3), None));
    // A container that is not running reports its allocation; nothing is in progress.
    let mut s = status(false);
    assert!(!add_resize_status(&mut s, None, &facts));
    assert_eq!(s.container_statuses.as_ref().unwrap()[0].resources.as_ref().unwrap().requests.as_ref().unwrap()["cpu"].0, "30m");
    assert!(s.conditions.as_ref().unwrap().is_empty());
}

#[test]
fn pending_and_error_conditions_keep_their_transition_time() {
    let p = pod();
    let actuated = |_: &str| None;
    let pending = PendingResize {
        reason: "Infeasible",
        message: "Node didn't have enough capacity: cpu, requested: 5000, capacity: 2000".into(),
        generation: 2,
    };
    let facts = ResizeFacts {
        allocated: &p,
        actuated: &actuated,
        pending: Some(pending),
        error: Some("boom".into()),
        allocated_generation: Some(2),
        now: UNIX_EPOCH + std::time::Duration::from_secs(100),
    };
    let mut s = status(true);
    add_resize_status(&mut s, None, &facts);
    let later = ResizeFacts { now: UNIX_EPOCH + std::time::Duration::from_secs(200), ..facts };
    let mut again = status(true);
    add_resize_status(&mut again, Some(&s), &later);
    let conds = again.conditions.unwrap();
    assert_eq!(conds.len(), 2);
    let pending = conds.iter().find(|c| c.type_ == POD_RESIZE_PENDING).unwrap();
    assert_eq!((pending.reason.as_deref(), pending.observed_generation), (Some("Infeasible"), Some(2)));
    assert_eq!(pending.last_transition_time.as_ref().unwrap().0.as_second(), 100);
    let error = conds.iter().find(|c| c.type_ == POD_RESIZE_IN_PROGRESS).unwrap();
    assert_eq!((error.reason.as_deref(), error.message.as_deref(), error.observed_generation), (Some("Error"), Some("boom"), Some(2)));
}

#[test]
fn a_new_reason_is_a_new_transition_and_the_api_status_backfills_after_a_restart() {
    let p = pod();
    let actuated = |_: &str| None;
    let at = |s: u64| UNIX_EPOCH + std::time::Duration::from_secs(s);
    let pending = |reason: &'static str| PendingResize { reason, message: "m".into(), generation: 3 };
    let facts = ResizeFacts {
        allocated: &p,
        actuated: &actuated,
        pending: Some(pending("Deferred")),
        error: None,
        allocated_generation: None,
        now: at(100),
    };
    // What the API holds from before a kubelet restart stands in for the previous status.
    let mut from_api = status(true);
    add_resize_status(&mut from_api, None, &facts);
    from_api.conditions.as_mut().unwrap().push(PodCondition {
        type_: POD_RESIZE_IN_PROGRESS.into(),
        status: "True".into(),
        observed_generation: Some(2),
        ..Default::default()
    });
    assert_eq!(in_progress_generation(Some(&from_api)), Some(2));
    assert_eq!(in_progress_generation(Some(&status(true))), None);
    let transition = |s: &PodStatus| {
        let c = s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == POD_RESIZE_PENDING).unwrap().clone();
        c.last_transition_time.unwrap().0.as_second()
    };
    let mut after_restart = status(true);
    add_resize_status(&mut after_restart, Some(&from_api), &ResizeFacts { now: at(200), ..facts });
    assert_eq!(transition(&after_restart), 100, "the same reason keeps its transition time");
    let mut infeasible = status(true);
    let facts = ResizeFacts {
        allocated: &p,
        actuated: &actuated,
        pending: Some(pending("Infeasible")),
        error: None,
        allocated_generation: None,
        now: at(300),
    };
    add_resize_status(&mut infeasible, Some(&after_restart), &facts);
    assert_eq!(transition(&infeasible), 300, "a new reason is a new transition, as upstream");
}
