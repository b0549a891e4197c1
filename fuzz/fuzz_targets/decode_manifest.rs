//! A static pod manifest as the kubelet handles it: decode (YAML or JSON, Pod or PodList), apply
//! the static-pod defaults, validate; then, for a pod that passed validation, everything pure the
//! kubelet derives from it (sync plan, sandbox and container configs, QoS, pod cgroup, resize
//! allocation and plan, API status). Nothing may
//! panic, whatever the bytes.
#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::Pod;
use kubelet::allocation::{Allocatable, AllocationManager};
use kubelet::container::PodStatus;
use kubelet::kuberuntime::compute_pod_actions;
use kubelet::kuberuntime::container_config::{ContainerContext, container_config};
use kubelet::kuberuntime::dns::{ClusterDns, parse_resolv_conf};
use kubelet::kuberuntime::env::{EnvObjects, PodFacts};
use kubelet::kuberuntime::resize::plan_resize;
use kubelet::kuberuntime::sandbox::{SandboxContext, pod_sandbox_config};
use kubelet::kuberuntime::security_context::{ImageUser, NodeSecurity};
use kubelet::status::{ProbeResults, StatusInputs, generate_api_pod_status};
use kubelet_podconfig::{SourceRef, apply_static_pod_defaults, decode_manifest, validate_pod};
use libfuzzer_sys::fuzz_target;

fn derive_everything(pod: &Pod) {
    let runtime = PodStatus::default();
    let _ = compute_pod_actions(pod, &runtime);
    let sandbox = SandboxContext {
        pod_logs_dir: "/var/log/pods".into(),
        dns: ClusterDns {
            servers: vec!["10.96.0.10".into()],
            domain: "cluster.local".into(),
            host: parse_resolv_conf("nameserver 127.0.0.53\nsearch lan\noptions edns0\n"),
        },
        cgroup_parent: String::new(),
    };
    let _ = pod_sandbox_config(pod, 0, &sandbox);
    let allocatable = [("cpu", "2"), ("memory", "8Gi"), ("ephemeral-storage", "100Gi")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), k8s_openapi::apimachinery::pkg::api::resource::Quantity(v.into())))
        .collect();
    let facts = PodFacts { pod_ips: vec!["198.18.0.2".into()], host_ip: "127.0.0.1".into(), node_name: "fuzz-node".into(), allocatable };
    let security = NodeSecurity::new(std::path::Path::new("/nonexistent-knode-fuzz"), false);
    let volumes: HashMap<String, PathBuf> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        // Nowhere real: fileKeyRef reads find nothing.
        .map(|v| (v.name.clone(), PathBuf::from("/nonexistent-knode-fuzz/pods/u/volumes").join(&v.name)))
        .collect();
    // Image volumes as the runtime manager passes them once pulled.
    let image_volumes: HashMap<String, (String, String)> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| Some((v.name.clone(), (v.image.as_ref()?.reference.clone().unwrap_or_default(), "sha256:fuzz".to_string()))))
        .collect();
    let ctx = ContainerContext {
        facts: &facts,
        env_objects: &EnvObjects::default(),
        volume_paths: &volumes,
        image_volumes: &image_volumes,
        etc_hosts: Some("/var/lib/kubelet/pods/u/etc-hosts".into()),
        termination_log: Some("/var/lib/kubelet/pods/u/containers/c/0".into()),
        memory_capacity: 8 << 30,
        security: &security,
        image_user: ImageUser::default(),
        sub_paths: &kubelet::kuberuntime::sub_path::JoinedSubPaths,
        runtime_supports_rro: true,
    };
    let spec = pod.spec.as_ref();
    let init = spec.and_then(|s| s.init_containers.as_ref()).into_iter().flatten();
    for c in init.chain(spec.into_iter().flat_map(|s| s.containers.iter())) {
        let _ = container_config(pod, c, 0, &ctx);
    }
    // Resource management: QoS, the pod cgroup, an allocation and a resize of the pod to itself.
    let _ = kubelet::status::pod_qos_class(pod);
    let _ = kubelet::cm::pod_cgroups::pod_cgroup_resources(pod, Some(1024));
    let allocation = AllocationManager::new(None, Allocatable { milli_cpu: 2000, memory: 8 << 30 });
    allocation.admit(pod);
    let _ = allocation.handle_resize(pod);
    let allocated = allocation.allocated_pod(pod);
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let _ = plan_resize(&allocated, &runtime, &Default::default(), |name| allocation.actuated(&uid, name));
    let waiting = BTreeMap::new();
    let probes = ProbeResults::default();
    let _ = generate_api_pod_status(&StatusInputs {
        pod,
        runtime: &runtime,
        previous: None,
        waiting_reasons: &waiting,
        probes: &probes,
        host_ip: Some("127.0.0.1"),
        pod_is_terminal: false,
        runtime_name: "containerd",
        now: SystemTime::UNIX_EPOCH,
    });
}

fuzz_target!(|data: &[u8]| {
    let name = "/etc/kubernetes/manifests/fuzz.yaml";
    let Ok(pods) = decode_manifest(name, data) else { return };
    for mut pod in pods {
        apply_static_pod_defaults(&mut pod, "fuzz-node", &SourceRef::File(name.into()));
        if validate_pod(&pod).is_ok() {
            derive_everything(&pod);
        }
    }
});
