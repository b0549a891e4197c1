use super::*;
use k8s_openapi::api::core::v1::{
    Affinity, Container, NodeAffinity, NodeSelector, NodeSelectorTerm, NodeSpec, NodeStatus, PodSpec, ResourceRequirements, Taint,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

fn node() -> Node {
    let alloc = [("cpu", "2"), ("memory", "4Gi"), ("pods", "2")].into_iter().map(|(k, v)| (k.to_string(), Quantity(v.into()))).collect();
    let mut n = Node {
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus { allocatable: Some(alloc), ..NodeStatus::default() }),
        ..Node::default()
    };
    n.metadata.name = Some("n1".into());
    n.metadata.labels = Some([("disk".to_string(), "ssd".to_string()), ("zone".to_string(), "a".to_string())].into());
    n
}

fn pod(cpu: &str, mem: &str) -> Pod {
    let requests = [("cpu", cpu), ("memory", mem)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), Quantity(v.into())))
        .collect();
    Pod {
        spec: Some(PodSpec {
            node_name: Some("n1".into()),
            containers: vec![Container {
                name: "c".into(),
                resources: Some(ResourceRequirements { requests: Some(requests), ..Default::default() }),
                ..Default::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

#[test]
fn resources_are_checked_against_allocatable() {
    let running = pod("1500m", "1Gi");
    assert_eq!(admit(&node(), &[&running], &pod("500m", "1Gi")), Ok(()));
    let err = admit(&node(), &[&running], &pod("600m", "")).unwrap_err();
    assert_eq!(err.reason, "OutOfcpu");
    assert_eq!(err.message, "Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000");
    let err = admit(&node(), &[], &pod("", "5Gi")).unwrap_err();
    assert_eq!(err.reason, "OutOfmemory");
    let status = err.pod_status();
    assert_eq!((status.phase.as_deref(), status.reason.as_deref()), (Some("Failed"), Some("OutOfmemory")));
}

#[test]
fn max_pods() {
    let (a, b) = (pod("", ""), pod("", ""));
    let err = admit(&node(), &[&a, &b], &pod("", "")).unwrap_err();
    assert_eq!(
        (err.reason.as_str(), err.message.as_str()),
        ("OutOfpods", "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2")
    );
}

#[test]
fn node_name_selector_and_affinity() {
    let mut p = pod("", "");
    p.spec.as_mut().unwrap().node_name = Some("other".into());
    assert_eq!(admit(&node(), &[], &p).unwrap_err().reason, "NodeName");

    let mut p = pod("", "");
    p.spec.as_mut().unwrap().node_selector = Some([("disk".to_string(), "hdd".to_string())].into());
    assert_eq!(
        admit(&node(), &[], &p).unwrap_err(),
        Rejection {
            reason: "NodeAffinity".into(),
            message: "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector".into()
        }
    );

    let term = |op: &str, values: &[&str]| NodeSelectorTerm {
        match_expressions: Some(vec![NodeSelectorRequirement {
            key: "zone".into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }]),
        ..Default::default()
    };
    let with_affinity = |terms: Vec<NodeSelectorTerm>| {
        let mut p = pod("", "");
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms: terms }),
                ..Default::default()
            }),
            ..Default::default()
        });
        p
    };
    assert!(admit(&node(), &[], &with_affinity(vec![term("In", &["b"]), term("In", &["a"])])).is_ok(), "terms are ORed");
    assert!(admit(&node(), &[], &with_affinity(vec![term("NotIn", &["a"])])).is_err());
}

#[test]
fn untolerated_no_execute_taints() {
    let mut n = node();
    n.spec.as_mut().unwrap().taints =
        Some(vec![Taint { key: "dedicated".into(), value: Some("gpu".into()), effect: "NoExecute".into(), time_added: None }]);
    assert_eq!(admit(&n, &[], &pod("", "")).unwrap_err().reason, "TaintToleration");
    let mut p = pod("", "");
    p.spec.as_mut().unwrap().tolerations =
        Some(vec![Toleration { key: Some("dedicated".into()), operator: Some("Exists".into()), ..Default::default() }]);
    assert!(admit(&n, &[], &p).is_ok());
}

fn with_condition(mut n: Node, type_: &str) -> Node {
    let c = k8s_openapi::api::core::v1::NodeCondition { type_: type_.into(), status: "True".into(), ..Default::default() };
    n.status.as_mut().unwrap().conditions = Some(vec![c]);
    n
}

#[test]
fn memory_pressure_rejects_only_best_effort_pods() {
    let n = with_condition(node(), "MemoryPressure");
    assert_eq!(admit(&n, &[], &pod("100m", "")), Ok(()));
    let r = admit(&n, &[], &pod("", "")).unwrap_err();
    assert_eq!(r.reason, "Evicted");
    assert_eq!(r.message, "The node had condition: [MemoryPressure]. ");
    let mut tolerant = pod("", "");
    tolerant.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
        key: Some("node.kubernetes.io/memory-pressure".into()),
        operator: Some("Exists".into()),
        effect: Some("NoSchedule".into()),
        ..Default::default()
    }]);
    assert_eq!(admit(&n, &[], &tolerant), Ok(()));
}

