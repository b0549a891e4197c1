use super::*;
use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning, ContainerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

fn pod(uid: &str, name: &str, phase: Option<&str>) -> Pod {
    Pod {
        metadata: ObjectMeta { uid: Some(uid.into()), name: Some(name.into()), namespace: Some("default".into()), ..ObjectMeta::default() },
        status: phase.map(|p| PodStatus { phase: Some(p.into()), ..PodStatus::default() }),
        ..Pod::default()
    }
}

fn with_annotations(mut p: Pod, kv: &[(&str, &str)]) -> Pod {
    p.metadata.annotations = Some(kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    p
}

fn store(pods: Vec<Pod>) -> PodStore {
    let mut s = PodStore::default();
    s.replace(pods, "1".into());
    s
}

#[test]
fn patches_changed_statuses_only() {
    let kubelet = vec![pod("a", "pa", Some("Running")), pod("b", "pb", Some("Pending"))];
    let api = store(vec![pod("a", "pa", Some("Pending")), pod("b", "pb", Some("Pending"))]);
    let actions = plan(&kubelet, &api, &BTreeMap::new(), &BTreeSet::new());
    assert_eq!(actions.len(), 1);
    assert!(matches!(&actions[0], StatusAction::Patch { uid, status, .. } if uid == "a" && status.phase.as_deref() == Some("Running")));
    let sent = BTreeMap::from([(
        "a".to_string(),
        Sent { status: fingerprint(kubelet[0].status.as_ref().unwrap()), resource_version: None, stored_version: None },
    )]);
    assert!(plan(&kubelet, &api, &sent, &BTreeSet::new()).is_empty(), "already sent, the watch has not caught up");
}

#[test]
fn a_changed_api_pod_is_reconciled_even_after_sending() {
    // The node lifecycle controller marked the pod not Ready while the API server was away.
    let kubelet = vec![pod("a", "pa", Some("Running"))];
    let mut api_pod = pod("a", "pa", Some("Running"));
    api_pod.status.as_mut().unwrap().reason = Some("NodeLost".into());
    api_pod.metadata.resource_version = Some("9".into());
    let api = store(vec![api_pod]);
    // Our patch left version 6; the controller's change made it 9.
    let sent = BTreeMap::from([(
        "a".to_string(),
        Sent {
            status: fingerprint(kubelet[0].status.as_ref().unwrap()),
            resource_version: Some("5".into()),
            stored_version: Some("6".into()),
        },
    )]);
    let actions = plan(&kubelet, &api, &sent, &BTreeSet::new());
    assert!(
        matches!(&actions[..], [StatusAction::Patch { uid, resource_version, .. }] if uid == "a" && resource_version.as_deref() == Some("9")),
        "{actions:?}"
    );
}

#[test]
fn never_regresses_a_terminal_phase() {
    let kubelet = vec![pod("a", "pa", Some("Running"))];
    let api = store(vec![pod("a", "pa", Some("Succeeded"))]);
    assert!(plan(&kubelet, &api, &BTreeMap::new(), &BTreeSet::new()).is_empty());
}

#[test]
fn static_pod_status_goes_to_its_mirror() {
    let static_pod = with_annotations(
        pod("hash1", "web-node", Some("Running")),
        &[(CONFIG_SOURCE_ANNOTATION, "file"), (CONFIG_HASH_ANNOTATION, "hash1")],
    );
    let mirror = with_annotations(pod("m-uid", "web-node", Some("Pending")), &[(CONFIG_MIRROR_ANNOTATION, "hash1")]);
    let stale = with_annotations(pod("m-old", "other-node", None), &[(CONFIG_MIRROR_ANNOTATION, "old")]);
    let actions = plan(&[static_pod], &store(vec![mirror, stale]), &BTreeMap::new(), &BTreeSet::new());
    assert!(matches!(&actions[..], [StatusAction::Patch { uid, name, .. }] if uid == "m-uid" && name == "web-node"));
}

#[test]
fn deletes_stopped_pods_marked_for_deletion() {
    let mut running = pod("r", "pr", Some("Running"));
    running.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    running.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
        name: "c".into(),
        state: Some(ContainerState { running: Some(ContainerStateRunning::default()), ..ContainerState::default() }),
        ..ContainerStatus::default()
    }]);
    let mut never_started = pod("n", "pn", Some("Pending"));
    never_started.metadata.deletion_timestamp = running.metadata.deletion_timestamp.clone();
    let api = store(vec![running.clone(), never_started]);
    // The kubelet still stops "r": only the never-started pod goes.
    let actions = plan(&[pod("r", "pr", Some("Running"))], &api, &BTreeMap::new(), &BTreeSet::new());
    assert!(actions.iter().all(|a| !matches!(a, StatusAction::Delete { uid, .. } if uid == "r")));
    assert!(actions.iter().any(|a| matches!(a, StatusAction::Delete { uid, .. } if uid == "n")));
    // "r" stopped (its status is gone) and the kubelet had run it: delete it too.
    let actions = plan(&[], &api, &BTreeMap::new(), &BTreeSet::from(["r".to_string()]));
    assert!(actions.iter().any(|a| matches!(a, StatusAction::Delete { uid, .. } if uid == "r")));
}

