//! Image GC against the fake runtime: which images go, in which order, and the events.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kubelet_cri::{RuntimeService, api};
use test_support::{FakeRuntime, ManualClock, RecordingEvents};

use super::records::{self, ImageGcPolicy, ImageRecords};
use super::*;

const MIB: u64 = 1024 * 1024;

struct FixedFs(Mutex<(u64, u64)>);

#[async_trait::async_trait]
impl ImageFsStats for FixedFs {
    async fn image_fs(&self) -> Result<(u64, u64), String> {
        Ok(*self.0.lock().unwrap())
    }
}

fn policy(high: i32, low: i32, min_age: u64, max_age: u64) -> ImageGcPolicy {
    ImageGcPolicy {
        high_threshold_percent: high,
        low_threshold_percent: low,
        min_age: Duration::from_secs(min_age),
        max_age: Duration::from_secs(max_age),
    }
}

struct Setup {
    runtime: Arc<FakeRuntime>,
    fs: Arc<FixedFs>,
    clock: Arc<ManualClock>,
    events: Arc<RecordingEvents>,
    gc: ImageGcManager,
}

fn setup(policy: ImageGcPolicy, capacity: u64, available: u64) -> Setup {
    let runtime = Arc::new(FakeRuntime::new());
    let fs = Arc::new(FixedFs(Mutex::new((capacity, available))));
    let clock = Arc::new(ManualClock::at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)));
    let events = Arc::new(RecordingEvents::default());
    let gc = ImageGcManager::new(runtime.clone(), runtime.clone(), fs.clone(), events.clone(), clock.clone(), policy);
    Setup { runtime, fs, clock, events, gc }
}

/// Creates an exited-or-running container of `image` (any state counts as a use).
async fn container_using(runtime: &FakeRuntime, image: &str) {
    let sandbox = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: format!("p-{image}"),
            uid: format!("u-{image}"),
            namespace: "ns".into(),
            attempt: 0,
        }),
        ..Default::default()
    };
    let id = runtime.run_pod_sandbox(sandbox.clone(), "").await.unwrap();
    let config = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: "c".into(), attempt: 0 }),
        image: Some(api::ImageSpec { image: image.into(), ..Default::default() }),
        ..Default::default()
    };
    runtime.create_container(&id, config, sandbox).await.unwrap();
}

#[tokio::test]
async fn over_the_high_threshold_unused_images_go_least_recently_used_first() {
    let s = setup(policy(85, 80, 0, 0), 100 * MIB, 20 * MIB);
    let used = s.runtime.set_image("used:1", 50 * MIB, false);
    let pause = s.runtime.set_image("pause:3.9", MIB, true);
    let old = s.runtime.set_image("old:1", 6 * MIB, false);
    container_using(&s.runtime, "used:1").await;
    s.gc.garbage_collect(s.clock.now()).await.unwrap();
    s.clock.advance(Duration::from_secs(10));
    let newer = s.runtime.set_image("newer:1", 6 * MIB, false);
    s.gc.garbage_collect(s.clock.now()).await.unwrap();
    s.clock.advance(Duration::from_secs(10));
    let spare = s.runtime.set_image("spare:1", 6 * MIB, false);
    s.clock.advance(Duration::from_secs(10));
    // 90 % used; down to 80 % means freeing 10 MiB. `old` and `newer` were never used, so the
    // one detected first goes first.
    s.fs.0.lock().unwrap().1 = 10 * MIB;
    s.gc.garbage_collect(s.clock.now()).await.unwrap();
    assert!(s.runtime.has_image(&used), "in use");
    assert!(s.runtime.has_image(&pause), "pinned");
    assert!(!s.runtime.has_image(&old), "detected first, removed first");
    assert!(!s.runtime.has_image(&newer), "6 MiB freed is not 10 MiB: the next goes too");
    assert!(s.runtime.has_image(&spare), "12 MiB freed is enough");
    assert!(s.events.node_events().is_empty());
}

#[tokio::test]
async fn removals_are_counted_by_reason_and_pull_records_of_removed_images_go() {
    let mut s = setup(policy(85, 80, 0, 0), 100 * MIB, 10 * MIB);
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(crate::metrics::KubeletMetrics::new());
    let records = Arc::new(crate::kuberuntime::pull_records::PullRecords::new(
        dir.path(),
        crate::kuberuntime::pull_records::VerificationPolicy::AlwaysVerify,
    ));
    s.gc = s.gc.with_metrics(metrics.clone()).with_pull_records(records.clone());
    let big = s.runtime.set_image("big:1", 20 * MIB, false);
    let kept = s.runtime.set_image("kept:1", MIB, false);
    container_using(&s.runtime, "kept:1").await;
    for id in [&big, &kept] {
        records.record_pulled("x:1", id, crate::kuberuntime::pull_records::PulledWith::NodeAccessible).unwrap();
    }
    // The records must predate the round to be pruned (seconds resolution).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.gc.garbage_collect(s.clock.now()).await.unwrap();
    assert!(!s.runtime.has_image(&big));
    assert_eq!(metrics.image_garbage_collected.get(&["space"]), 1.0);
    assert!(records.record(&big).unwrap().is_none(), "the removed image's record went");
    assert!(records.record(&kept).unwrap().is_some());
}

