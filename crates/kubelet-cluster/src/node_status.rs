//! The node object (upstream `kubelet_node_status.go` + `nodestatus` setters), as pure
//! functions: [`initial_node`] is what registration creates; [`node_status`] is the status
//! computed from (config, machine facts, runtime, images, device plugin resources, previous
//! status, now);
//! [`should_post`] decides whether a computed status is sent. No I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeDaemonEndpoints, NodeFeatures, NodeRuntimeHandler, NodeRuntimeHandlerFeatures,
    NodeSpec, NodeStatus, NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kubelet_config::KubeletOptions;

use crate::conditions::{RuntimeHealth, set_conditions};
use kubelet_types::machine::MachineInfo;
use kubelet_types::node::{DeviceCapacity, Pressure};
use kubelet_types::resources::{Reservations, allocatable, capacity, reservation, to_resource_list};

/// Upstream's `MaxNamesPerImageInNodeStatus`.
const MAX_NAMES_PER_IMAGE: usize = 5;

/// The node's identity and settings, from the kubelet's options.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// The Node object's `metadata.name`.
    pub name: String,
    /// The `Hostname` address.
    pub hostname: String,
    /// The node's primary IP, its `InternalIP` address.
    pub node_ip: IpAddr,
    /// `nodeLabels` of the KubeletConfiguration (`--node-labels`), beside the kubelet's own.
    pub labels: BTreeMap<String, String>,
    /// `registerWithTaints`: the taints the Node is created with.
    pub taints: Vec<Taint>,
    /// `spec.providerID` (`--provider-id`, else `providerID` of the config); empty for none.
    pub provider_id: String,
    /// `maxPods` (default 110): the `pods` capacity.
    pub max_pods: i64,
    /// `podsPerCore` (default 0, no limit): caps `pods` at this many per core.
    pub pods_per_core: i64,
    /// kubeReserved, systemReserved and evictionHard, taken off capacity for allocatable.
    pub reservations: Reservations,
    /// `daemonEndpoints.kubeletEndpoint.Port`.
    pub kubelet_port: i32,
    /// nodeStatusMaxImages; -1 for all.
    pub max_images: i32,
    /// The Kubernetes version the kubelet reports (`nodeInfo.kubeletVersion`, `v1.x.y`).
    pub kubelet_version: String,
}

impl NodeConfig {
    /// Settings from the kubelet's options for node `name` with primary IP `node_ip`.
    pub fn from_options(opts: &KubeletOptions, name: &str, node_ip: IpAddr) -> NodeConfig {
        let cfg = &opts.config;
        NodeConfig {
            name: name.into(),
            hostname: name.into(),
            node_ip,
            labels: cfg.node_labels.clone(),
            taints: cfg
                .register_with_taints
                .iter()
                .map(|t| Taint {
                    key: t.key.clone(),
                    value: Some(t.value.clone()).filter(|v| !v.is_empty()),
                    effect: t.effect.clone(),
                    time_added: None,
                })
                .collect(),
            provider_id: if opts.flags.provider_id.is_empty() { cfg.provider_id.clone() } else { opts.flags.provider_id.clone() },
            max_pods: i64::from(cfg.max_pods),
            pods_per_core: i64::from(cfg.pods_per_core),
            reservations: Reservations {
                kube_reserved: cfg.kube_reserved.clone(),
                system_reserved: cfg.system_reserved.clone(),
                eviction_hard: cfg.eviction_hard.clone(),
            },
            kubelet_port: cfg.port,
            max_images: cfg.node_status_max_images,
            kubelet_version: kubelet_config::flags::KUBERNETES_VERSION.into(),
        }
    }
}

/// What the runtime reports: `containerd` + `1.6.20`, its health, its handlers' and its own
/// features (`status.runtimeHandlers`, `status.features`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeInfo {
    /// The CRI `runtime_name` (`containerd`); empty when `Version` failed.
    pub name: String,
    /// The CRI `runtime_version` (`1.6.20`); empty when `Version` failed (reported `Unknown`).
    pub version: String,
    /// Why the node is not `Ready`, if it is not: a failed `RuntimeReady` or `NetworkReady`
    /// condition, a stuck PLEG, ...
    pub health: RuntimeHealth,
    /// The runtime handlers and their features, for `status.runtimeHandlers`.
    pub handlers: Vec<NodeRuntimeHandler>,
    /// The runtime's own features, for `status.features`.
    pub features: Option<NodeFeatures>,
}

impl RuntimeInfo {
    /// The handlers and features of a CRI `Status` answer, as upstream's setters publish them.
    pub fn with_cri_features(mut self, status: &kubelet_cri::api::StatusResponse) -> Self {
        self.handlers = status
            .runtime_handlers
            .iter()
            .map(|h| {
                let f = h.features.unwrap_or_default();
                NodeRuntimeHandler {
                    name: Some(h.name.clone()),
                    features: Some(NodeRuntimeHandlerFeatures {
                        recursive_read_only_mounts: Some(f.recursive_read_only_mounts),
                        user_namespaces: Some(f.user_namespaces),
                    }),
                }
            })
            .collect();
        self.features = status.features.as_ref().map(|f| NodeFeatures { supplemental_groups_policy: Some(f.supplemental_groups_policy) });
        self
    }
}

/// Go's `GOARCH` for this build.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The labels the kubelet owns on its node (upstream `updateDefaultLabels`) plus `--node-labels`.
pub fn node_labels(cfg: &NodeConfig) -> BTreeMap<String, String> {
    let mut labels = cfg.labels.clone();
    labels.insert("kubernetes.io/hostname".into(), cfg.hostname.clone());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    labels.insert("kubernetes.io/arch".into(), go_arch().into());
    labels.insert("beta.kubernetes.io/os".into(), "linux".into());
    labels.insert("beta.kubernetes.io/arch".into(), go_arch().into());
    labels
}