#[test]
fn a_patch_the_api_stored_differently_is_not_sent_again() {
    // The API keeps what our patch left (here: timestamps at second precision, modelled by a
    // different message) at the version it answered with; the watch has delivered it; nothing
    // else changed the pod.
    let kubelet = vec![pod("a", "pa", Some("Running"))];
    let mut stored = kubelet[0].status.clone().unwrap();
    stored.message = Some("normalised".into());
    let mut api_pod = pod("a", "pa", Some("Running"));
    api_pod.status = Some(stored.clone());
    api_pod.metadata.resource_version = Some("6".into());
    let api = store(vec![api_pod]);
    let sent = BTreeMap::from([(
        "a".to_string(),
        Sent {
            status: fingerprint(kubelet[0].status.as_ref().unwrap()),
            resource_version: Some("5".into()),
            stored_version: Some("6".into()),
        },
    )]);
    assert!(plan(&kubelet, &api, &sent, &BTreeSet::new()).is_empty());
}

#[test]
fn a_removed_pods_final_status_is_sent_before_it_is_deleted() {
    let mut deleted = pod("d", "pd", Some("Running"));
    deleted.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap()));
    let api = store(vec![deleted]);
    let finals = [pod("d", "pd", Some("Failed"))];
    let known = BTreeSet::from(["d".to_string()]);
    let actions = plan_with_finals(&[], &finals, &api, &BTreeMap::new(), &known);
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(matches!(&actions[0], StatusAction::Patch { uid, status, .. } if uid == "d" && status.phase.as_deref() == Some("Failed")));
    assert!(matches!(&actions[1], StatusAction::Delete { uid, .. } if uid == "d"));
    // Running again under the same UID: its live status wins, nothing is deleted.
    let live = [pod("d", "pd", Some("Running"))];
    let actions = plan_with_finals(&live, &finals, &api, &BTreeMap::new(), &known);
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn conditions_others_own_are_kept_as_the_api_holds_them() {
    use k8s_openapi::api::core::v1::PodCondition;
    let cond = |t: &str, s: &str| PodCondition { type_: t.into(), status: s.into(), ..PodCondition::default() };
    // The kubelet's status was generated before a readiness gate's condition was set.
    let mut ours = pod("a", "pa", Some("Running"));
    ours.status.as_mut().unwrap().conditions =
        Some(vec![cond("k8s.io/gate", "False"), cond("Ready", "True"), cond("DisruptionTarget", "True")]);
    let mut api_pod = pod("a", "pa", Some("Running"));
    api_pod.status.as_mut().unwrap().conditions = Some(vec![
        cond("k8s.io/gate", "True"),
        cond("Ready", "False"),
        cond("DisruptionTarget", "False"),
        cond("example.com/other", "True"),
    ]);
    let actions = plan(&[ours.clone()], &store(vec![api_pod.clone()]), &BTreeMap::new(), &BTreeSet::new());
    let [StatusAction::Patch { status, .. }] = &actions[..] else { panic!("{actions:?}") };
    let sent: Vec<(&str, &str)> = status.conditions.as_deref().unwrap().iter().map(|c| (c.type_.as_str(), c.status.as_str())).collect();
    assert_eq!(sent, vec![("k8s.io/gate", "True"), ("example.com/other", "True"), ("Ready", "True"), ("DisruptionTarget", "True")]);

    // Nothing to send when the only difference is a condition the kubelet does not own.
    let mut api_same = api_pod.clone();
    api_same.status.as_mut().unwrap().conditions =
        Some(vec![cond("k8s.io/gate", "True"), cond("Ready", "True"), cond("DisruptionTarget", "True")]);
    ours.status.as_mut().unwrap().conditions = Some(vec![cond("Ready", "True"), cond("DisruptionTarget", "True")]);
    assert!(plan(&[ours], &store(vec![api_same]), &BTreeMap::new(), &BTreeSet::new()).is_empty());

    // The patch carries only the kubelet's conditions (the server merges them by type).
    let patch = status_patch("a", status, &[], &[]);
    let types: Vec<&str> = patch["status"]["conditions"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Ready", "DisruptionTarget"]);
    assert_eq!(patch["metadata"]["uid"], "a");
}

#[test]
fn a_kubelet_condition_no_longer_reported_is_deleted_by_the_patch() {
    use k8s_openapi::api::core::v1::PodCondition;
    let cond = |t: &str| PodCondition { type_: t.into(), status: "True".into(), ..PodCondition::default() };
    let mut ours = pod("a", "pa", Some("Running"));
    ours.status.as_mut().unwrap().conditions = Some(vec![cond("Ready")]);
    let mut api_pod = pod("a", "pa", Some("Running"));
    api_pod.status.as_mut().unwrap().conditions = Some(vec![cond("Ready"), cond("PodResizePending"), cond("example.com/gate")]);
    let actions = plan(&[ours], &store(vec![api_pod]), &BTreeMap::new(), &BTreeSet::new());
    let [StatusAction::Patch { status, removed_conditions, .. }] = &actions[..] else { panic!("{actions:?}") };
    assert_eq!(removed_conditions, &vec!["PodResizePending".to_string()]);
    let patch = status_patch("a", status, removed_conditions, &[]);
    let conditions = patch["status"]["conditions"].as_array().unwrap();
    assert_eq!(conditions.last().unwrap(), &serde_json::json!({"type": "PodResizePending", "$patch": "delete"}));
}

#[test]
fn a_new_pod_ip_replaces_the_old_one_in_the_patch() {
    use k8s_openapi::api::core::v1::PodIP;
    let ips = |v: &[&str]| Some(v.iter().map(|ip| PodIP { ip: ip.to_string() }).collect::<Vec<_>>());
    let mut ours = pod("a", "pa", Some("Running"));
    ours.status.as_mut().unwrap().pod_ips = ips(&["198.18.0.7"]);
    let mut api_pod = pod("a", "pa", Some("Running"));
    api_pod.status.as_mut().unwrap().pod_ips = ips(&["198.18.0.3"]);
    let actions = plan(&[ours], &store(vec![api_pod]), &BTreeMap::new(), &BTreeSet::new());
    let [StatusAction::Patch { status, removed_conditions, removed_ips, .. }] = &actions[..] else { panic!("{actions:?}") };
    assert_eq!(removed_ips, &vec![("podIPs".to_string(), "198.18.0.3".to_string())]);
    let patch = status_patch("a", status, removed_conditions, removed_ips);
    assert_eq!(patch["status"]["podIPs"], serde_json::json!([{"ip": "198.18.0.7"}, {"ip": "198.18.0.3", "$patch": "delete"}]));
    assert_eq!(patch["status"]["$setElementOrder/podIPs"], serde_json::json!([{"ip": "198.18.0.7"}]));
    // No IPs of ours yet (a restarted pod before its sandbox): the API's stay.
    let mut pending = pod("a", "pa", Some("Pending"));
    pending.status.as_mut().unwrap().pod_ips = None;
    let mut api_pod = pod("a", "pa", Some("Running"));
    api_pod.status.as_mut().unwrap().pod_ips = ips(&["198.18.0.3"]);
    let actions = plan(&[pending], &store(vec![api_pod]), &BTreeMap::new(), &BTreeSet::new());
    assert!(actions.iter().all(|a| matches!(a, StatusAction::Patch { removed_ips, .. } if removed_ips.is_empty())), "{actions:?}");
}

#[test]
fn a_condition_without_reason_clears_the_old_reason() {
    use k8s_openapi::api::core::v1::PodCondition;
    let cond = |status: &str, reason: Option<&str>| PodCondition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.map(str::to_string),
        message: reason.map(|_| "containers with unready status: [c]".to_string()),
        ..PodCondition::default()
    };
    let mut ours = pod("a", "pa", Some("Running"));
    ours.status.as_mut().unwrap().conditions = Some(vec![cond("True", None)]);
    let mut api_pod = pod("a", "pa", Some("Running"));
    api_pod.status.as_mut().unwrap().conditions = Some(vec![cond("False", Some("ContainersNotReady"))]);
    let actions = plan(&[ours], &store(vec![api_pod]), &BTreeMap::new(), &BTreeSet::new());
    let [StatusAction::Patch { status, removed_conditions, .. }] = &actions[..] else { panic!("{actions:?}") };
    let patch = status_patch("a", status, removed_conditions, &[]);
    let ready = &patch["status"]["conditions"][0];
    assert_eq!(
        (&ready["status"], &ready["reason"], &ready["message"]),
        (&serde_json::json!("True"), &serde_json::Value::Null, &serde_json::Value::Null)
    );
    assert!(ready.as_object().unwrap().contains_key("reason"), "null, not absent: {ready}");
    // A condition with a reason keeps it.
    let mut not_ready = pod("a", "pa", Some("Running"));
    not_ready.status.as_mut().unwrap().conditions = Some(vec![cond("False", Some("ContainersNotReady"))]);
    let patch = status_patch("a", not_ready.status.as_ref().unwrap(), &[], &[]);
    assert_eq!(patch["status"]["conditions"][0]["reason"], "ContainersNotReady");
}

#[test]
fn the_fingerprint_tells_statuses_apart() {
    let a = pod("a", "pa", Some("Running")).status.unwrap();
    let mut b = a.clone();
    assert_eq!(fingerprint(&a), fingerprint(&b));
    b.message = Some("x".into());
    assert_ne!(fingerprint(&a), fingerprint(&b));
}