#[tokio::test]
async fn below_the_high_threshold_nothing_goes() {
    let s = setup(policy(85, 80, 0, 0), 100 * MIB, 20 * MIB);
    let unused = s.runtime.set_image("unused:1", 5 * MIB, false);
    s.gc.garbage_collect(s.clock.now()).await.unwrap();
    assert!(s.runtime.has_image(&unused));
}

#[tokio::test]
async fn images_younger_than_the_minimum_age_stay_and_a_shortfall_is_an_event() {
    let s = setup(policy(85, 80, 120, 0), 100 * MIB, 5 * MIB);
    let fresh = s.runtime.set_image("fresh:1", 5 * MIB, false);
    let err = s.gc.garbage_collect(s.clock.now()).await.unwrap_err();
    assert!(s.runtime.has_image(&fresh), "detected just now");
    let text = err.to_string();
    assert!(text.starts_with("Insufficient free disk space on the node's image filesystem (95% of 100.0 MiB used). Failed to free sufficient space by deleting unused images (freed 0 bytes)."), "{text}");
    assert_eq!(s.events.node_events(), [("FreeDiskSpaceFailed".to_string(), text)]);
    s.clock.advance(Duration::from_secs(121));
    s.fs.0.lock().unwrap().1 = 25 * MIB;
    s.gc.garbage_collect(s.clock.now()).await.unwrap();
    assert!(s.runtime.has_image(&fresh), "under the threshold now");
    s.fs.0.lock().unwrap().1 = 5 * MIB;
    let _ = s.gc.garbage_collect(s.clock.now()).await;
    assert!(!s.runtime.has_image(&fresh), "old enough now");
}

#[tokio::test]
async fn images_unused_beyond_the_maximum_age_go_once_the_kubelet_ran_that_long() {
    let s = setup(policy(100, 80, 0, 600), 100 * MIB, 90 * MIB);
    let began = s.clock.now();
    let stale = s.runtime.set_image("stale:1", MIB, false);
    let used = s.runtime.set_image("used:1", MIB, false);
    container_using(&s.runtime, "used:1").await;
    s.gc.garbage_collect(began).await.unwrap();
    assert!(s.runtime.has_image(&stale), "the kubelet has not run for the maximum age yet");
    s.clock.advance(Duration::from_secs(601));
    s.gc.garbage_collect(began).await.unwrap();
    assert!(!s.runtime.has_image(&stale), "never used in 10 minutes");
    assert!(s.runtime.has_image(&used));
}

#[tokio::test]
async fn delete_unused_images_removes_all_that_may_go() {
    let s = setup(policy(85, 80, 0, 0), 100 * MIB, 90 * MIB);
    let a = s.runtime.set_image("a:1", 3 * MIB, false);
    let b = s.runtime.set_image("b:1", 4 * MIB, false);
    let pause = s.runtime.set_image("pause:3.9", MIB, true);
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(s.gc.delete_unused_images().await.unwrap(), 7 * MIB);
    assert!(!s.runtime.has_image(&a) && !s.runtime.has_image(&b));
    assert!(s.runtime.has_image(&pause));
}

#[tokio::test]
async fn a_zero_capacity_is_refused_with_upstreams_event() {
    let s = setup(policy(85, 80, 0, 0), 0, 0);
    let err = s.gc.garbage_collect(s.clock.now()).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid capacity 0 on image filesystem");
    assert_eq!(s.events.node_events()[0].0, "InvalidDiskCapacity");
}

#[test]
fn space_to_free_follows_upstreams_integer_arithmetic() {
    let p = policy(85, 80, 0, 0);
    assert_eq!(records::space_to_free(1000, 160, &p).unwrap(), None, "84 % used");
    assert!(records::space_to_free(1000, 151, &p).unwrap().is_some(), "84.9 % used is 85 % (100 - 151 * 100 / 1000, truncated)");
    let s = records::space_to_free(1000, 150, &p).unwrap().unwrap();
    assert_eq!((s.usage_percent, s.bytes), (85, 50));
    assert_eq!(records::space_to_free(1000, 2000, &p).unwrap().map(|s| s.bytes), None, "available is capped at capacity");
    assert_eq!(records::format_size(512), "512 B");
    assert_eq!(records::format_size(1536), "1.5 KiB");
    assert_eq!(records::format_size(20 * 1024 * MIB), "20.0 GiB");
}

#[test]
fn records_forget_images_gone_and_keep_first_detection() {
    let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    let image = |id: &str| api::Image { id: id.into(), size: 1, ..Default::default() };
    let mut r = ImageRecords::default();
    let none = std::collections::HashSet::new();
    r.detect(&[image("a"), image("b")], &none, at(1));
    r.detect(&[image("b"), image("c")], &none, at(2));
    assert_eq!(r.len(), 2);
    let order: Vec<String> = r.eviction_order(&none).into_iter().map(|c| c.id).collect();
    assert_eq!(order, ["b", "c"], "b was detected first");
    let in_use = ["c".to_string()].into_iter().collect();
    r.detect(&[image("b"), image("c")], &in_use, at(3));
    let order: Vec<String> = r.eviction_order(&none).into_iter().map(|c| c.id).collect();
    assert_eq!(order, ["b", "c"], "never used sorts before used");
}
