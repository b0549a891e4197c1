//! End-to-end, cluster mode: container log rotation under a fast writer. The kubelet runs with
//! `containerLogMaxSize: 8Ki`, `containerLogMaxFiles: 3` and the shortest monitor interval (3 s);
//! a container writes numbered lines about every 5 ms. While `kubectl logs -f` follows it for
//! 15 s the log is rotated several times: the follower must see every line from its first on,
//! none missing and none twice, and the container's log directory must hold the current file,
//! the newest rotated file and older ones gzip-compressed, never more than three in all.
//! Real control plane, containerd and kubectl.

mod cluster_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, wait_for};

const POD: &str = "e2e-log-rotation";

fn pod_yaml() -> String {
    let image = busybox_image();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {POD}, namespace: default}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: writer
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "i=0; while [ $i -lt 200000 ]; do echo \"line $i ................................\"; i=$((i+1)); sleep 0.005; done; sleep 3600"]
"#
    )
}

/// The numbers of `line N ...` lines, in order.
fn numbers(text: &str) -> Vec<u64> {
    text.lines().filter_map(|l| l.strip_prefix("line ")?.split(' ').next()?.parse().ok()).collect()
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn kubectl_logs_follows_across_rotations() {
    control_plane_ready().await;
    let node = TestNode::new();
    secure_config(&node);
    let mut config = std::fs::read_to_string(node.config_path()).unwrap();
    config.push_str("containerLogMaxSize: 8Ki\ncontainerLogMaxFiles: 3\ncontainerLogMonitorInterval: 3s\n");
    std::fs::write(node.config_path(), config).unwrap();
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    kubectl(&["delete", "pod", POD, "--ignore-not-found", "--grace-period=0", "--force"]);
    apply(&node, "pod", &pod_yaml());
    let pod = pod_running(POD, Duration::from_secs(90)).await;
    let uid = pod.metadata.uid.unwrap();
    let dir = node.logs().join(format!("default_{POD}_{uid}")).join("writer");

    let follow = Command::new(kubectl_bin())
        .env("KUBECONFIG", format!("{CP_DIR}/admin.kubeconfig"))
        .args(["logs", "-f", POD, "-c", "writer"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (ok, tail, err) = kubectl(&["logs", POD, "-c", "writer", "--tail=3"]);
    assert!(ok, "kubectl logs --tail: {err}");
    let tail = numbers(&tail);
    assert!(tail.len() == 3 && tail[1] == tail[0] + 1 && tail[2] == tail[1] + 1, "--tail=3 gives the last three lines: {tail:?}");
    let _ = Command::new("kill").arg(follow.id().to_string()).status();
    let out = follow.wait_with_output().unwrap();
    let seen = numbers(&String::from_utf8_lossy(&out.stdout));
    assert!(seen.len() > 1000, "kubectl logs -f saw {} lines in 15 s; stderr: {}", seen.len(), String::from_utf8_lossy(&out.stderr));
    let gaps: Vec<(u64, u64)> = seen.windows(2).filter(|w| w[1] != w[0] + 1).map(|w| (w[0], w[1])).take(5).collect();
    assert!(gaps.is_empty(), "lines missing or repeated across rotations (first gaps {gaps:?}) in {} lines", seen.len());

    let rotations = kubelet.log_text().matches("rotated container log").count();
    assert!(rotations >= 2, "expected several rotations in 15 s, the kubelet logged {rotations}");
    let mut files: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert!(files.len() <= 3 && files.contains(&"0.log".to_string()), "at most containerLogMaxFiles files: {files:?}");
    assert!(files.iter().any(|f| f.ends_with(".gz")), "older rotated files are compressed: {files:?}");
    assert!(files.iter().any(|f| f.starts_with("0.log.2") && !f.ends_with(".gz")), "the newest rotated file is not: {files:?}");

    kubectl(&["delete", "pod", POD, "--grace-period=1"]);
    wait_for("rotated logs removed with the container", Duration::from_secs(60), || async {
        (!dir.exists() || std::fs::read_dir(&dir).map(|d| d.count() == 0).unwrap_or(true)).then_some(())
    })
    .await;
    teardown(kubelet).await;
}
