use super::*;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn list(kv: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
    (!kv.is_empty()).then(|| kv.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect())
}

fn pod(uid: &str, generation: i64, requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Pod {
    let c = Container {
        name: "c1".into(),
        resources: Some(ResourceRequirements { requests: list(requests), limits: list(limits), ..Default::default() }),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta { uid: Some(uid.into()), generation: Some(generation), ..Default::default() },
        spec: Some(PodSpec { containers: vec![c], ..Default::default() }),
        ..Default::default()
    }
}

fn cpu_request(p: &Pod) -> String {
    p.spec.as_ref().unwrap().containers[0].resources.as_ref().unwrap().requests.as_ref().unwrap()["cpu"].0.clone()
}

fn node() -> Allocatable {
    Allocatable { milli_cpu: 1000, memory: 1 << 30 }
}

#[test]
fn a_fitting_resize_is_allocated_and_the_pod_runs_with_it() {
    let m = AllocationManager::new(None, node());
    let v1 = pod("a", 1, &[("cpu", "100m")], &[]);
    m.admit(&v1);
    assert_eq!(m.handle_resize(&v1), ResizeDecision::Unchanged);
    let v2 = pod("a", 2, &[("cpu", "0.2")], &[]);
    // Until allocated, the pod runs with what was admitted.
    assert_eq!(cpu_request(&m.allocated_pod(&v2)), "100m");
    assert_eq!(m.handle_resize(&v2), ResizeDecision::Allocated);
    assert_eq!(cpu_request(&m.allocated_pod(&v2)), "0.2");
    assert_eq!(m.allocated_generation("a"), Some(2));
    // An error applying it is news once; the same error again is not; success clears it.
    assert!(m.note_resize_error("a", Some("boom")));
    assert!(!m.note_resize_error("a", Some("boom")));
    assert!(!m.note_resize_error("a", None));
    assert!(m.note_resize_error("a", Some("boom")));
    assert_eq!(m.handle_resize(&v2), ResizeDecision::Unchanged);
    // Equivalent quantities are no change.
    assert_eq!(m.handle_resize(&pod("a", 3, &[("cpu", "200m")], &[])), ResizeDecision::Unchanged);
}

#[test]
fn infeasible_alone_deferred_next_to_others_and_retried() {
    let m = AllocationManager::new(None, node());
    let a = pod("a", 1, &[("cpu", "100m")], &[]);
    let b = pod("b", 1, &[("cpu", "600m")], &[]);
    m.admit(&a);
    m.admit(&b);
    let ResizeDecision::Pending { pending, newly } = m.handle_resize(&pod("a", 2, &[("cpu", "2")], &[])) else { panic!() };
    assert_eq!((pending.reason, newly, pending.generation), (REASON_INFEASIBLE, true, 2));
    assert_eq!(pending.message, "Node didn't have enough capacity: cpu, requested: 2000, capacity: 1000");
    let a3 = pod("a", 3, &[("cpu", "500m")], &[]);
    let ResizeDecision::Pending { pending, newly } = m.handle_resize(&a3) else { panic!() };
    assert_eq!((pending.reason, newly), (REASON_DEFERRED, true));
    assert_eq!(pending.message, "Node didn't have enough resource: cpu, requested: 500, used: 600, capacity: 1000");
    // The same decision again is not news.
    assert!(matches!(m.handle_resize(&a3), ResizeDecision::Pending { newly: false, .. }));
    assert!(m.pending("a").is_some());
    // The other pod goes: the deferred resize fits now.
    m.remove_pod("b");
    assert_eq!(m.handle_resize(&a3), ResizeDecision::Allocated);
    assert!(m.pending("a").is_none());
}

/// Every UID woken so far.
fn drain(wakes: &mut mpsc::UnboundedReceiver<String>) -> BTreeSet<String> {
    std::iter::from_fn(|| wakes.try_recv().ok()).collect()
}

fn with_priority(mut p: Pod, priority: i32) -> Pod {
    p.spec.as_mut().unwrap().priority = Some(priority);
    p
}

#[test]
fn freed_room_goes_to_the_deferred_resizes_in_upstreams_order() {
    let m = AllocationManager::new(None, node());
    let mut wakes = m.take_wakes().expect("the first taker gets the receiver");
    assert!(m.take_wakes().is_none());
    let big = pod("big", 1, &[("cpu", "600m")], &[]);
    let old = with_priority(pod("old", 1, &[("cpu", "100m")], &[]), 0);
    let high = with_priority(pod("high", 1, &[("cpu", "100m")], &[]), 1000);
    for p in [&big, &old, &high] {
        m.admit(p);
    }
    // Both want 600m; deferred first: the older one, with the lower priority.
    let old2 = with_priority(pod("old", 2, &[("cpu", "600m")], &[]), 0);
    let high2 = with_priority(pod("high", 2, &[("cpu", "600m")], &[]), 1000);
    for p in [&old2, &high2] {
        let ResizeDecision::Pending { pending, newly: true } = m.handle_resize(p) else { panic!("{p:?}") };
        assert_eq!(pending.reason, REASON_DEFERRED);
    }
    // The same spec again waits for a retry; it is not news.
    assert!(matches!(m.handle_resize(&old2), ResizeDecision::Pending { newly: false, .. }));
    // The big pod goes: room for one of them, and priority beats age.
    m.remove_pod("big");
    // Both woken: one allocated, the other's message changed (the others' use moved).
    assert_eq!(drain(&mut wakes), BTreeSet::from(["high".to_string(), "old".to_string()]));
    assert!(m.pending("high").is_none());
    let pending = m.pending("old").expect("still deferred");
    assert_eq!(pending.message, "Node didn't have enough resource: cpu, requested: 600, used: 600, capacity: 1000");
    // The woken worker's next decision says it was allocated (its ResizeStarted), once.
    assert_eq!(m.handle_resize(&high2), ResizeDecision::Allocated);
    assert_eq!(m.handle_resize(&high2), ResizeDecision::Unchanged);
    assert_eq!(cpu_request(&m.allocated_pod(&high2)), "600m");
    // A resize that gives room back goes first and is allocated at once; the room it frees
    // goes to the deferred one.
    let high3 = with_priority(pod("high", 3, &[("cpu", "200m")], &[]), 1000);
    assert_eq!(m.handle_resize(&high3), ResizeDecision::Allocated);
    assert_eq!(drain(&mut wakes), BTreeSet::from(["old".to_string()]));
    assert_eq!(m.handle_resize(&old2), ResizeDecision::Allocated);
}

#[test]
fn at_equal_priority_guaranteed_pods_go_first() {
    let m = AllocationManager::new(None, node());
    let mut wakes = m.take_wakes().unwrap();
    let big = pod("big", 1, &[("cpu", "800m")], &[]);
    let burstable = pod("burstable", 1, &[("cpu", "100m")], &[]);
    let guaranteed = pod("guaranteed", 1, &[("cpu", "100m"), ("memory", "1Mi")], &[("cpu", "100m"), ("memory", "1Mi")]);
    for p in [&big, &burstable, &guaranteed] {
        m.admit(p);
    }
    let burstable2 = pod("burstable", 2, &[("cpu", "700m")], &[]);
    let guaranteed2 = pod("guaranteed", 2, &[("cpu", "700m"), ("memory", "1Mi")], &[("cpu", "700m"), ("memory", "1Mi")]);
    assert!(matches!(m.handle_resize(&burstable2), ResizeDecision::Pending { .. }));
    assert!(matches!(m.handle_resize(&guaranteed2), ResizeDecision::Pending { .. }));
    m.remove_pod("big");
    assert!(drain(&mut wakes).contains("guaranteed"));
    assert!(m.pending("guaranteed").is_none());
    assert!(m.pending("burstable").is_some());
}

#[test]
fn allocations_and_actuations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let m = AllocationManager::new(Some(dir.path()), node());
    let v1 = pod("a", 1, &[("memory", "35Mi")], &[("memory", "45Mi")]);
    m.admit(&v1);
    assert!(m.actuated("a", "c1").is_some(), "a newly admitted pod's containers are recorded");
    let v2 = pod("a", 2, &[("memory", "40Mi")], &[("memory", "50Mi")]);
    assert_eq!(m.handle_resize(&v2), ResizeDecision::Allocated);
    drop(m);
    let again = AllocationManager::new(Some(dir.path()), node());
    // A spec seen again after the restart keeps the allocation (not re-admitted from scratch).
    again.admit(&v2);
    let allocated = again.allocated_pod(&v1);
    let r = allocated.spec.unwrap().containers[0].resources.clone().unwrap();
    assert_eq!(r.limits.unwrap()["memory"].0, "50Mi");
    let actuated = again.actuated("a", "c1").unwrap();
    assert_eq!(actuated.limits.unwrap()["memory"].0, "45Mi", "what was applied is what the checkpoint says");
    assert!(dir.path().join(ALLOCATED_STATE_FILE).exists() && dir.path().join(ACTUATED_STATE_FILE).exists());
    again.remove_pod("a");
    assert!(again.actuated("a", "c1").is_none());
}

