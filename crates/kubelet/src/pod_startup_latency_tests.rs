use std::time::UNIX_EPOCH;

use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning, ContainerStatus, PodCondition, PodSpec, PodStatus, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;
use kubelet_types::clock::TokioClock;

const T0: u64 = 1_800_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0 + secs)
}

fn time(secs: u64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::try_from(at(secs)).unwrap())
}

/// A pod created at T0; `running_at` gives every container a running state from then.
fn pod(uid: &str, started: bool, running_at: Option<u64>) -> Pod {
    let running =
        running_at.map(|s| ContainerState { running: Some(ContainerStateRunning { started_at: Some(time(s)) }), ..Default::default() });
    Pod {
        metadata: ObjectMeta {
            uid: Some(uid.into()),
            name: Some(uid.into()),
            namespace: Some("ns".into()),
            creation_timestamp: Some(time(0)),
            ..Default::default()
        },
        spec: Some(PodSpec::default()),
        status: Some(PodStatus {
            phase: Some(if running_at.is_some() { "Running" } else { "Pending" }.into()),
            start_time: started.then(|| time(1)),
            container_statuses: Some(vec![ContainerStatus {
                name: "main".into(),
                state: Some(running.unwrap_or_default()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// A tracker whose clock reads T0 plus tokio's (paused) elapsed time.
fn tracker() -> (PodStartupLatencyTracker, Arc<KubeletMetrics>) {
    let metrics = Arc::new(KubeletMetrics::new());
    (PodStartupLatencyTracker::new(Arc::new(TokioClock::starting_at(at(0))), metrics.clone()), metrics)
}

async fn advance(secs: u64) {
    tokio::time::advance(Duration::from_secs(secs)).await;
}

fn sli_sum(m: &KubeletMetrics) -> (u64, String) {
    let mut out = String::new();
    m.render(&mut out);
    let sum = out.lines().find_map(|l| l.strip_prefix("kubelet_pod_start_sli_duration_seconds_sum ")).unwrap_or_default().to_string();
    (m.pod_start_sli_duration.count(&[]), sum)
}

#[tokio::test(start_paused = true)]
async fn pulls_and_init_containers_are_taken_out_of_the_sli() {
    let (t, m) = tracker();
    t.observed_on_watch(&pod("a", false, None), at(0));
    // Two pulls overlapping by a second: 0–2 s and 1–3 s count as 3 s.
    t.image_pull_started("a");
    advance(1).await;
    t.image_pull_started("a");
    advance(1).await;
    t.image_pull_finished("a");
    advance(1).await;
    t.image_pull_finished("a");
    // Two init containers that ran 1 s and 0.5 s; each sync reports every exited one again.
    t.init_container_started("a");
    advance(1).await;
    t.init_container_finished("a", at(4));
    tokio::time::advance(Duration::from_millis(100)).await;
    t.init_container_started("a");
    t.init_container_finished("a", at(4));
    t.init_container_finished("a", at(4) + Duration::from_millis(600));
    t.init_container_finished("a", at(4));
    advance(4).await;
    // A watch delivery before the kubelet's status is stored, not yet running: nothing.
    t.observed_on_watch(&pod("a", true, None), at(8));
    t.status_updated(&pod("a", true, Some(7)));
    assert_eq!(sli_sum(&m).0, 0, "recorded at the watch delivery, not the status update");
    t.observed_on_watch(&pod("a", true, Some(7)), at(10));
    assert_eq!(sli_sum(&m), (1, "5.5".into()), "10 s less 3 s of pulls and 1.5 s of init containers");
    assert_eq!(m.pod_start_total_duration.count(&[]), 1);
    assert_eq!(*m.first_network_pod_start_sli_duration.lock().unwrap(), 5.5);
    // Recorded once.
    t.status_updated(&pod("a", true, Some(7)));
    t.observed_on_watch(&pod("a", true, Some(7)), at(20));
    assert_eq!(sli_sum(&m).0, 1);
}

#[tokio::test(start_paused = true)]
async fn a_watch_ahead_of_the_status_answer_records_at_the_watch_time() {
    let (t, m) = tracker();
    t.observed_on_watch(&pod("a", false, None), at(0));
    // Our patch's result arrives on the watch first, then the patch's answer.
    t.observed_on_watch(&pod("a", true, Some(3)), at(4));
    t.observed_on_watch(&pod("a", true, Some(3)), at(5));
    assert_eq!(sli_sum(&m).0, 0);
    advance(6).await;
    t.status_updated(&pod("a", true, Some(3)));
    assert_eq!(sli_sum(&m), (1, "4".into()), "the first watch delivery showing it running");
}

#[tokio::test(start_paused = true)]
async fn the_first_network_pod_sets_the_gauge_once() {
    let (t, m) = tracker();
    let host = |running: Option<u64>| {
        let mut p = pod("host", running.is_some(), running);
        p.spec.as_mut().unwrap().host_network = Some(true);
        p
    };
    t.observed_on_watch(&host(None), at(0));
    t.status_updated(&host(Some(1)));
    t.observed_on_watch(&host(Some(1)), at(2));
    assert_eq!(*m.first_network_pod_start_sli_duration.lock().unwrap(), 0.0, "host network pods do not count");
    for (uid, seen) in [("net-1", 3), ("net-2", 6)] {
        t.observed_on_watch(&pod(uid, false, None), at(0));
        t.status_updated(&pod(uid, true, Some(1)));
        t.observed_on_watch(&pod(uid, true, Some(1)), at(seen));
    }
    assert_eq!(*m.first_network_pod_start_sli_duration.lock().unwrap(), 3.0);
    assert_eq!(m.pod_start_sli_duration.count(&[]), 3);
}

#[tokio::test(start_paused = true)]
async fn pods_already_started_unschedulable_or_stateful_are_left_out() {
    let (t, m) = tracker();
    // Seen first with a start time: the kubelet did not see it start (a restart).
    let started = pod("started", true, Some(1));
    t.observed_on_watch(&started, at(0));
    t.status_updated(&started);
    t.observed_on_watch(&started, at(2));
    // Unschedulable at first sight: excluded for good, even once scheduled.
    let mut waiting = pod("waiting", false, None);
    waiting.status.as_mut().unwrap().conditions =
        Some(vec![PodCondition { type_: "PodScheduled".into(), status: "False".into(), ..Default::default() }]);
    t.observed_on_watch(&waiting, at(0));
    t.observed_on_watch(&pod("waiting", false, None), at(1));
    t.status_updated(&pod("waiting", true, Some(2)));
    t.observed_on_watch(&pod("waiting", true, Some(2)), at(3));
    assert_eq!(m.pod_start_total_duration.count(&[]), 0);
    // A hostPath volume makes the pod stateful: its total counts, the SLI does not.
    let mut stateful = pod("stateful", false, None);
    stateful.spec.as_mut().unwrap().volumes =
        Some(vec![Volume { name: "data".into(), host_path: Some(Default::default()), ..Default::default() }]);
    t.observed_on_watch(&stateful, at(0));
    let mut running = pod("stateful", true, Some(2));
    running.spec = stateful.spec.clone();
    t.status_updated(&running);
    t.observed_on_watch(&running, at(4));
    assert_eq!(m.pod_start_total_duration.count(&[]), 1);
    assert_eq!(m.pod_start_sli_duration.count(&[]), 0);
    assert_eq!(*m.first_network_pod_start_sli_duration.lock().unwrap(), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_finished_or_forgotten_pod_is_no_longer_tracked() {
    let (t, m) = tracker();
    t.observed_on_watch(&pod("a", false, None), at(0));
    t.forget("a");
    t.status_updated(&pod("a", true, Some(1)));
    t.observed_on_watch(&pod("a", true, Some(1)), at(2));
    let mut done = pod("b", false, None);
    t.observed_on_watch(&done, at(0));
    done.status.as_mut().unwrap().phase = Some("Succeeded".into());
    t.observed_on_watch(&done, at(1));
    t.status_updated(&pod("b", true, Some(1)));
    t.observed_on_watch(&pod("b", true, Some(1)), at(2));
    assert_eq!(m.pod_start_total_duration.count(&[]), 0);
}

#[test]
fn pulling_time_counts_overlaps_once() {
    assert_eq!(pulling_time(&[]), Duration::ZERO);
    assert_eq!(pulling_time(&[(at(0), at(2)), (at(5), at(6))]), Duration::from_secs(3), "disjoint");
    assert_eq!(pulling_time(&[(at(0), at(4)), (at(1), at(3))]), Duration::from_secs(4), "contained");
    assert_eq!(pulling_time(&[(at(0), at(2)), (at(1), at(5))]), Duration::from_secs(5), "overlapping");
}
