//! The device manager against fake device plugins over real gRPC on unix sockets in a temp
//! dir: upstream's node e2e `device_plugin_failures_test.go` scenarios one by one (options
//! failing, devices turning unhealthy and back, `ListAndWatch` failing at once or later, a
//! plugin stopping, with a short grace period), registration checks, re-registration,
//! allocation through `Allocate` and the checkpoint across a restart.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubelet_deviceplugin::v1beta1::{DevicePluginOptions, HEALTHY, RegisterRequest, UNHEALTHY};
use kubelet_deviceplugin::{ActivePods, DeviceAllocator, DeviceManager, DeviceManagerConfig};
use test_support::FakeDevicePlugin;
use test_support::device_plugin::{DEVICES_ENV, device, register, register_request};
use tokio_util::sync::CancellationToken;

const R: &str = "test.device/knode";

struct AllPods;

impl ActivePods for AllPods {
    fn active_pod_uids(&self) -> Option<BTreeSet<String>> {
        None
    }
}

struct Node {
    dir: tempfile::TempDir,
    manager: DeviceManager,
    stop: CancellationToken,
}

impl Node {
    fn start(grace: Duration) -> Node {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, grace)
    }

    fn start_in(dir: tempfile::TempDir, grace: Duration) -> Node {
        let config = DeviceManagerConfig { dir: dir.path().to_path_buf(), stop_grace_period: grace };
        let manager = DeviceManager::new(config, Arc::new(AllPods));
        let stop = CancellationToken::new();
        tokio::spawn(manager.start(stop.clone()).unwrap());
        Node { dir, manager, stop }
    }

    fn socket(&self) -> std::path::PathBuf {
        self.manager.socket_path()
    }

    /// Serves `plugin` as `<name>.sock` and registers it for `resource`.
    async fn plugin(&self, plugin: &FakeDevicePlugin, name: &str, resource: &str) -> Result<(), tonic::Status> {
        let endpoint = format!("{name}.sock");
        plugin.serve(&self.dir.path().join(&endpoint)).unwrap();
        register(&self.socket(), &endpoint, resource).await
    }

    /// (allocatable, capacity) of `resource`, as the e2e test reads it; -1 when absent.
    fn values(&self, resource: &str) -> (i64, i64) {
        let c = self.manager.capacity();
        (c.allocatable.get(resource).copied().unwrap_or(-1), c.capacity.get(resource).copied().unwrap_or(-1))
    }

    async fn eventually(&self, resource: &str, want: (i64, i64), within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.values(resource) != want {
            assert!(tokio::time::Instant::now() < deadline, "{resource}: want {want:?}, have {:?}", self.values(resource));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn devices(health: &[&str]) -> Vec<kubelet_deviceplugin::v1beta1::Device> {
    health.iter().enumerate().map(|(i, h)| device(&i.to_string(), h)).collect()
}

const WAIT: Duration = Duration::from_secs(5);
const GRACE: Duration = Duration::from_secs(3);

#[tokio::test]
async fn when_get_device_plugin_options_fails_the_plugin_is_not_used() {
    let node = Node::start(GRACE);
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY]));
    plugin.fail("GetDevicePluginOptions", "GetDevicePluginOptions failed");
    let err = node.plugin(&plugin, "p", R).await.unwrap_err();
    assert!(err.message().contains("failed to get device plugin options"), "{err:?}");
    assert!(err.message().contains("GetDevicePluginOptions failed"), "{err:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(plugin.calls(), vec!["GetDevicePluginOptions"]);
    assert_eq!(node.values(R), (-1, -1));
    node.stop.cancel();
}

#[tokio::test]
async fn a_single_device_turns_unhealthy_and_healthy_again() {
    let node = Node::start(GRACE);
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY]));
    node.plugin(&plugin, "p", R).await.unwrap();
    node.eventually(R, (1, 1), WAIT).await;
    plugin.update_devices(devices(&[UNHEALTHY]));
    node.eventually(R, (0, 1), WAIT).await;
    plugin.update_devices(devices(&[HEALTHY]));
    node.eventually(R, (1, 1), WAIT).await;
}