#[test]
fn which_resources_differ() {
    let r =
        |req: &[(&str, &str)], lim: &[(&str, &str)]| ResourceRequirements { requests: list(req), limits: list(lim), ..Default::default() };
    assert_eq!(differing(&r(&[("cpu", "1")], &[]), &r(&[("cpu", "1000m")], &[])), (false, false));
    assert_eq!(differing(&r(&[("cpu", "1")], &[]), &r(&[("cpu", "1")], &[("memory", "1Gi")])), (false, true));
    assert_eq!(differing(&r(&[], &[]), &r(&[("cpu", "1m")], &[])), (true, false));
}

/// `p` with the `PodResizePending` condition a kubelet before a restart left in the API.
fn with_api_pending(mut p: Pod, reason: &str, generation: i64, since_secs: i64) -> Pod {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let since = k8s_openapi::jiff::Timestamp::from_second(since_secs).unwrap();
    let c = PodCondition {
        type_: crate::status::resize::POD_RESIZE_PENDING.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        observed_generation: Some(generation),
        last_transition_time: Some(Time(since)),
        ..Default::default()
    };
    p.status = Some(PodStatus { conditions: Some(vec![c]), ..Default::default() });
    p
}

#[test]
fn after_a_restart_the_api_conditions_keep_the_order_and_no_event_repeats() {
    let m = AllocationManager::new(None, node());
    let mut wakes = m.take_wakes().unwrap();
    for p in [pod("big", 1, &[("cpu", "600m")], &[]), pod("a", 1, &[("cpu", "100m")], &[]), pod("b", 1, &[("cpu", "100m")], &[])] {
        m.admit(&p);
    }
    // As the restarted kubelet's workers see them: "b" first, though "a" waited longer.
    let b2 = with_api_pending(pod("b", 2, &[("cpu", "600m")], &[]), REASON_DEFERRED, 2, 2_000);
    let a2 = with_api_pending(pod("a", 2, &[("cpu", "600m")], &[]), REASON_DEFERRED, 2, 1_000);
    for p in [&b2, &a2] {
        let ResizeDecision::Pending { pending, newly } = m.handle_resize(p) else { panic!() };
        assert_eq!((pending.reason, newly), (REASON_DEFERRED, false), "the API says so already: no second event");
    }
    // A decision the API does not hold yet is news.
    let a3 = with_api_pending(pod("a", 3, &[("cpu", "650m")], &[]), REASON_DEFERRED, 2, 1_000);
    assert!(matches!(m.handle_resize(&a3), ResizeDecision::Pending { newly: true, .. }));
    m.remove_pod("big");
    drain(&mut wakes);
    assert!(m.pending("a").is_none(), "deferred first before the restart, allocated first");
    assert!(m.pending("b").is_some());
}