#[test]
fn disk_and_pid_pressure_reject_all_but_critical_pods() {
    for cond in ["DiskPressure", "PIDPressure"] {
        let n = with_condition(node(), cond);
        let r = admit(&n, &[], &pod("100m", "1Gi")).unwrap_err();
        assert_eq!((r.reason.as_str(), r.message.clone()), ("Evicted", format!("The node had condition: [{cond}]. ")));
        let mut critical = pod("100m", "1Gi");
        critical.spec.as_mut().unwrap().priority = Some(2_000_001_000);
        assert_eq!(admit(&n, &[], &critical), Ok(()));
    }
}

#[test]
fn device_plugin_resources_are_left_to_the_device_manager() {
    // A pod asking for a device the node reports is admitted here; whether a device is free is
    // the device manager's answer at the pod's first sync (upstream: the resource allocator
    // admit handler, before the general predicates).
    let mut n = node();
    let alloc = n.status.as_mut().unwrap().allocatable.as_mut().unwrap();
    alloc.insert("test.device/a".into(), Quantity("1".into()));
    let mut p = pod("", "");
    let resources = p.spec.as_mut().unwrap().containers[0].resources.as_mut().unwrap();
    let rl: std::collections::BTreeMap<String, Quantity> = [("test.device/a".to_string(), Quantity("1".into()))].into();
    (resources.requests, resources.limits) = (Some(rl.clone()), Some(rl));
    assert_eq!(admit(&n, &[], &p), Ok(()));
    assert_eq!(pod_requests(&p)["test.device/a"], 1);
}

#[test]
fn host_ports_held_by_admitted_pods() {
    use k8s_openapi::api::core::v1::ContainerPort;
    let with_port = |ip: Option<&str>, protocol: Option<&str>, port: i32| {
        let mut p = pod("", "");
        p.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
            container_port: 80,
            host_port: Some(port),
            host_ip: ip.map(Into::into),
            protocol: protocol.map(Into::into),
            ..Default::default()
        }]);
        p
    };
    let holder = with_port(None, None, 8080);
    let err = admit(&node(), &[&holder], &with_port(Some("198.18.0.1"), Some("TCP"), 8080)).unwrap_err();
    assert_eq!(
        (err.reason.as_str(), err.message.as_str()),
        ("NodePorts", "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports")
    );
    assert!(admit(&node(), &[&holder], &with_port(None, Some("UDP"), 8080)).is_ok(), "another protocol");
    assert!(admit(&node(), &[&holder], &with_port(None, None, 8081)).is_ok(), "another port");
    let specific = with_port(Some("198.18.0.1"), None, 9090);
    assert!(admit(&node(), &[&specific], &with_port(Some("198.18.0.2"), None, 9090)).is_ok(), "another address");
    assert!(admit(&node(), &[&specific], &with_port(None, None, 9090)).is_err(), "every address includes it");
    // A sidecar's host port counts; a plain init container's does not.
    let mut sidecar = pod("", "");
    let mut init = with_port(None, None, 7070).spec.unwrap().containers.remove(0);
    init.restart_policy = Some("Always".into());
    sidecar.spec.as_mut().unwrap().init_containers = Some(vec![init.clone()]);
    assert!(admit(&node(), &[&sidecar], &with_port(None, None, 7070)).is_err());
    init.restart_policy = None;
    sidecar.spec.as_mut().unwrap().init_containers = Some(vec![init]);
    assert!(admit(&node(), &[&sidecar], &with_port(None, None, 7070)).is_ok());
}

#[test]
fn pod_requests_count_sidecars_init_peaks_and_pod_level_as_upstream() {
    use k8s_openapi::api::core::v1::{Container, ResourceRequirements};
    let cpu =
        |v: &str| Some(ResourceRequirements { requests: Some([("cpu".to_string(), Quantity(v.into()))].into()), ..Default::default() });
    let mut p = pod("", "");
    p.spec.as_mut().unwrap().containers[0].resources = cpu("100m");
    let sidecar = Container { name: "s".into(), restart_policy: Some("Always".into()), resources: cpu("200m"), ..Default::default() };
    let init = Container { name: "i".into(), resources: cpu("250m"), ..Default::default() };
    p.spec.as_mut().unwrap().init_containers = Some(vec![sidecar, init]);
    // Regular 100m + sidecar 200m = 300m, but the init container ran next to the sidecar: 450m.
    assert_eq!(pod_requests(&p)["cpu"], 450);
    p.spec.as_mut().unwrap().init_containers.as_mut().unwrap()[1].resources = cpu("50m");
    assert_eq!(pod_requests(&p)["cpu"], 300);
    p.spec.as_mut().unwrap().resources = cpu("1");
    assert_eq!(pod_requests(&p)["cpu"], 1000, "pod-level requests stand for the containers'");
}