fn pod(uid: &str, containers: &[(&str, i64)]) -> Pod {
    let container = |(name, n): &(&str, i64)| {
        let rl = [(R.to_string(), Quantity(n.to_string()))].into_iter().collect();
        Container {
            name: name.to_string(),
            resources: Some(ResourceRequirements { limits: Some(rl), ..Default::default() }),
            ..Default::default()
        }
    };
    let mut p =
        Pod { spec: Some(PodSpec { containers: containers.iter().map(container).collect(), ..Default::default() }), ..Default::default() };
    p.metadata.uid = Some(uid.into());
    p
}

#[tokio::test]
async fn an_allocated_device_turning_unhealthy_keeps_capacity() {
    let node = Node::start(GRACE);
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY]));
    node.plugin(&plugin, "p", R).await.unwrap();
    node.eventually(R, (1, 1), WAIT).await;
    let p = pod("u1", &[("container-1", 1)]);
    node.manager.allocate_pod(&p).await.unwrap();
    let opts = node.manager.container_options(&p, &p.spec.as_ref().unwrap().containers[0]).await.unwrap();
    assert_eq!(opts.envs, vec![(DEVICES_ENV.to_string(), "0".to_string())]);
    assert_eq!(node.values(R), (1, 1), "a running pod does not change allocatable");
    plugin.update_devices(devices(&[UNHEALTHY]));
    node.eventually(R, (0, 1), WAIT).await;
    node.manager.remove_pod("u1");
    assert_eq!(node.values(R), (0, 1));
    assert_eq!(plugin.calls(), vec!["GetDevicePluginOptions", "ListAndWatch", "Allocate"]);
}

#[tokio::test]
async fn allocatable_follows_the_number_of_healthy_devices() {
    let node = Node::start(GRACE);
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY; 4]));
    node.plugin(&plugin, "p", R).await.unwrap();
    node.eventually(R, (4, 4), WAIT).await;
    plugin.update_devices(devices(&[HEALTHY, HEALTHY, HEALTHY, UNHEALTHY]));
    node.eventually(R, (3, 4), WAIT).await;
    plugin.update_devices(devices(&[HEALTHY; 4]));
    node.eventually(R, (4, 4), WAIT).await;
    plugin.update_devices(devices(&[HEALTHY, UNHEALTHY, HEALTHY, UNHEALTHY]));
    node.eventually(R, (2, 4), WAIT).await;
    plugin.update_devices(devices(&[HEALTHY, UNHEALTHY, HEALTHY, HEALTHY]));
    node.eventually(R, (3, 4), WAIT).await;
    plugin.update_devices(devices(&[HEALTHY; 4]));
    node.eventually(R, (4, 4), WAIT).await;
}

#[tokio::test]
async fn when_list_and_watch_fails_at_once_the_resource_is_zero_and_not_retried() {
    let node = Node::start(GRACE);
    assert_eq!(node.values(R), (-1, -1));
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY]));
    plugin.fail("ListAndWatch", "ListAndWatch failed");
    node.plugin(&plugin, "p", R).await.unwrap();
    node.eventually(R, (0, 0), WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(plugin.calls(), vec!["GetDevicePluginOptions", "ListAndWatch"], "never retried");
    // Still listed at zero after the grace period.
    tokio::time::sleep(GRACE).await;
    assert_eq!(node.values(R), (0, 0));
}

#[tokio::test]
async fn when_list_and_watch_fails_later_devices_turn_unhealthy_then_capacity_zero() {
    let node = Node::start(GRACE);
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY, HEALTHY]));
    node.plugin(&plugin, "p", R).await.unwrap();
    node.eventually(R, (2, 2), WAIT).await;
    plugin.fail("ListAndWatch", "ListAndWatch failed");
    node.eventually(R, (0, 2), WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(plugin.calls().len(), 2, "never retried: {:?}", plugin.calls());
    assert_eq!(node.values(R), (0, 2), "capacity kept during the grace period");
    node.eventually(R, (0, 0), GRACE + WAIT).await;
}

