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
    let sent = BTreeMap::from([("a".to_string(), kubelet[0].status.clone().unwrap())]);
    assert!(plan(&kubelet, &api, &sent, &BTreeSet::new()).is_empty(), "already sent");
}

#[test]
fn never_regresses_a_terminal_phase() {
    let kubelet = vec![pod("a", "pa", Some("Running"))];
    let api = store(vec![pod("a", "pa", Some("Succeeded"))]);
    assert!(plan(&kubelet, &api, &BTreeMap::new(), &BTreeSet::new()).is_empty());
}

#[test]
fn static_pod_status_goes_to_its_mirror() {
    let static_pod = with_annotations(pod("hash1", "web-node", Some("Running")), &[(CONFIG_SOURCE_ANNOTATION, "file"), (CONFIG_HASH_ANNOTATION, "hash1")]);
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
