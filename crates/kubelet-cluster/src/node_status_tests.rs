use super::*;
use k8s_openapi::jiff::Timestamp;

fn t(s: i64) -> Time {
    Time(Timestamp::from_second(s).unwrap())
}

fn config() -> NodeConfig {
    let opts = kubelet_config::load_from_args([
        "kubelet",
        "--hostname-override=knode-node",
        "--node-labels=team=a,node.kubernetes.io/role=worker",
        "--register-with-taints=dedicated=gpu:NoSchedule",
        "--max-pods=30",
        "--kube-reserved=cpu=500m,memory=1Gi",
    ])
    .unwrap();
    NodeConfig::from_options(&opts, "knode-node", "198.18.255.1".parse().unwrap())
}

fn machine() -> MachineInfo {
    MachineInfo {
        num_cores: 2,
        memory_capacity: 8 << 30,
        ephemeral_storage: 50 << 30,
        machine_id: "m1".into(),
        boot_id: "b1".into(),
        kernel_version: "6.1.0".into(),
        os_image: "Debian GNU/Linux 12 (bookworm)".into(),
        ..MachineInfo::default()
    }
}

fn runtime() -> RuntimeInfo {
    RuntimeInfo { name: "containerd".into(), version: "1.6.20".into(), health: RuntimeHealth::default(), ..RuntimeInfo::default() }
}

#[test]
fn initial_node_has_labels_taints_and_annotation() {
    let node = initial_node(&config());
    let labels = node.metadata.labels.unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], "knode-node");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["team"], "a");
    assert_eq!(labels["node.kubernetes.io/role"], "worker");
    let taints = node.spec.unwrap().taints.unwrap();
    assert_eq!((taints[0].key.as_str(), taints[0].value.as_deref(), taints[0].effect.as_str()), ("dedicated", Some("gpu"), "NoSchedule"));
    assert_eq!(node.metadata.annotations.unwrap()["volumes.kubernetes.io/controller-managed-attach-detach"], "true");
}

#[test]
fn status_has_addresses_capacity_node_info_and_conditions() {
    let cfg = config();
    let (m, r) = (machine(), runtime());
    let images = status_images(
        vec![
            kubelet_cri::api::Image { repo_tags: vec!["small:1".into()], size: 10, ..Default::default() },
            kubelet_cri::api::Image {
                repo_tags: vec!["big:1".into()],
                repo_digests: vec!["big@sha256:1".into()],
                size: 99,
                ..Default::default()
            },
        ],
        50,
    );
    let s = node_status(
        StatusInputs {
            config: &cfg,
            machine: &m,
            runtime: &r,
            images,
            pressure: Pressure::default(),
            devices: DeviceCapacity::default(),
            now: t(5),
        },
        None,
    );
    let addrs: Vec<(String, String)> = s.addresses.clone().unwrap().into_iter().map(|a| (a.type_, a.address)).collect();
    assert_eq!(addrs, [("InternalIP".into(), "198.18.255.1".into()), ("Hostname".into(), "knode-node".into())]);
    let cap = s.capacity.clone().unwrap();
    assert_eq!((cap["cpu"].0.as_str(), cap["memory"].0.as_str(), cap["pods"].0.as_str()), ("2", "8Gi", "30"));
    let alloc = s.allocatable.clone().unwrap();
    // 8Gi - 1Gi kube-reserved - 100Mi default memory.available threshold.
    assert_eq!((alloc["cpu"].0.as_str(), alloc["memory"].0.as_str()), ("1500m", "7068Mi"));
    let info = s.node_info.clone().unwrap();
    assert_eq!(info.container_runtime_version, "containerd://1.6.20");
    assert_eq!(info.kubelet_version, kubelet_config::flags::KUBERNETES_VERSION);
    assert_eq!((info.machine_id.as_str(), info.boot_id.as_str(), info.operating_system.as_str()), ("m1", "b1", "linux"));
    assert_eq!(s.daemon_endpoints.clone().unwrap().kubelet_endpoint.unwrap().port, 10250);
    let images = s.images.clone().unwrap();
    assert_eq!(images[0].names.as_deref().unwrap(), ["big@sha256:1", "big:1"]);
    assert_eq!(crate::conditions::condition_status(s.conditions.as_deref().unwrap(), "Ready"), Some("True"));
    assert_eq!((s.runtime_handlers.clone(), s.features.clone()), (None, None), "a runtime that reports no handlers");

    // The CRI Status's handlers and features, as upstream publishes them.
    let cri = kubelet_cri::api::StatusResponse {
        runtime_handlers: vec![
            kubelet_cri::api::RuntimeHandler {
                name: String::new(),
                features: Some(kubelet_cri::api::RuntimeHandlerFeatures { recursive_read_only_mounts: true, user_namespaces: false }),
            },
            kubelet_cri::api::RuntimeHandler { name: "runc".into(), features: None },
        ],
        features: Some(kubelet_cri::api::RuntimeFeatures { supplemental_groups_policy: true }),
        ..Default::default()
    };
    let r = runtime().with_cri_features(&cri);
    let s = node_status(
        StatusInputs {
            config: &cfg,
            machine: &m,
            runtime: &r,
            images: Vec::new(),
            pressure: Pressure::default(),
            devices: DeviceCapacity::default(),
            now: t(5),
        },
        None,
    );
    let handlers: Vec<(String, Option<bool>, Option<bool>)> = s
        .runtime_handlers
        .unwrap()
        .into_iter()
        .map(|h| {
            (
                h.name.unwrap(),
                h.features.as_ref().and_then(|f| f.recursive_read_only_mounts),
                h.features.as_ref().and_then(|f| f.user_namespaces),
            )
        })
        .collect();
    assert_eq!(handlers, vec![(String::new(), Some(true), Some(false)), ("runc".into(), Some(false), Some(false))]);
    assert_eq!(s.features.unwrap().supplemental_groups_policy, Some(true));
}