#[tokio::test]
async fn when_the_plugin_stops_devices_turn_unhealthy_then_capacity_zero() {
    let node = Node::start(GRACE);
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY, HEALTHY]));
    node.plugin(&plugin, "p", R).await.unwrap();
    node.eventually(R, (2, 2), WAIT).await;
    plugin.stop();
    node.eventually(R, (0, 2), WAIT).await;
    node.eventually(R, (0, 0), GRACE + WAIT).await;
    // Until a plugin registers again.
    let again = FakeDevicePlugin::new(devices(&[HEALTHY]));
    node.plugin(&again, "q", R).await.unwrap();
    node.eventually(R, (1, 1), WAIT).await;
}

#[tokio::test]
async fn registration_checks_version_and_resource_name() {
    let node = Node::start(GRACE);
    let request = |version: &str, resource: &str| RegisterRequest {
        version: version.into(),
        endpoint: "p.sock".into(),
        resource_name: resource.into(),
        options: None,
    };
    let err = register_request(&node.socket(), request("v1alpha1", R)).await.unwrap_err();
    assert_eq!(err.message(), "requested API version \"v1alpha1\" is not supported by kubelet. Supported version is [\"v1beta1\"]");
    let err = register_request(&node.socket(), request("v1beta1", "gpu")).await.unwrap_err();
    assert_eq!(err.message(), "the ResourceName \"gpu\" is invalid");
    let err = register_request(&node.socket(), request("v1beta1", R)).await.unwrap_err();
    assert!(err.message().starts_with("failed to dial device plugin: "), "{err:?}");
    assert_eq!(node.values(R), (-1, -1));
}

#[tokio::test]
async fn a_new_registration_replaces_the_plugin() {
    let node = Node::start(GRACE);
    let first = FakeDevicePlugin::new(devices(&[HEALTHY]));
    node.plugin(&first, "a", R).await.unwrap();
    node.eventually(R, (1, 1), WAIT).await;
    let second = FakeDevicePlugin::new(devices(&[HEALTHY, HEALTHY, HEALTHY]));
    node.plugin(&second, "b", R).await.unwrap();
    node.eventually(R, (3, 3), WAIT).await;
    // The replaced plugin going away changes nothing.
    first.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.values(R), (3, 3));
    let p = pod("u1", &[("c", 2)]);
    node.manager.allocate_pod(&p).await.unwrap();
    assert_eq!(second.allocations().len(), 1);
    assert!(!first.calls().contains(&"Allocate".to_string()));
}

#[tokio::test]
async fn allocation_calls_the_plugin_and_refuses_more_devices_than_free() {
    let node = Node::start(GRACE);
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY, HEALTHY, HEALTHY, UNHEALTHY]));
    node.plugin(&plugin, "p", R).await.unwrap();
    node.eventually(R, (3, 4), WAIT).await;

    let first = pod("u1", &[("a", 1), ("b", 1)]);
    node.manager.allocate_pod(&first).await.unwrap();
    assert_eq!(plugin.allocations(), vec![vec!["0".to_string()], vec!["1".to_string()]]);
    let opts = node.manager.container_options(&first, &first.spec.as_ref().unwrap().containers[1]).await.unwrap();
    assert_eq!(opts.envs, vec![(DEVICES_ENV.to_string(), "1".to_string())]);

    // One healthy device left.
    let second = pod("u2", &[("c", 2)]);
    let err = node.manager.allocate_pod(&second).await.unwrap_err();
    assert_eq!(err.to_string(), "requested number of devices unavailable for test.device/knode. Requested: 2, Available: 1");
    // Nothing stays allocated to a refused pod; the first pod's devices come back when it goes.
    node.manager.remove_pod("u1");
    node.manager.allocate_pod(&second).await.unwrap();
    assert_eq!(plugin.allocations().last().unwrap(), &vec!["0".to_string(), "1".to_string()]);
    // Neither preferred allocation nor pre-start: the plugin did not ask for them.
    assert!(!plugin.calls().iter().any(|c| c == "GetPreferredAllocation" || c == "PreStartContainer"), "{:?}", plugin.calls());
    // A container without device requests gets nothing.
    let plain = Container { name: "plain".into(), ..Default::default() };
    assert!(node.manager.container_options(&second, &plain).await.unwrap().is_empty());
}

