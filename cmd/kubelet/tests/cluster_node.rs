//! End-to-end, cluster mode: our kubelet registers `knode-node` with a real Kubernetes 1.37 control
//! plane (`hack/control-plane.sh`), reports it Ready with upstream's node info, holds its lease,
//! and registers it again when it is deleted. Checked with the real `kubectl`.

mod cluster_support;

use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn node_registers_ready_with_node_info_and_lease() {
    control_plane_ready().await;
    let node = TestNode::new();
    let kubelet = start_cluster_kubelet(&node).await;
    let n = wait_node_ready(Duration::from_secs(60)).await;

    let labels = n.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("kubernetes.io/hostname").map(String::as_str), Some(NODE));
    assert_eq!(labels.get("kubernetes.io/os").map(String::as_str), Some("linux"));
    assert_eq!(labels.get("knode.test/e2e").map(String::as_str), Some("true"));
    let status = n.status.clone().unwrap();
    let info = status.node_info.clone().unwrap();
    assert_eq!(info.kubelet_version, kubelet_config_version());
    assert!(info.container_runtime_version.starts_with("containerd://"), "{}", info.container_runtime_version);
    assert_eq!(info.operating_system, "linux");
    // containerd 2.x lists its runtime handlers (the default one named "") with their features;
    // the node publishes them, and the runtime's own features.
    let handlers = status.runtime_handlers.clone().unwrap_or_default();
    let default = handlers.iter().find(|h| h.name.as_deref() == Some("")).unwrap_or_else(|| panic!("no default handler in {handlers:?}"));
    assert!(
        default.features.as_ref().is_some_and(|f| f.recursive_read_only_mounts.is_some() && f.user_namespaces.is_some()),
        "{default:?}"
    );
    assert!(handlers.iter().any(|h| h.name.as_deref() == Some("test-handler")), "{handlers:?}");
    assert!(!info.kernel_version.is_empty() && !info.os_image.is_empty() && !info.boot_id.is_empty());
    let addrs: Vec<(String, String)> = status.addresses.clone().unwrap().into_iter().map(|a| (a.type_, a.address)).collect();
    assert!(addrs.contains(&("InternalIP".into(), NODE_IP.into())), "{addrs:?}");
    let cap = status.capacity.clone().unwrap();
    assert_eq!(cap["pods"].0, "110");
    for r in ["cpu", "memory", "ephemeral-storage"] {
        assert!(cap.contains_key(r) && status.allocatable.as_ref().unwrap().contains_key(r), "{r} missing");
    }
    let types: Vec<String> = status.conditions.clone().unwrap().into_iter().map(|c| c.type_).collect();
    for t in ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"] {
        assert!(types.contains(&t.to_string()), "condition {t} missing in {types:?}");
    }
    assert_eq!(status.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port, 10250);

    // The lease: held by the node, owned by it, renewed.
    // The owner reference is added on the first renewal after the node exists.
    let lease: Lease = wait_for("node lease owned by the node", Duration::from_secs(30), || async {
        let l: Lease = kubectl_json(&["-n", "kube-node-lease", "get", "lease", NODE])?;
        let owned =
            l.metadata.owner_references.as_ref().is_some_and(|o| o.iter().any(|o| o.uid == n.metadata.uid.clone().unwrap_or_default()));
        owned.then_some(l)
    })
    .await;
    let spec = lease.spec.clone().unwrap();
    assert_eq!((spec.holder_identity.as_deref(), spec.lease_duration_seconds), (Some(NODE), Some(40)));
    let owner = &lease.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Node", NODE));
    let first = spec.renew_time.unwrap();
    wait_for("lease renewal", Duration::from_secs(30), || async {
        let l: Lease = kubectl_json(&["-n", "kube-node-lease", "get", "lease", NODE])?;
        (l.spec?.renew_time? != first).then_some(())
    })
    .await;

    // Deleted nodes come back.
    let old_uid = n.metadata.uid.clone().unwrap();
    let (ok, _, err) = kubectl(&["delete", "node", NODE]);
    assert!(ok, "{err}");
    wait_for("node re-registered", Duration::from_secs(60), || async {
        let n: Node = kubectl_json(&["get", "node", NODE])?;
        (n.metadata.uid? != old_uid).then_some(())
    })
    .await;
    teardown(kubelet).await;
}

fn kubelet_config_version() -> String {
    // Must match kubelet_config::flags::KUBERNETES_VERSION, which `kubelet --version` prints.
    let out = std::process::Command::new(KUBELET).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace().find(|w| w.starts_with("v1.")).unwrap_or_default().to_string()
}