#[test]
fn posts_only_on_change_or_after_report_frequency() {
    let cfg = config();
    let (m, r) = (machine(), runtime());
    let inputs = |now| StatusInputs {
        config: &cfg,
        machine: &m,
        runtime: &r,
        images: vec![],
        pressure: Pressure::default(),
        devices: DeviceCapacity::default(),
        now,
    };
    let first = node_status(inputs(t(0)), None);
    let second = node_status(inputs(t(10)), Some(&first));
    let freq = Duration::from_secs(300);
    assert!(should_post(None, &first, Duration::ZERO, freq));
    assert!(!should_post(Some(&first), &second, Duration::from_secs(10), freq), "only heartbeats moved");
    assert!(should_post(Some(&first), &second, freq, freq));
    let mut sick = r.clone();
    sick.health.errors.push("container runtime is down".into());
    let third = node_status(StatusInputs { runtime: &sick, ..inputs(t(20)) }, Some(&second));
    assert!(should_post(Some(&second), &third, Duration::from_secs(10), freq));
}

#[test]
fn device_plugin_resources_are_reported_as_counted() {
    let cfg = config();
    let (m, r) = (machine(), runtime());
    let devices = DeviceCapacity {
        capacity: [("test.device/a".to_string(), 4), ("test.device/gone".into(), 0)].into(),
        allocatable: [("test.device/a".to_string(), 3), ("test.device/gone".into(), 0)].into(),
    };
    let s = node_status(
        StatusInputs { config: &cfg, machine: &m, runtime: &r, images: vec![], pressure: Pressure::default(), devices, now: t(0) },
        None,
    );
    let (cap, alloc) = (s.capacity.unwrap(), s.allocatable.unwrap());
    assert_eq!((cap["test.device/a"].0.as_str(), alloc["test.device/a"].0.as_str()), ("4", "3"));
    assert_eq!((cap["test.device/gone"].0.as_str(), alloc["test.device/gone"].0.as_str()), ("0", "0"));
    assert_eq!(cap["cpu"].0, "2", "machine resources unchanged");
}
