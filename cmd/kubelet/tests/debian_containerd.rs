//! End-to-end on Debian bookworm's containerd 1.6: the suite runs on containerd 2 (built from its
//! Go module, as upstream 1.36+ needs), but users of the older runtime must keep working. This test
//! starts a second, fully separate containerd from Debian's package (`hack/node-env.sh` with
//! `KNODE_CONTAINERD_FLAVOUR=debian`: own socket, root, state, CNI network and bridge), runs a
//! static pod on it with our kubelet, and purges that containerd again.
//!
//! Needs root; run through `hack/test.sh` (nextest group `containerd`, one test per process).

use std::path::Path;
use std::time::Duration;

use e2e::{KubeletProcess, NodeEnv, OwnContainerd, TestNode, busybox_image, wait_for};
use kubelet_cri::RuntimeService;

const KUBELET: &str = env!("CARGO_BIN_EXE_kubelet");

/// Where the second containerd lives; nothing is shared with the suite's containerd.
const DEBIAN_ENV: NodeEnv = &[
    ("KNODE_CONTAINERD_FLAVOUR", "debian"),
    ("KNODE_CONTAINERD_SOCK", "/run/knode/containerd-debian/containerd.sock"),
    ("KNODE_CONTAINERD_TTRPC_SOCK", "/run/knode/containerd-debian/containerd.sock.ttrpc"),
    ("KNODE_CONTAINERD_ROOT", "/var/lib/knode/containerd-debian"),
    ("KNODE_CONTAINERD_STATE", "/run/knode/containerd-debian"),
    ("KNODE_CONTAINERD_CONFIG", "/etc/knode/containerd-debian/config.toml"),
    ("KNODE_CONTAINERD_PIDFILE", "/run/knode/containerd-debian.pid"),
    ("KNODE_CONTAINERD_LOG", "/var/log/knode/containerd-debian.log"),
    ("KNODE_CNI_CONF_DIR", "/etc/knode/cni-debian/net.d"),
    ("KNODE_CNI_NETWORK", "knode-debian"),
    ("KNODE_BRIDGE", "knode1"),
    ("KNODE_POD_SUBNET", "198.18.3.0/24"),
    ("KNODE_POD_GATEWAY", "198.18.3.1"),
];

#[tokio::test]
#[ignore = "needs root: run hack/test.sh"]
async fn static_pod_runs_on_debian_containerd_1_6() {
    let _containerd = OwnContainerd::start(DEBIAN_ENV);

    let version = e2e::cri().version().await.expect("CRI version of the Debian containerd");
    assert!(version.runtime_version.starts_with("1.6."), "expected Debian's containerd 1.6, got {version:?}");

    let node = TestNode::new();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: old-runtime\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: {}\n    command: [\"sh\", \"-c\", \"echo ready; sleep 3600\"]\n",
        busybox_image()
    );
    node.write_manifest("old-runtime.yaml", &pod);
    let kubelet = KubeletProcess::start(Path::new(KUBELET), &node, &[]).await;
    let running = node.wait_phase("old-runtime", "Running", Duration::from_secs(90)).await;
    let status = running.status.unwrap();
    let ip = status.pod_ip.unwrap_or_default();
    assert!(ip.starts_with("198.18.3."), "pod IP {ip:?} should come from the Debian instance's CNI range");
    let cs = &status.container_statuses.unwrap()[0];
    assert!(cs.ready, "container not ready: {cs:?}");

    // Removing the manifest stops the pod on the old runtime as on the new one.
    node.remove_manifest("old-runtime.yaml");
    wait_for("pod removed", Duration::from_secs(60), || async {
        e2e::sandboxes_of("old-runtime-e2e-node").await.iter().all(|s| s.state != 0).then_some(())
    })
    .await;
    kubelet.stop().await;
    e2e::remove_all_pods().await;
}
