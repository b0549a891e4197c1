//! Unit tests of the pod source merger.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn pod(name: &str, uid: &str) -> Pod {
    Pod {
        metadata: ObjectMeta { name: Some(name.into()), namespace: Some("default".into()), uid: Some(uid.into()), ..ObjectMeta::default() },
        ..Pod::default()
    }
}

fn update(source: PodSource, pods: Vec<Pod>) -> PodUpdate {
    PodUpdate { source, pods: pods.into_iter().map(Arc::new).collect(), errors: Vec::new() }
}

fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000)
}

fn later_clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

#[test]
fn sources_ready_after_every_source_reported() {
    let (mut config, rx) = PodConfig::new(&[PodSource::File, PodSource::Http]);
    assert!(!rx.borrow().sources_ready);
    config.apply(update(PodSource::File, vec![pod("a", "1")]));
    assert!(!rx.borrow().sources_ready);
    assert_eq!(rx.borrow().pods.len(), 1);
    config.apply(update(PodSource::Http, vec![]));
    assert!(rx.borrow().sources_ready);
    let (_, rx) = PodConfig::new(&[]);
    assert!(rx.borrow().sources_ready);
}

#[test]
fn set_semantics_replace_a_source() {
    let (mut config, rx) = PodConfig::new(&[PodSource::File]);
    config.apply(update(PodSource::File, vec![pod("a", "1"), pod("b", "2")]));
    config.apply(update(PodSource::File, vec![pod("b", "2")]));
    let uids: Vec<String> = rx.borrow().pods.keys().cloned().collect();
    assert_eq!(uids, ["2"]);
}

#[test]
fn first_source_wins_a_uid_and_duplicate_names_are_rejected() {
    let (mut config, rx) = PodConfig::new(&[PodSource::File, PodSource::Http]);
    config.apply(update(PodSource::Http, vec![pod("from-http", "1")]));
    config.apply(update(PodSource::File, vec![pod("from-file", "1"), pod("from-file", "2")]));
    let desired = rx.borrow().clone();
    assert_eq!(desired.pods.len(), 1);
    assert_eq!(desired.pods["1"].metadata.name.as_deref(), Some("from-file"));
    assert_eq!(desired.pods["1"].metadata.annotations.as_ref().unwrap()[CONFIG_SOURCE_ANNOTATION], "file");
    assert_eq!(desired.errors.len(), 1);
    assert!(desired.errors[0].message.contains("duplicate pod name \"from-file_default\""));
}

#[test]
fn seen_is_stamped_once_and_unchanged_sets_are_not_published() {
    let (config, mut rx) = PodConfig::new(&[PodSource::File]);
    let mut config = config.with_clock(fixed_clock);
    config.apply(update(PodSource::File, vec![pod("a", "1")]));
    assert!(rx.has_changed().unwrap());
    let seen = rx.borrow_and_update().pods["1"].metadata.annotations.as_ref().unwrap()[CONFIG_SEEN_ANNOTATION].clone();
    assert_eq!(seen, "2023-11-14T22:13:20.12Z");

    config.clock = later_clock;
    config.apply(update(PodSource::File, vec![pod("a", "1")]));
    assert!(!rx.has_changed().unwrap(), "same pods must not be republished");
    config.apply(update(PodSource::File, vec![pod("a", "1"), pod("b", "2")]));
    let desired = rx.borrow_and_update().clone();
    assert_eq!(desired.pods["1"].metadata.annotations.as_ref().unwrap()[CONFIG_SEEN_ANNOTATION], seen);
    assert_eq!(desired.pods["2"].metadata.annotations.as_ref().unwrap()[CONFIG_SEEN_ANNOTATION], "2027-01-15T08:00:00Z");
}

