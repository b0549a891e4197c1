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
