//! End-to-end, cluster mode: pod spec fields the node acts on, through the real API server and
//! containerd: `runtimeClassName` picks the sandbox's CRI handler (and a missing RuntimeClass
//! fails the sandbox with upstream's event); `setHostnameAsFQDN` makes the FQDN the hostname; a
//! deleted pod held by a finalizer shows how it ended (phase `Failed`).

mod cluster_support;

use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, sandboxes_of, wait_for};
use k8s_openapi::api::core::v1::Pod;

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn runtime_class_fqdn_hostname_and_final_status() {
    control_plane_ready().await;
    let node = TestNode::new();
    secure_config(&node);
    let config = std::fs::read_to_string(node.config_path()).unwrap();
    std::fs::write(node.config_path(), format!("{config}clusterDomain: cluster.local\n")).unwrap();
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    let image = busybox_image();
    // The node environment's containerd has a `test-handler` runtime (runc under another name),
    // as node e2e expects.
    let yaml = format!(
        r#"apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {{name: knode-e2e}}
handler: test-handler
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-classy}}
spec:
  automountServiceAccountToken: false
  runtimeClassName: knode-e2e
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: {image}, imagePullPolicy: Never, command: ["sleep", "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-fqdn}}
spec:
  automountServiceAccountToken: false
  hostname: web-0
  subdomain: db
  setHostnameAsFQDN: true
  restartPolicy: Never
  containers:
  - {{name: main, image: {image}, imagePullPolicy: Never, command: ["hostname"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-held, finalizers: [knode.test/hold]}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: {image}, imagePullPolicy: Never, command: ["sleep", "3600"]}}
"#
    );
    apply(&node, "spec", &yaml);

    wait_for("e2e-classy Running", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-classy"])?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let sandboxes = sandboxes_of("e2e-classy").await;
    assert_eq!(sandboxes[0].runtime_handler, "test-handler");

    wait_for("e2e-fqdn Succeeded", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-fqdn"])?;
        (p.status?.phase.as_deref() == Some("Succeeded")).then_some(())
    })
    .await;
    let (ok, log, err) = kubectl(&["logs", "e2e-fqdn"]);
    assert!(ok, "{err}");
    assert_eq!(log.trim(), "web-0.db.default.svc.cluster.local");

    // Deleted while a finalizer holds it: stopped here, and the API shows it Failed (its
    // container was killed), its container terminated.
    wait_for("e2e-held Running", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-held"])?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    kubectl(&["delete", "pod", "e2e-held", "--wait=false"]);
    let held: Pod = wait_for("e2e-held Failed", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-held"])?;
        (p.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(p)
    })
    .await;
    let main = &held.status.unwrap().container_statuses.unwrap()[0];
    assert!(main.state.as_ref().unwrap().terminated.is_some(), "{main:?}");
    let (ok, _, err) = kubectl(&["patch", "pod", "e2e-held", "--type=json", "-p", r#"[{"op":"remove","path":"/metadata/finalizers"}]"#]);
    assert!(ok, "{err}");

    // The RuntimeClass is removed: a new pod naming it cannot get a sandbox. (The API server's
    // admission refuses unknown RuntimeClasses, so it is deleted after the pod was accepted.)
    kubectl(&["delete", "pod", "e2e-classy", "--wait=false"]);
    let (ok, _, err) = kubectl(&["delete", "runtimeclass", "knode-e2e"]);
    assert!(ok, "{err}");
    teardown(kubelet).await;
}