#[test]
fn unchanged_pods_keep_their_published_object_and_changed_ones_get_a_new_one() {
    let (config, rx) = PodConfig::new(&[PodSource::Api]);
    let mut config = config.with_clock(fixed_clock);
    config.apply(update(PodSource::Api, vec![pod("a", "1"), pod("b", "2")]));
    let first = rx.borrow().clone();
    let mut relabelled = pod("b", "2");
    relabelled.metadata.labels = Some([("tier".to_string(), "web".to_string())].into());
    config.apply(update(PodSource::Api, vec![pod("a", "1"), relabelled]));
    let second = rx.borrow().clone();
    assert!(Arc::ptr_eq(&first.pods["1"], &second.pods["1"]), "one shared copy of an unchanged pod");
    assert!(!Arc::ptr_eq(&first.pods["2"], &second.pods["2"]));
    assert_eq!(second.pods["2"].metadata.labels.as_ref().unwrap()["tier"], "web");
    let (_, (kept, _)) = config.sets.iter().next().unwrap();
    assert!(kept.iter().any(|p| Arc::ptr_eq(p, &second.pods["1"])), "the source's set shares it too");

    // A changed annotation of the pod's own is a change; the config's annotations stay.
    let mut annotated = pod("a", "1");
    annotated.metadata.annotations = Some([("team".to_string(), "db".to_string())].into());
    config.apply(update(PodSource::Api, vec![annotated, second.pods["2"].as_ref().clone()]));
    let third = rx.borrow().clone();
    assert!(!Arc::ptr_eq(&second.pods["1"], &third.pods["1"]));
    let annotations = third.pods["1"].metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations["team"], "db");
    assert_eq!(annotations[CONFIG_SEEN_ANNOTATION], "2023-11-14T22:13:20.12Z", "first seen is kept");
    assert!(Arc::ptr_eq(&second.pods["2"], &third.pods["2"]), "a pod sent back with the config's annotations is unchanged");
}

#[test]
fn errors_are_published_and_cleared() {
    let (mut config, rx) = PodConfig::new(&[PodSource::File]);
    let error = SourceError { path: "/m/bad.yaml".into(), message: "nope".into() };
    config.apply(PodUpdate { source: PodSource::File, pods: vec![], errors: vec![error.clone()] });
    assert_eq!(rx.borrow().errors, [error]);
    config.apply(update(PodSource::File, vec![]));
    assert!(rx.borrow().errors.is_empty());
}

#[tokio::test]
async fn run_stops_when_senders_are_gone() {
    let (config, mut rx) = PodConfig::new(&[PodSource::Api]);
    let (tx, updates) = mpsc::channel(4);
    let task = tokio::spawn(config.run(updates));
    tx.send(update(PodSource::Api, vec![pod("a", "1")])).await.unwrap();
    rx.changed().await.unwrap();
    assert!(rx.borrow().sources_ready);
    drop(tx);
    task.await.unwrap();
}

#[test]
fn rfc3339_nano() {
    assert_eq!(format_rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(format_rfc3339_nano(UNIX_EPOCH + Duration::new(951_782_400, 5)), "2000-02-29T00:00:00.000000005Z");
}

#[test]
fn a_pod_its_source_annotated_is_published_as_it_is() {
    let (config, rx) = PodConfig::new(&[PodSource::Api]);
    let mut config = config.with_clock(fixed_clock);
    let mut a = pod("a", "1");
    annotate_from_source(&mut a, PodSource::Api, None, later_clock);
    let a = Arc::new(a);
    config.apply(PodUpdate { source: PodSource::Api, pods: vec![a.clone()], errors: Vec::new() });
    let published = rx.borrow().pods["1"].clone();
    assert!(Arc::ptr_eq(&published, &a), "the source's object is shared, not copied");
    assert_eq!(published.metadata.annotations.as_ref().unwrap()[CONFIG_SEEN_ANNOTATION], format_rfc3339_nano(later_clock()));
    // A changed pod that keeps its seen time is shared too; one that lost it is copied and
    // given the published seen time back.
    let mut changed = pod("a", "1");
    changed.metadata.labels = Some([("k".to_string(), "v".to_string())].into());
    annotate_from_source(&mut changed, PodSource::Api, Some(&published), fixed_clock);
    let changed = Arc::new(changed);
    config.apply(PodUpdate { source: PodSource::Api, pods: vec![changed.clone()], errors: Vec::new() });
    assert!(Arc::ptr_eq(&rx.borrow().pods["1"], &changed));
    let mut restamped = (*changed).clone();
    restamped.metadata.labels = None;
    restamped.metadata.annotations.as_mut().unwrap().insert(CONFIG_SEEN_ANNOTATION.into(), "other".into());
    let restamped = Arc::new(restamped);
    config.apply(PodUpdate { source: PodSource::Api, pods: vec![restamped.clone()], errors: Vec::new() });
    let now = rx.borrow().pods["1"].clone();
    assert!(!Arc::ptr_eq(&now, &restamped));
    assert_eq!(now.metadata.annotations.as_ref().unwrap()[CONFIG_SEEN_ANNOTATION], format_rfc3339_nano(later_clock()));
}