#[test]
fn a_spec_changed_after_a_retry_is_decided_anew_and_infeasible_ones_are_not_retried() {
    let m = AllocationManager::new(None, node());
    let mut wakes = m.take_wakes().unwrap();
    for p in [pod("big", 1, &[("cpu", "600m")], &[]), pod("a", 1, &[("cpu", "100m")], &[]), pod("x", 1, &[("cpu", "100m")], &[])] {
        m.admit(&p);
    }
    assert!(matches!(m.handle_resize(&pod("a", 2, &[("cpu", "500m")], &[])), ResizeDecision::Pending { .. }));
    let ResizeDecision::Pending { pending, .. } = m.handle_resize(&pod("x", 2, &[("cpu", "5")], &[])) else { panic!() };
    assert_eq!(pending.reason, REASON_INFEASIBLE);
    m.remove_pod("big");
    assert_eq!(drain(&mut wakes), BTreeSet::from(["a".to_string()]), "the infeasible one is not retried");
    assert!(m.pending("x").is_some());
    // Before "a"'s worker syncs, its spec changes back: that is what its decision is about
    // (no ResizeStarted for the allocation the retry made; the old values are allocated again).
    assert_eq!(m.handle_resize(&pod("a", 3, &[("cpu", "100m")], &[])), ResizeDecision::Allocated);
    assert_eq!(m.handle_resize(&pod("a", 3, &[("cpu", "100m")], &[])), ResizeDecision::Unchanged);
}
