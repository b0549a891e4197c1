//! End-to-end, cluster mode: the cgroup driver comes from the runtime (CRI `RuntimeConfig`,
//! upstream's KubeletCgroupDriverFromCRI, GA 1.34). Our containerd uses cgroupfs; a kubelet
//! configured with `cgroupDriver: systemd` (kubeadm's default) warns that the setting is
//! ignored and puts its pods in cgroupfs-style cgroups the runtime can create — with the
//! configured driver, runc would be handed systemd slice names and the pod would not start.

mod cluster_support;

use std::time::Duration;

use cluster_support::*;
use e2e::TestNode;

const CGROUP_ROOT: &str = "knode-e2e-driver";

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn the_runtime_s_cgroup_driver_wins_over_the_configured_one() {
    control_plane_ready().await;
    remove_test_cgroups(CGROUP_ROOT);
    let node = TestNode::new();
    secure_config(&node);
    let config = std::fs::read_to_string(node.config_path()).unwrap();
    std::fs::write(
        node.config_path(),
        config.replace("cgroupsPerQOS: false\n", &format!("cgroupsPerQOS: true\ncgroupRoot: /{CGROUP_ROOT}\ncgroupDriver: systemd\n")),
    )
    .unwrap();
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    assert!(
        kubelet
            .log_text()
            .contains("cgroupDriver \"systemd\" in the configuration is ignored: the container runtime uses Cgroupfs (CRI RuntimeConfig)"),
        "{}",
        kubelet.log_text()
    );

    apply(&node, "driver", &busy_pod_yaml("e2e-driver", "sleep 100000", ""));
    let pod = pod_running("e2e-driver", Duration::from_secs(60)).await;
    let uid = pod.metadata.uid.unwrap();
    // Guaranteed: directly under kubepods, cgroupfs naming.
    let pod_cgroup = std::path::PathBuf::from(format!("/sys/fs/cgroup/memory/{CGROUP_ROOT}/kubepods/pod{uid}"));
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 {
        assert!(pod_cgroup.is_dir(), "{} exists", pod_cgroup.display());
    }
    kubectl(&["delete", "pod", "e2e-driver", "--grace-period=1"]);
    teardown(kubelet).await;
    remove_test_cgroups(CGROUP_ROOT);
}