/// The node that registration creates (upstream `initialNode`), without status.
pub fn initial_node(cfg: &NodeConfig) -> Node {
    let annotations = BTreeMap::from([("volumes.kubernetes.io/controller-managed-attach-detach".to_string(), "true".to_string())]);
    Node {
        metadata: ObjectMeta {
            name: Some(cfg.name.clone()),
            labels: Some(node_labels(cfg)),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(cfg.taints.clone()).filter(|t| !t.is_empty()),
            provider_id: Some(cfg.provider_id.clone()).filter(|p| !p.is_empty()),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// Images for the status, largest first, at most `max` (-1: all), at most 5 names each.
pub fn status_images(mut images: Vec<kubelet_cri::api::Image>, max: i32) -> Vec<ContainerImage> {
    images.sort_by_key(|i| std::cmp::Reverse(i.size));
    if max > -1 {
        images.truncate(max as usize);
    }
    images
        .into_iter()
        .map(|i| {
            let mut names: Vec<String> = i.repo_digests.into_iter().chain(i.repo_tags).collect();
            names.truncate(MAX_NAMES_PER_IMAGE);
            ContainerImage { names: Some(names), size_bytes: Some(i.size as i64) }
        })
        .collect()
}

/// Everything the status is computed from.
pub struct StatusInputs<'a> {
    /// The node's identity and settings.
    pub config: &'a NodeConfig,
    /// The machine facts (capacity and `nodeInfo`).
    pub machine: &'a MachineInfo,
    /// The CRI runtime's identity, health and features.
    pub runtime: &'a RuntimeInfo,
    /// `status.images`, already sorted and cut ([`status_images`]).
    pub images: Vec<ContainerImage>,
    /// The eviction pressure behind `MemoryPressure`, `DiskPressure` and `PIDPressure`.
    pub pressure: Pressure,
    /// Device plugin resources, added to capacity and allocatable.
    pub devices: DeviceCapacity,
    /// The heartbeat (and transition) time for the conditions.
    pub now: Time,
}

/// The node's allocatable resources (capacity less kube/system reservations and the hard
/// eviction thresholds), as the node status reports them.
pub fn node_allocatable(config: &NodeConfig, machine: &MachineInfo) -> BTreeMap<String, Quantity> {
    let cap = capacity(machine, config.max_pods, config.pods_per_core);
    to_resource_list(&allocatable(&cap, &reservation(&cap, &config.reservations)))
}

/// The node status to post, given the previous one (for condition transition times).
pub fn node_status(inputs: StatusInputs<'_>, previous: Option<&NodeStatus>) -> NodeStatus {
    let cfg = inputs.config;
    let mut cap = capacity(inputs.machine, cfg.max_pods, cfg.pods_per_core);
    let mut alloc = allocatable(&cap, &reservation(&cap, &cfg.reservations));
    cap.extend(inputs.devices.capacity);
    alloc.extend(inputs.devices.allocatable);
    let mut conditions = previous.and_then(|p| p.conditions.clone()).unwrap_or_default();
    let missing: Vec<&str> = ["cpu", "memory", "pods", "ephemeral-storage"]
        .into_iter()
        .filter(|r| cap.get(*r).is_none_or(|v| *v == 0 && *r != "pods"))
        .collect();
    set_conditions(&mut conditions, &inputs.runtime.health, inputs.pressure, &missing, &inputs.now);
    let m = inputs.machine;
    let runtime_version = if inputs.runtime.version.is_empty() { "Unknown" } else { &inputs.runtime.version };
    NodeStatus {
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: cfg.node_ip.to_string() },
            NodeAddress { type_: "Hostname".into(), address: cfg.hostname.clone() },
        ]),
        capacity: Some(to_resource_list(&cap)),
        allocatable: Some(to_resource_list(&alloc)),
        conditions: Some(conditions),
        daemon_endpoints: Some(NodeDaemonEndpoints { kubelet_endpoint: Some(DaemonEndpoint { port: cfg.kubelet_port }) }),
        images: Some(inputs.images),
        runtime_handlers: Some(inputs.runtime.handlers.clone()).filter(|h| !h.is_empty()),
        features: inputs.runtime.features.clone(),
        node_info: Some(NodeSystemInfo {
            architecture: go_arch().into(),
            boot_id: m.boot_id.clone(),
            container_runtime_version: format!("{}://{}", inputs.runtime.name, runtime_version),
            kernel_version: m.kernel_version.clone(),
            kube_proxy_version: cfg.kubelet_version.clone(),
            kubelet_version: cfg.kubelet_version.clone(),
            machine_id: m.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: m.os_image.clone(),
            system_uuid: m.system_uuid.clone(),
            ..NodeSystemInfo::default()
        }),
        ..previous.cloned().unwrap_or_default()
    }
}

/// Strips heartbeat times, which change on every computation.
fn without_heartbeats(status: &NodeStatus) -> NodeStatus {
    let mut s = status.clone();
    for c in s.conditions.iter_mut().flatten() {
        c.last_heartbeat_time = None;
    }
    s
}

/// Whether to post `new` (upstream: when anything but heartbeats changed, or when
/// nodeStatusReportFrequency passed since the last post).
pub fn should_post(last_posted: Option<&NodeStatus>, new: &NodeStatus, since_last_post: Duration, report_frequency: Duration) -> bool {
    match last_posted {
        None => true,
        Some(old) => since_last_post >= report_frequency || without_heartbeats(old) != without_heartbeats(new),
    }
}

#[cfg(test)]
#[path = "node_status_tests.rs"]
mod tests;