#[tokio::test]
async fn preferred_allocation_and_pre_start_when_the_plugin_asks() {
    let node = Node::start(GRACE);
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY; 4]));
    plugin.set_options(DevicePluginOptions { pre_start_required: true, get_preferred_allocation_available: true });
    node.plugin(&plugin, "p", R).await.unwrap();
    node.eventually(R, (4, 4), WAIT).await;
    let p = pod("u1", &[("c", 2)]);
    node.manager.allocate_pod(&p).await.unwrap();
    // The fake prefers the highest IDs.
    assert_eq!(plugin.allocations(), vec![vec!["2".to_string(), "3".to_string()]]);
    node.manager.container_options(&p, &p.spec.as_ref().unwrap().containers[0]).await.unwrap();
    assert_eq!(plugin.calls(), vec!["GetDevicePluginOptions", "ListAndWatch", "GetPreferredAllocation", "Allocate", "PreStartContainer"]);
}

#[tokio::test]
async fn init_container_devices_are_reused_by_the_containers_after_it() {
    let node = Node::start(GRACE);
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY, HEALTHY]));
    node.plugin(&plugin, "p", R).await.unwrap();
    node.eventually(R, (2, 2), WAIT).await;
    let mut p = pod("u1", &[("main", 2)]);
    let init = pod("", &[("init", 2)]).spec.unwrap().containers;
    p.spec.as_mut().unwrap().init_containers = Some(init);
    node.manager.allocate_pod(&p).await.unwrap();
    assert_eq!(plugin.allocations(), vec![vec!["0".to_string(), "1".to_string()]; 2]);
}

#[tokio::test]
async fn allocations_survive_a_restart_in_the_checkpoint() {
    let node = Node::start(GRACE);
    let plugin = FakeDevicePlugin::new(devices(&[HEALTHY, HEALTHY]));
    node.plugin(&plugin, "p", R).await.unwrap();
    node.eventually(R, (2, 2), WAIT).await;
    let p = pod("u1", &[("c", 1)]);
    node.manager.allocate_pod(&p).await.unwrap();
    node.stop.cancel();
    let deadline = tokio::time::Instant::now() + WAIT;
    while node.socket().exists() {
        assert!(tokio::time::Instant::now() < deadline, "the registration socket is removed at shutdown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(Path::new(&node.dir.path().join("kubelet_internal_checkpoint")).exists());

    // A stale socket left behind is replaced.
    std::fs::write(node.socket(), b"").unwrap();
    let restarted = Node::start_in(node.dir, GRACE);
    assert_eq!(restarted.values(R), (0, 0), "known from the checkpoint, no devices until the plugin registers");
    // The running container keeps its devices without asking the plugin again.
    restarted.manager.allocate_pod(&p).await.unwrap();
    let opts = restarted.manager.container_options(&p, &p.spec.as_ref().unwrap().containers[0]).await.unwrap();
    assert_eq!(opts.envs, vec![(DEVICES_ENV.to_string(), "0".to_string())]);
    let again = FakeDevicePlugin::new(devices(&[HEALTHY, HEALTHY]));
    restarted.plugin(&again, "p2", R).await.unwrap();
    restarted.eventually(R, (2, 2), WAIT).await;
    // Device 0 is still held: a new pod asking for two is refused.
    let err = restarted.manager.allocate_pod(&pod("u2", &[("c", 2)])).await.unwrap_err();
    assert_eq!(err.to_string(), "requested number of devices unavailable for test.device/knode. Requested: 2, Available: 1");
    assert!(again.allocations().is_empty());
}
