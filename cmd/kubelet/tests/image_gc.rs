//! End-to-end: image garbage collection on real containerd 2. Image GC removes every unused
//! image of its runtime, so this test gets a containerd of its own (`hack/node-env.sh` with its
//! own socket, root, state, CNI network and bridge), imports two extra images built from the
//! busybox image (a different config each, so different image IDs) and runs a static pod on
//! busybox. Our kubelet then starts with `imageGCHighThresholdPercent: 1` (any disk in use is over
//! it, so nothing is filled; a threshold at the disk's measured use failed when other work freed
//! space in between), `imageGCLowThresholdPercent: 0`, the shortest
//! `imageMinimumGCAge` and an `imagefs.available` eviction threshold that is always met:
//! - GC's first round, at start, finds nothing old enough to remove and reports upstream's
//!   `FreeDiskSpaceFailed` (the next round would come after 5 minutes, as upstream's);
//! - eviction, every 10 s under DiskPressure, first reclaims at node level: the dead container
//!   of a finished pod goes (upstream's `DeleteAllUnusedContainers`), so its image is unused too;
//!   then the unused images go, the one in use and the pinned sandbox image stay, and the
//!   (static, so critical) running pod keeps running.
//!
//! Needs root; run through `hack/test.sh` (nextest group `containerd`, one test per process).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::{KubeletProcess, NodeEnv, OwnContainerd, TestNode, busybox_image, wait_for};
use kubelet_cri::ImageService;

const KUBELET: &str = env!("CARGO_BIN_EXE_kubelet");

/// The test's own containerd; nothing is shared with the suite's.
const GC_ENV: NodeEnv = &[
    ("KNODE_CONTAINERD_SOCK", "/run/knode/containerd-gc/containerd.sock"),
    ("KNODE_CONTAINERD_TTRPC_SOCK", "/run/knode/containerd-gc/containerd.sock.ttrpc"),
    ("KNODE_CONTAINERD_ROOT", "/var/lib/knode/containerd-gc"),
    ("KNODE_CONTAINERD_STATE", "/run/knode/containerd-gc"),
    ("KNODE_CONTAINERD_CONFIG", "/etc/knode/containerd-gc/config.toml"),
    ("KNODE_CONTAINERD_PIDFILE", "/run/knode/containerd-gc.pid"),
    ("KNODE_CONTAINERD_LOG", "/var/log/knode/containerd-gc.log"),
    ("KNODE_CNI_CONF_DIR", "/etc/knode/cni-gc/net.d"),
    ("KNODE_CNI_NETWORK", "knode-gc"),
    ("KNODE_BRIDGE", "knode2"),
    ("KNODE_POD_SUBNET", "198.18.4.0/24"),
    ("KNODE_POD_GATEWAY", "198.18.4.1"),
];

/// Imports `localhost/knode/gc-test:gc1` and `:gc2`: busybox's layers under a config with one
/// label more, so each is an image of its own.
const EXTRA_IMAGES: &str = r#"
set -euo pipefail
source "$KNODE_REPO_ROOT/hack/lib/env.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/oci"
tar -xf "$KNODE_IMAGE_CACHE/busybox.tar" -C "$work/oci"
jq '.manifests[0].annotations["org.opencontainers.image.ref.name"] = "base"' "$work/oci/index.json" >"$work/index.json"
mv "$work/index.json" "$work/oci/index.json"
for n in 1 2; do
    umoci config --image "$work/oci:base" --tag "gc$n" --config.label "knode.test/gc=$n"
done
jq '.manifests |= map(select(.annotations["org.opencontainers.image.ref.name"] | startswith("gc"))
    | .annotations["org.opencontainers.image.ref.name"] = "localhost/knode/gc-test:" + .annotations["org.opencontainers.image.ref.name"])' \
    "$work/oci/index.json" >"$work/index.json"
mv "$work/index.json" "$work/oci/index.json"
tar -C "$work/oci" -cf "$work/gc.tar" oci-layout index.json blobs
ctr -a "$KNODE_CONTAINERD_SOCK" -n k8s.io images import "$work/gc.tar" >/dev/null
"#;

/// The image filesystem's use as upstream's image GC computes it (percent, truncated).
fn usage_percent(path: &str) -> i64 {
    let out = Command::new("stat").args(["-f", "-c", "%b %a", path]).output().expect("stat -f");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|n| n.parse::<i64>().expect("block count"));
    let (blocks, available) = (it.next().unwrap(), it.next().unwrap());
    100 - available * 100 / blocks
}

