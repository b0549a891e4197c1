//! The node controller and the lease controller against an in-memory API server: registration,
//! status posting only on change, re-registration of a deleted node, device plugin resources,
//! lease renewal through conflicts, deletion and an API outage. Time is paused.

mod fake_api;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use fake_api::FakeApi;
use k8s_openapi::api::core::v1::ContainerImage;
use kubelet_cluster::conditions::{RuntimeHealth, condition_status};
use kubelet_cluster::lease::{LeaseController, micro_now};
use kubelet_cluster::node_controller::{NodeController, NodeFacts};
use kubelet_cluster::node_status::{NodeConfig, RuntimeInfo};
use kubelet_types::machine::MachineInfo;
use kubelet_types::node::{DeviceCapacity, DeviceResources};
use test_support::FakeDeviceResources;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

struct Facts {
    runtime_ready: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl NodeFacts for Facts {
    fn machine(&self) -> MachineInfo {
        MachineInfo { num_cores: 2, memory_capacity: 4 << 30, ephemeral_storage: 10 << 30, boot_id: "b".into(), ..MachineInfo::default() }
    }
    async fn runtime(&self) -> RuntimeInfo {
        let health = if self.runtime_ready.load(Ordering::SeqCst) {
            RuntimeHealth::default()
        } else {
            RuntimeHealth { errors: vec!["container runtime is down".into()] }
        };
        RuntimeInfo { name: "containerd".into(), version: "1.7.0".into(), health, ..RuntimeInfo::default() }
    }
    async fn images(&self, _max: i32) -> Vec<ContainerImage> {
        Vec::new()
    }
}

fn config() -> NodeConfig {
    let opts = kubelet_config::load_from_args(["kubelet", "--hostname-override=n1"]).unwrap();
    NodeConfig::from_options(&opts, "n1", "198.18.255.1".parse().unwrap())
}

/// A registering node controller for node `n1` (10 s updates, 5 min reports), and the
/// receiver that sees the registered Node.
fn node_controller(
    api: &Arc<FakeApi>,
    facts: Arc<dyn NodeFacts>,
) -> (NodeController, watch::Receiver<Option<k8s_openapi::api::core::v1::Node>>) {
    let (tx, registered) = watch::channel(None);
    let ctl = NodeController {
        api: api.clone(),
        facts,
        config: config(),
        update_frequency: Duration::from_secs(10),
        report_frequency: Duration::from_secs(300),
        register: true,
        registered: tx,
    };
    (ctl, registered)
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn registers_posts_on_change_and_reregisters_a_deleted_node() {
    let api = Arc::new(FakeApi::default());
    let facts = Arc::new(Facts { runtime_ready: true.into() });
    let (ctl, mut registered) = node_controller(&api, facts.clone());
    let stop = CancellationToken::new();
    let task = tokio::spawn(ctl.run(stop.clone()));
    registered.changed().await.unwrap();
    let node = api.node("n1").expect("registered");
    assert_eq!(condition_status(node.status.as_ref().unwrap().conditions.as_deref().unwrap(), "Ready"), Some("True"));

    // Nothing changed: no status patch for a few periods.
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(api.status_patches.load(Ordering::SeqCst), 0);

    // The runtime goes down: the next period posts NotReady.
    facts.runtime_ready.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    let node = api.node("n1").unwrap();
    assert_eq!(condition_status(node.status.as_ref().unwrap().conditions.as_deref().unwrap(), "Ready"), Some("False"));

    // An API outage is tolerated; a deleted node is registered again.
    api.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(30)).await;
    api.nodes.lock().unwrap().clear();
    api.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(21)).await;
    settle().await;
    let again = api.node("n1").expect("registered again");
    assert_ne!(again.metadata.uid, node.metadata.uid);
    assert_eq!(registered.borrow().as_ref().unwrap().metadata.uid, again.metadata.uid);
    stop.cancel();
    task.await.unwrap();
}

/// [`Facts`] plus device plugin resources.
struct DeviceFacts {
    base: Facts,
    devices: FakeDeviceResources,
}

#[async_trait]
impl NodeFacts for DeviceFacts {
    fn machine(&self) -> MachineInfo {
        self.base.machine()
    }
    async fn runtime(&self) -> RuntimeInfo {
        self.base.runtime().await
    }
    async fn images(&self, max: i32) -> Vec<ContainerImage> {
        self.base.images(max).await
    }
    fn devices(&self) -> DeviceCapacity {
        self.devices.device_capacity()
    }
}

#[tokio::test(start_paused = true)]
async fn device_plugin_resources_reach_the_node_status_within_an_update_period() {
    let api = Arc::new(FakeApi::default());
    let devices = FakeDeviceResources::default();
    devices.set("test.device/a", 2, 2);
    let facts = Arc::new(DeviceFacts { base: Facts { runtime_ready: true.into() }, devices: devices.clone() });
    let (ctl, mut registered) = node_controller(&api, facts);
    let stop = CancellationToken::new();
    let task = tokio::spawn(ctl.run(stop.clone()));
    registered.changed().await.unwrap();
    let values = || {
        let status = api.node("n1").unwrap().status.unwrap();
        (status.allocatable.unwrap()["test.device/a"].0.clone(), status.capacity.unwrap()["test.device/a"].0.clone())
    };
    assert_eq!(values(), ("2".to_string(), "2".to_string()));
    devices.set("test.device/a", 2, 0);
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(values(), ("0".to_string(), "2".to_string()));
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn lease_is_created_renewed_and_recovers_from_conflicts_and_deletion() {
    let api = Arc::new(FakeApi::default());
    let ctl = LeaseController { leases: api.clone(), nodes: api.clone(), node_name: "n1".into(), duration_seconds: 40, clock: micro_now };
    let stop = CancellationToken::new();
    let task = tokio::spawn(ctl.run(stop.clone()));
    settle().await;
    let lease = api.lease("n1").expect("created");
    assert_eq!(lease.spec.as_ref().unwrap().lease_duration_seconds, Some(40));
    assert!(lease.metadata.owner_references.is_none(), "no node yet");

    // Without an owner the lease is renewed after 1 s, then 2 s, 4 s, ... (not every 10 s), so
    // the owner reference follows the node within seconds; then renewals go back to 10 s.
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;
    let ownerless_updates = api.lease_updates.load(Ordering::SeqCst);
    assert_eq!(ownerless_updates, 1, "renewed after a second while ownerless");
    kubelet_cluster::api::NodeApi::create_node(&*api, &kubelet_cluster::node_status::initial_node(&config())).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(api.lease_updates.load(Ordering::SeqCst), ownerless_updates, "the next try is 2 s after the first");
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(api.lease_updates.load(Ordering::SeqCst), ownerless_updates + 1);
    assert_eq!(api.lease("n1").unwrap().metadata.owner_references.unwrap()[0].kind, "Node");
    tokio::time::sleep(Duration::from_secs(9)).await;
    settle().await;
    assert_eq!(api.lease_updates.load(Ordering::SeqCst), ownerless_updates + 1, "owned: the next renewal is 10 s later");
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(api.lease_updates.load(Ordering::SeqCst), ownerless_updates + 2);

    // Someone else bumps the lease: the conflict is resolved by getting it again.
    api.leases.lock().unwrap().get_mut("n1").unwrap().metadata.resource_version = Some("999".into());
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(api.lease_updates.load(Ordering::SeqCst), ownerless_updates + 3);

    // Deleted (e.g. garbage-collected with an old node): created again.
    api.leases.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    assert!(api.lease("n1").is_some());
    stop.cancel();
    task.await.unwrap();
}
