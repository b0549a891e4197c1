use super::*;
use crate::stats::api::{FsStats, NodeStats, PodReference, VolumeStats};
use crate::status::api_time;
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, PodSpec, ResourceRequirements};

fn fs(used: u64) -> FsStats {
    FsStats {
        time: api_time(std::time::UNIX_EPOCH),
        available_bytes: None,
        capacity_bytes: None,
        used_bytes: Some(used),
        inodes_free: None,
        inodes: None,
        inodes_used: None,
    }
}

fn container(name: &str, limit: Option<&str>) -> Container {
    let resources = limit.map(|l| ResourceRequirements {
        limits: Some([("ephemeral-storage".to_string(), Quantity(l.into()))].into()),
        ..Default::default()
    });
    Container { name: name.into(), resources, ..Default::default() }
}

fn pod(uid: &str, containers: Vec<Container>, volumes: Vec<Volume>) -> Pod {
    let mut p = Pod { spec: Some(PodSpec { containers, volumes: Some(volumes), ..Default::default() }), ..Default::default() };
    p.metadata.uid = Some(uid.into());
    p
}

fn stats(uid: &str, containers: &[(&str, u64, u64)], volumes: &[(&str, u64)]) -> PodStats {
    PodStats {
        pod_ref: PodReference { name: uid.into(), namespace: "default".into(), uid: uid.into() },
        start_time: api_time(std::time::UNIX_EPOCH),
        containers: containers
            .iter()
            .map(|(n, root, logs)| ContainerStats {
                name: n.to_string(),
                start_time: api_time(std::time::UNIX_EPOCH),
                cpu: None,
                memory: None,
                io: None,
                rootfs: Some(fs(*root)),
                logs: Some(fs(*logs)),
                swap: None,
            })
            .collect(),
        cpu: None,
        memory: None,
        io: None,
        network: None,
        volume_stats: volumes.iter().map(|(n, u)| VolumeStats { fs: fs(*u), name: n.to_string(), pvc_ref: None }).collect(),
        ephemeral_storage: None,
        process_stats: None,
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

fn empty_dir_volume(name: &str, limit: Option<&str>, medium: Option<&str>) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: limit.map(|l| Quantity(l.into())),
            medium: medium.map(Into::into),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn each_limit_with_upstreams_message() {
    let mi = 1 << 20;
    let pods = vec![
        pod("a", vec![container("c", None)], vec![empty_dir_volume("scratch", Some("1Mi"), None)]),
        pod("b", vec![container("c", Some("1Mi")), container("d", Some("1Mi"))], vec![]),
        pod("c", vec![container("app", Some("1Mi")), container("side", Some("10Mi"))], vec![]),
        pod("ok", vec![container("c", Some("10Mi"))], vec![empty_dir_volume("scratch", Some("10Mi"), None)]),
        pod("mem", vec![container("c", None)], vec![empty_dir_volume("shm", Some("1Mi"), Some("Memory"))]),
    ];
    let s = summary(vec![
        stats("a", &[("c", 0, 0)], &[("scratch", 3 * mi)]),
        stats("b", &[("c", mi, 0), ("d", mi / 2, mi)], &[]),
        stats("c", &[("app", mi, 4096), ("side", 0, 0)], &[]),
        stats("ok", &[("c", mi, 0)], &[("scratch", mi)]),
        stats("mem", &[("c", 0, 0)], &[("shm", 5 * mi)]),
    ]);
    let got = local_storage_evictions(&pods, &s);
    assert_eq!(
        got["a"],
        Eviction {
            signal: SIGNAL_EMPTY_DIR,
            message: "Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\". ".into(),
            grace_seconds: None
        }
    );
    assert_eq!(
        got["b"],
        Eviction {
            signal: SIGNAL_POD,
            message: "Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ".into(),
            grace_seconds: None
        }
    );
    assert_eq!(
        got["c"],
        Eviction {
            signal: SIGNAL_CONTAINER,
            message: "Container app exceeded its local ephemeral storage limit \"1Mi\". ".into(),
            grace_seconds: None
        }
    );
    assert!(!got.contains_key("ok") && !got.contains_key("mem"), "{got:?}");
}

#[test]
fn local_volumes_count_towards_the_pod_total_and_pods_without_stats_are_skipped() {
    let mi = 1 << 20;
    let pods = vec![
        pod("v", vec![container("c", Some("2Mi"))], vec![empty_dir_volume("data", None, None)]),
        pod("nostats", vec![container("c", Some("1"))], vec![]),
    ];
    let s = summary(vec![stats("v", &[("c", mi, 0)], &[("data", 2 * mi)])]);
    let got = local_storage_evictions(&pods, &s);
    assert_eq!(got["v"].signal, SIGNAL_POD);
    assert_eq!(got["v"].message, "Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ");
    assert_eq!(got.len(), 1);
}

#[test]
fn sidecars_count_towards_the_pod_total_and_their_own_limit() {
    let mi = 1 << 20;
    let mut sidecar = container("side", Some("1Mi"));
    sidecar.restart_policy = Some("Always".into());
    let mut p = pod("s", vec![container("app", Some("1Mi"))], vec![]);
    p.spec.as_mut().unwrap().init_containers = Some(vec![sidecar]);
    // 1.5Mi in all, under the 2Mi of app and sidecar together: no pod-level eviction; the
    // sidecar itself is over its own 1Mi.
    let s = summary(vec![stats("s", &[("app", mi / 2, 0), ("side", mi + 1, 0)], &[])]);
    let got = local_storage_evictions(&[p], &s);
    assert_eq!(
        got["s"],
        Eviction {
            signal: SIGNAL_CONTAINER,
            message: "Container side exceeded its local ephemeral storage limit \"1Mi\". ".into(),
            grace_seconds: None
        }
    );
}