#[tokio::test]
#[ignore = "needs root: run hack/test.sh"]
async fn unused_images_are_removed_over_the_high_threshold() {
    let containerd = OwnContainerd::start(GC_ENV);
    let status = Command::new("bash")
        .args(["-c", EXTRA_IMAGES])
        .env("KNODE_REPO_ROOT", e2e::repo_root())
        .envs(containerd.env().iter().copied())
        .status()
        .expect("run bash");
    assert!(status.success(), "building and importing the extra images failed");
    let cri = e2e::cri();
    let id_of = |image: String| {
        let cri = &cri;
        async move { cri.image_status(&kubelet_cri::api::ImageSpec { image, ..Default::default() }).await.expect("ImageStatus").map(|i| i.id) }
    };
    let gc1 = id_of("localhost/knode/gc-test:gc1".into()).await.expect("gc1 imported");
    let gc2 = id_of("localhost/knode/gc-test:gc2".into()).await.expect("gc2 imported");
    let busybox = id_of(busybox_image()).await.expect("busybox imported");
    let pause = id_of("localhost/knode/pause:3.9".into()).await.expect("pause imported");
    assert!(gc1 != gc2 && gc1 != busybox, "the extra images have IDs of their own");

    let node = TestNode::new();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: image-user\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"sleep 3600\"]\n",
        busybox_image()
    );
    node.write_manifest("image-user.yaml", &pod);
    // A finished pod whose dead container holds gc1 in use.
    let finished = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: finished\nspec:\n  restartPolicy: Never\n  containers:\n  - name: once\n    image: localhost/knode/gc-test:gc1\n    imagePullPolicy: Never\n    command: [\"true\"]\n";
    node.write_manifest("finished.yaml", finished);
    // First without GC, so the pods' containers exist when GC first looks.
    let kubelet = KubeletProcess::start(Path::new(KUBELET), &node, &[]).await;
    node.wait_phase("image-user", "Running", Duration::from_secs(90)).await;
    node.wait_phase("finished", "Succeeded", Duration::from_secs(90)).await;
    kubelet.stop().await;
    let finished_containers = || {
        let cri = &cri;
        async move {
            let filter = kubelet_cri::api::ContainerFilter {
                label_selector: [("io.kubernetes.container.name".to_string(), "once".to_string())].into(),
                ..Default::default()
            };
            kubelet_cri::RuntimeService::list_containers(cri, Some(filter)).await.expect("ListContainers").len()
        }
    };
    assert_eq!(finished_containers().await, 1, "the finished pod's dead container is kept (for its logs)");

    assert!(usage_percent(containerd.var("KNODE_CONTAINERD_ROOT")) >= 1, "the image filesystem is in use");
    let config = std::fs::read_to_string(node.config_path())
        .unwrap()
        .replace(
            "imageGCHighThresholdPercent: 100\nimageGCLowThresholdPercent: 99\n",
            "imageGCHighThresholdPercent: 1\nimageGCLowThresholdPercent: 0\nimageMinimumGCAge: 1s\n",
        )
        .replace("imagefs.available: \"0%\"", "imagefs.available: \"99%\"");
    std::fs::write(node.config_path(), config).unwrap();
    let kubelet = KubeletProcess::start(Path::new(KUBELET), &node, &["--v=4"]).await;
    wait_for("FreeDiskSpaceFailed logged", Duration::from_secs(30), || async {
        kubelet.log_text().contains("FreeDiskSpaceFailed").then_some(())
    })
    .await;
    wait_for("the unused images removed", Duration::from_secs(60), || async {
        (id_of(gc1.clone()).await.is_none() && id_of(gc2.clone()).await.is_none()).then_some(())
    })
    .await;
    assert_eq!(finished_containers().await, 0, "the finished pod's dead container was removed first");
    assert!(id_of(busybox.clone()).await.is_some(), "the image in use stays");
    assert!(id_of(pause.clone()).await.is_some(), "the pinned sandbox image stays");
    let running = node.pod("image-user").await.expect("pod still reported");
    assert_eq!(running.status.and_then(|s| s.phase).as_deref(), Some("Running"));
    let log = kubelet.log_text();
    assert!(log.contains("reclaimed disk at node level"), "eviction reclaimed before evicting:\n{log}");
    assert!(
        log.contains(&format!("image={gc1}")) && log.contains(&format!("image={gc2}")),
        "each removal is logged with the image ID:\n{log}"
    );
    kubelet.stop().await;
    node.remove_manifest("image-user.yaml");
    node.remove_manifest("finished.yaml");
    e2e::remove_all_pods().await;
}
