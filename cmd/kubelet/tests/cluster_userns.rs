//! End-to-end, cluster mode, user namespaces (`hostUsers: false`): on the runtime handler that
//! supports them (`runc-userns`, a current runc with ID-mapped mounts, selected by a
//! RuntimeClass) a pod runs in its own user namespace: root inside is 65536 host IDs away from
//! the node's, another such pod gets another range, and the range is recorded in the pod's
//! directory. On the default handler (Debian's runc 1.1: no ID-mapped mounts, so containerd
//! reports no support) the same pod is refused with upstream's message, and never runs in the
//! node's user namespace. A pod without `hostUsers` shares the node's. Real control plane, real
//! containerd 2 with two runc versions, real `kubectl`.

mod cluster_support;

use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, wait_for};
use k8s_openapi::api::core::v1::Pod;

fn pod_yaml(name: &str, runtime_class: Option<&str>, host_users: Option<bool>) -> String {
    let rc = runtime_class.map(|r| format!("  runtimeClassName: {r}\n")).unwrap_or_default();
    let hu = host_users.map(|h| format!("  hostUsers: {h}\n")).unwrap_or_default();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
{rc}{hu}  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "echo uid_map=$(cat /proc/self/uid_map) gid_map=$(cat /proc/self/gid_map) id=$(id -u) wrote=$(touch /data/f && echo yes) end; sleep 3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, emptyDir: {{}}}}]
"#,
        image = busybox_image()
    )
}

/// The first host ID of pod `name`'s UID mapping, read from its log (`0 <host> <length>`).
async fn mapping(node: &TestNode, pod: &Pod) -> (u64, u64) {
    let (name, log) = (pod.metadata.name.clone().unwrap(), main_log(node, pod));
    let line = wait_for(&format!("{name} printed its mappings"), Duration::from_secs(30), || async {
        std::fs::read_to_string(&log).ok()?.lines().find(|l| l.contains(" end")).map(String::from)
    })
    .await;
    assert!(line.contains("id=0 wrote=yes"), "root inside, writing its emptyDir: {line}");
    let field = |key: &str| -> Vec<u64> {
        let rest = line.split(key).nth(1).unwrap();
        rest.split_whitespace().take(3).map(|n| n.parse().unwrap()).collect()
    };
    let (u, g) = (field("uid_map="), field("gid_map="));
    assert_eq!(u, g, "UIDs and GIDs mapped alike: {line}");
    assert_eq!(u[0], 0, "{line}");
    (u[1], u[2])
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn host_users_false_gets_a_user_namespace_where_the_runtime_supports_it() {
    control_plane_ready().await;
    let pods = ["e2e-userns-a", "e2e-userns-b", "e2e-userns-default", "e2e-userns-host"];
    for p in pods {
        kubectl(&["delete", "pod", p, "--ignore-not-found", "--wait=false"]);
    }
    let node = TestNode::new();
    let kubelet = start_cluster_kubelet(&node).await;
    let node_obj = wait_node_ready(Duration::from_secs(60)).await;
    let handlers = node_obj.status.and_then(|s| s.runtime_handlers).unwrap_or_default();
    let userns = |name: &str| handlers.iter().find(|h| h.name.as_deref() == Some(name)).and_then(|h| h.features.as_ref()?.user_namespaces);
    assert_eq!(
        (userns(""), userns("runc-userns")),
        (Some(false), Some(true)),
        "the node reports which handlers support user namespaces: {handlers:?}"
    );

    apply(&node, "rc", "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: e2e-userns}\nhandler: runc-userns\n");
    apply(&node, "a", &pod_yaml("e2e-userns-a", Some("e2e-userns"), Some(false)));
    apply(&node, "b", &pod_yaml("e2e-userns-b", Some("e2e-userns"), Some(false)));
    apply(&node, "default", &pod_yaml("e2e-userns-default", None, Some(false)));
    apply(&node, "host", &pod_yaml("e2e-userns-host", Some("e2e-userns"), None));

    let a = pod_running("e2e-userns-a", Duration::from_secs(120)).await;
    let b = pod_running("e2e-userns-b", Duration::from_secs(60)).await;
    let (host_a, len_a) = mapping(&node, &a).await;
    let (host_b, len_b) = mapping(&node, &b).await;
    assert_eq!((len_a, len_b), (65536, 65536));
    assert!(host_a >= 65536 && host_a % 65536 == 0 && host_b >= 65536 && host_b % 65536 == 0, "{host_a} {host_b}");
    assert_ne!(host_a, host_b, "each pod its own range");
    // Recorded in the pod's directory, upstream's format.
    let recorded = std::fs::read_to_string(node.root().join(format!("pods/{}/userns", a.metadata.uid.clone().unwrap()))).unwrap();
    assert!(recorded.contains(&format!("\"hostId\":{host_a},\"containerId\":0,\"length\":65536")), "{recorded}");

    // No hostUsers: the node's user namespace.
    let host = pod_running("e2e-userns-host", Duration::from_secs(60)).await;
    assert_eq!(mapping(&node, &host).await, (0, 4_294_967_295));

    // The default handler cannot: refused, named, and nothing runs.
    let want = "Failed to create pod sandbox: can't set `spec.hostUsers: false`, runtime does not support user namespaces";
    wait_event("e2e-userns-default", "FailedCreatePodSandBox", want, Duration::from_secs(60)).await;
    let refused: Pod = kubectl_json(&["get", "pod", "e2e-userns-default"]).unwrap();
    assert_eq!(refused.status.and_then(|s| s.phase).as_deref(), Some("Pending"));

    kubectl(&["delete", "pod", "e2e-userns-a", "e2e-userns-b", "e2e-userns-default", "e2e-userns-host", "--wait=false"]);
    kubectl(&["delete", "runtimeclass", "e2e-userns", "--ignore-not-found"]);
    teardown(kubelet).await;
}
