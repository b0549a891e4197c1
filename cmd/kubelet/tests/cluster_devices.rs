//! End-to-end, cluster mode: a device plugin (the test's fake, like upstream's node e2e
//! `testdeviceplugin`) registers on the kubelet's fixed socket
//! `/var/lib/kubelet/device-plugins/kubelet.sock`; the node reports its devices as capacity and
//! the healthy ones as allocatable; a pod asking for a device is scheduled and runs with the
//! environment variable the plugin's `Allocate` answered; a pod bound to the node asking for more
//! devices than are free is rejected (`UnexpectedAdmissionError`); when the plugin stops, its
//! devices leave allocatable but stay in capacity (for upstream's 5-minute grace period).

mod cluster_support;

use std::path::Path;
use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, wait_for};
use k8s_openapi::api::core::v1::{Node, Pod};
use kubelet_deviceplugin::v1beta1::{DEVICE_PLUGIN_PATH, HEALTHY, KUBELET_SOCKET, UNHEALTHY};
use test_support::FakeDevicePlugin;
use test_support::device_plugin::{DEVICES_ENV, device, register};

const RESOURCE: &str = "test.device/knode-e2e";
const ENDPOINT: &str = "knode-e2e-device-plugin.sock";

/// (allocatable, capacity) of the test resource in the node's status; -1 when absent.
fn node_values() -> Option<(i64, i64)> {
    let node: Node = kubectl_json(&["get", "node", NODE])?;
    let status = node.status?;
    let value = |list: Option<&std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
        list.and_then(|l| l.get(RESOURCE)).map_or(-1, |q| q.0.parse().unwrap_or(-2))
    };
    Some((value(status.allocatable.as_ref()), value(status.capacity.as_ref())))
}

async fn wait_values(want: (i64, i64)) {
    wait_for(&format!("node {RESOURCE} (allocatable, capacity) = {want:?}"), Duration::from_secs(60), || async {
        (node_values()? == want).then_some(())
    })
    .await;
}

async fn wait_phase(name: &str, phase: &str) -> Pod {
    wait_for(&format!("{name} {phase}"), Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", name])?;
        (p.status.as_ref()?.phase.as_deref() == Some(phase)).then_some(p)
    })
    .await
}

// Two workers: the fake plugin answers the kubelet while the test blocks on kubectl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn device_plugin_resources_reach_the_node_and_its_pods() {
    control_plane_ready().await;
    let node = TestNode::new();
    secure_config(&node);
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    // Absent, or at 0 when an earlier run left it in the device plugin checkpoint.
    let before = node_values();
    assert!(matches!(before, Some((-1, -1) | (0, 0))), "no plugin registered the resource yet: {before:?}");

    let socket = Path::new(KUBELET_SOCKET);
    wait_for("the registration socket", Duration::from_secs(30), || async { socket.exists().then_some(()) }).await;
    let plugin = FakeDevicePlugin::new(vec![device("dev-0", HEALTHY), device("dev-1", HEALTHY)]);
    let plugin_socket = Path::new(DEVICE_PLUGIN_PATH).join(ENDPOINT);
    let _ = std::fs::remove_file(&plugin_socket);
    plugin.serve(&plugin_socket).expect("serve the fake device plugin");
    register(socket, ENDPOINT, RESOURCE).await.expect("register with the kubelet");
    wait_values((2, 2)).await;

    // One device turns unhealthy: allocatable drops, capacity stays.
    plugin.update_devices(vec![device("dev-0", HEALTHY), device("dev-1", UNHEALTHY)]);
    wait_values((1, 2)).await;

    // The scheduler places a pod asking for the device; it sees what Allocate answered.
    let image = busybox_image();
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: e2e-device}}
spec:
  automountServiceAccountToken: false
  restartPolicy: Never
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "echo devices=${DEVICES_ENV}"]
    resources:
      limits: {{{RESOURCE}: 1}}
"#
    );
    apply(&node, "device", &yaml);
    wait_phase("e2e-device", "Succeeded").await;
    let (ok, log, err) = kubectl(&["logs", "e2e-device"]);
    assert!(ok, "{err}");
    assert_eq!(log.trim(), "devices=dev-0");
    assert!(plugin.calls().contains(&"Allocate".to_string()), "{:?}", plugin.calls());
    let (ok, _, err) = kubectl(&["delete", "pod", "e2e-device", "--wait=true"]);
    assert!(ok, "{err}");

    // Bound to the node past the scheduler, a pod asking for more than is healthy is refused.
    let greedy = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: e2e-device-greedy}}
spec:
  automountServiceAccountToken: false
  nodeName: {NODE}
  restartPolicy: Never
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["true"]
    resources:
      limits: {{{RESOURCE}: 2}}
"#
    );
    apply(&node, "greedy", &greedy);
    let refused = wait_phase("e2e-device-greedy", "Failed").await.status.unwrap();
    assert_eq!(refused.reason.as_deref(), Some("UnexpectedAdmissionError"));
    assert_eq!(
        refused.message.as_deref(),
        Some(
            "Pod was rejected: Allocate failed due to requested number of devices unavailable for test.device/knode-e2e. Requested: 2, Available: 1, which is unexpected"
        )
    );
    kubectl(&["delete", "pod", "e2e-device-greedy", "--wait=false"]);

    // The plugin goes away: every device is unhealthy, capacity stays for the grace period.
    plugin.stop();
    wait_values((0, 2)).await;
    let _ = std::fs::remove_file(&plugin_socket);
    teardown(kubelet).await;
}
