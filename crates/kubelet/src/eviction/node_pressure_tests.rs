//! Tests of node-pressure ranking and messages.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubelet_config::eviction::parse_threshold;

use super::*;
use crate::stats::api::{ContainerStats, MemoryStats, NodeStats, PodReference, ProcessStats};
use crate::status::api_time;

const MI: u64 = 1 << 20;

fn memory(ws: u64) -> MemoryStats {
    MemoryStats {
        time: api_time(std::time::UNIX_EPOCH),
        available_bytes: None,
        usage_bytes: None,
        working_set_bytes: Some(ws),
        rss_bytes: None,
        page_faults: None,
        major_page_faults: None,
        psi: None,
    }
}

fn pod(uid: &str, memory_request: Option<&str>, priority: i32) -> Pod {
    let requests: Option<BTreeMap<String, Quantity>> = memory_request.map(|r| [("memory".to_string(), Quantity(r.into()))].into());
    let c = Container { name: "c".into(), resources: Some(ResourceRequirements { requests, ..Default::default() }), ..Default::default() };
    let mut p = Pod {
        spec: Some(PodSpec {
            containers: vec![c],
            priority: Some(priority),
            termination_grace_period_seconds: Some(30),
            ..Default::default()
        }),
        ..Default::default()
    };
    p.metadata.uid = Some(uid.into());
    p.metadata.name = Some(uid.into());
    p
}

fn stats(uid: &str, ws: u64, processes: u64) -> PodStats {
    let c = ContainerStats {
        name: "c".into(),
        start_time: api_time(std::time::UNIX_EPOCH),
        cpu: None,
        memory: Some(memory(ws)),
        io: None,
        rootfs: None,
        logs: None,
        swap: None,
    };
    PodStats {
        pod_ref: PodReference { name: uid.into(), namespace: "default".into(), uid: uid.into() },
        start_time: api_time(std::time::UNIX_EPOCH),
        containers: vec![c],
        cpu: None,
        memory: Some(memory(ws)),
        io: None,
        network: None,
        volume_stats: vec![],
        ephemeral_storage: None,
        process_stats: Some(ProcessStats { process_count: Some(processes) }),
        swap: None,
    }
}

fn summary(pods: Vec<PodStats>) -> Summary {
    let node = NodeStats {
        node_name: "n".into(),
        system_containers: vec![],
        start_time: api_time(std::time::UNIX_EPOCH),
        cpu: None,
        memory: None,
        io: None,
        network: None,
        fs: None,
        runtime: None,
        rlimit: None,
        swap: None,
    };
    Summary { node, pods }
}

fn met(signal: &str, value: &str, soft: bool, available: i64) -> MetThreshold {
    let threshold = Threshold {
        signal: signal.into(),
        value: parse_threshold(signal, value).unwrap().unwrap(),
        grace_period: soft.then_some(Duration::from_secs(30)),
        min_reclaim: None,
    };
    MetThreshold { threshold, observation: Observation { available, capacity: 8192 * MI as i64 } }
}

fn order(resource: &str, pods: &[Pod], s: &Summary) -> Vec<String> {
    let with: Vec<_> =
        pods.iter().map(|p| (p, s.pods.iter().find(|x| Some(x.pod_ref.uid.as_str()) == p.metadata.uid.as_deref()))).collect();
    rank(resource, with).into_iter().map(|(p, _)| p.metadata.uid.clone().unwrap()).collect()
}

#[test]
fn memory_ranking_is_upstreams() {
    let pods = vec![
        pod("within-big", Some("200Mi"), 0),      // 10Mi of 200Mi: -190Mi
        pod("within-small", Some("40Mi"), 0),     // 10Mi of 40Mi: -30Mi
        pod("over", Some("16Mi"), 0),             // 40Mi of 16Mi: exceeds
        pod("over-important", Some("1Mi"), 1000), // exceeds, but a higher priority
        pod("besteffort", None, 0),               // 5Mi of 0: exceeds by 5Mi
        pod("no-stats", Some("1Gi"), 0),
    ];
    let s = summary(vec![
        stats("within-big", 10 * MI, 1),
        stats("within-small", 10 * MI, 1),
        stats("over", 40 * MI, 1),
        stats("over-important", 90 * MI, 1),
        stats("besteffort", 5 * MI, 1),
    ]);
    assert_eq!(order("memory", &pods, &s), ["no-stats", "over", "besteffort", "over-important", "within-small", "within-big"]);
    // PIDs: priority, then process count.
    let s = summary(vec![
        stats("within-big", 0, 3),
        stats("within-small", 0, 9),
        stats("over", 0, 1),
        stats("over-important", 0, 50),
        stats("besteffort", 0, 2),
        stats("no-stats", 0, 1),
    ]);
    assert_eq!(order("pids", &pods, &s), ["within-small", "within-big", "besteffort", "over", "no-stats", "over-important"]);
    // PIDs without stats: first within their priority, not before lower priorities.
    let s = summary(vec![
        stats("within-big", 0, 3),
        stats("within-small", 0, 9),
        stats("over", 0, 1),
        stats("besteffort", 0, 2),
        stats("no-stats", 0, 1),
    ]);
    assert_eq!(order("pids", &pods, &s), ["within-small", "within-big", "besteffort", "over", "no-stats", "over-important"]);
    let s = summary(vec![stats("within-big", 0, 3)]);
    assert_eq!(order("pids", &pods, &s).last().unwrap(), "over-important", "priority first even without stats");
}

#[test]
fn the_pick_relieves_memory_first_with_upstreams_message_and_grace() {
    let pods = vec![pod("a", Some("16Mi"), 0), pod("b", Some("64Mi"), 0)];
    let s = summary(vec![stats("a", 40 * MI, 1), stats("b", 10 * MI, 1)]);
    let thresholds = vec![met("pid.available", "10%", false, 10), met("memory.available", "100Mi", false, 50 * MI as i64)];
    let (uid, e) = pick(&thresholds, &pods, &s, 0).unwrap();
    assert_eq!(uid, "a");
    assert_eq!(e.signal, "memory.available");
    assert_eq!(
        e.message,
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container c was using 40Mi, request is 16Mi, has larger consumption of memory. "
    );
    assert_eq!(e.grace_seconds, None, "hard thresholds evict at once");
    // A soft threshold gives evictionMaxPodGracePeriod, or the pod's own when shorter.
    let soft = vec![met("memory.available", "5%", true, 50 * MI as i64)];
    let (_, e) = pick(&soft, &pods, &s, 10).unwrap();
    assert_eq!(e.grace_seconds, Some(10));
    assert!(
        e.message.starts_with("The node was low on resource: memory. Threshold quantity: 429496729, available: 50Mi. "),
        "{}",
        e.message
    );
    let (_, e) = pick(&soft, &pods, &s, 60).unwrap();
    assert_eq!(e.grace_seconds, Some(30));
    // Nothing to evict.
    assert!(pick(&thresholds, &[], &s, 0).is_none());
}
