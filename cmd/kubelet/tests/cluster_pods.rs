//! End-to-end, cluster mode: pods from the API server run on our kubelet and report their status
//! back; a static pod gets a mirror pod; a deleted pod is stopped and removed. Real control plane
//! (`hack/control-plane.sh`), real containerd, real `kubectl`.

mod cluster_support;

use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, sandboxes_of, wait_for};
use k8s_openapi::api::core::v1::Pod;

fn api_pod_yaml(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  automountServiceAccountToken: false\n  terminationGracePeriodSeconds: 60\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"echo svc=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT cm=$GREETING; sleep 3600\"]\n    env:\n    - name: GREETING\n      valueFrom:\n        configMapKeyRef: {{name: e2e-config, key: greeting}}\n",
        busybox_image()
    )
}

fn static_pod_yaml(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: {}\n    command: [\"sh\", \"-c\", \"sleep 3600\"]\n",
        busybox_image()
    )
}

fn phase(p: &Pod) -> Option<&str> {
    p.status.as_ref().and_then(|s| s.phase.as_deref())
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn api_pod_runs_and_static_pod_gets_a_mirror() {
    control_plane_ready().await;
    let node = TestNode::new();
    node.write_manifest("web.yaml", &static_pod_yaml("web"));
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;

    // A pod created with kubectl is scheduled here, runs, and shows Running with a pod IP.
    kubectl(&["delete", "configmap", "e2e-config", "--ignore-not-found"]);
    let (ok, _, err) = kubectl(&["create", "configmap", "e2e-config", "--from-literal=greeting=hello"]);
    assert!(ok, "create configmap: {err}");
    let file = node.dir.path().join("api-pod.yaml");
    std::fs::write(&file, api_pod_yaml("e2e-api-pod")).unwrap();
    let (ok, _, err) = kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(ok, "kubectl apply: {err}");
    let pod: Pod = wait_for("API pod Running", Duration::from_secs(90), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-api-pod"])?;
        (phase(&p) == Some("Running")).then_some(p)
    })
    .await;
    let status = pod.status.clone().unwrap();
    assert_eq!(pod.spec.as_ref().unwrap().node_name.as_deref(), Some(NODE));
    assert!(status.pod_ip.as_deref().unwrap_or_default().starts_with("198.18."), "podIP {:?}", status.pod_ip);
    assert_eq!(status.host_ip.as_deref(), Some(NODE_IP));
    assert!(status.container_statuses.unwrap()[0].ready);
    assert_eq!(sandboxes_of("e2e-api-pod").await.len(), 1);

    // Its environment has the master service and the ConfigMap value.
    let uid = pod.metadata.uid.clone().unwrap();
    let log = node.logs().join(format!("default_e2e-api-pod_{uid}/main/0.log"));
    let text =
        wait_for("container log", Duration::from_secs(20), || async { std::fs::read_to_string(&log).ok().filter(|t| t.contains("svc=")) })
            .await;
    assert!(text.contains("svc=198.19.0.1:443 cm=hello"), "{text}");

    // Its events reached the API server.
    wait_for("Started event", Duration::from_secs(30), || async {
        let (ok, out, _) =
            kubectl(&["get", "events", "--field-selector", "involvedObject.name=e2e-api-pod", "-o", "jsonpath={.items[*].reason}"]);
        (ok && out.contains("Started")).then_some(())
    })
    .await;

    // The static pod has a mirror pod in the API, annotated with its hash and Running.
    let mirror_name = format!("web-{NODE}");
    let mirror: Pod = wait_for("mirror pod Running", Duration::from_secs(90), || async {
        let p: Pod = kubectl_json(&["get", "pod", &mirror_name])?;
        (phase(&p) == Some("Running")).then_some(p)
    })
    .await;
    let annotations = mirror.metadata.annotations.clone().unwrap_or_default();
    assert!(annotations.contains_key("kubernetes.io/config.mirror"), "{annotations:?}");
    let owner = &mirror.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Node", NODE));

    // A deleted mirror pod is created again.
    let old_uid = mirror.metadata.uid.clone().unwrap();
    kubectl(&["delete", "pod", &mirror_name, "--wait=false"]);
    wait_for("mirror pod re-created", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", &mirror_name])?;
        (p.metadata.uid? != old_uid && p.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;

    // A pod bound here that asks for more cpu than the node has is rejected by node admission.
    let greedy = node.dir.path().join("greedy.yaml");
    let greedy_yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: e2e-greedy\nspec:\n  nodeName: {NODE}\n  automountServiceAccountToken: false\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: Never\n    command: [\"sleep\", \"3600\"]\n    resources:\n      requests: {{cpu: \"1000\"}}\n",
        busybox_image()
    );
    std::fs::write(&greedy, greedy_yaml).unwrap();
    let (ok, _, err) = kubectl(&["apply", "-f", greedy.to_str().unwrap()]);
    assert!(ok, "kubectl apply: {err}");
    let rejected: Pod = wait_for("greedy pod Failed", Duration::from_secs(30), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-greedy"])?;
        (phase(&p) == Some("Failed")).then_some(p)
    })
    .await;
    let st = rejected.status.unwrap();
    assert_eq!(st.reason.as_deref(), Some("OutOfcpu"));
    assert!(st.message.as_deref().unwrap_or_default().contains("Node didn't have enough resource: cpu"), "{:?}", st.message);
    assert!(sandboxes_of("e2e-greedy").await.is_empty());
    kubectl(&["delete", "pod", "e2e-greedy", "--wait=false"]);

    // Deleting the API pod stops it here with the deletion's grace period (2 s, not the spec's
    // 60 s: its shell ignores SIGTERM, so only the kill ends it), then it disappears from the API.
    let (ok, _, err) = kubectl(&["delete", "pod", "e2e-api-pod", "--wait=false", "--grace-period=2"]);
    assert!(ok, "{err}");
    wait_for("API pod gone well within its 60 s spec grace period", Duration::from_secs(40), || async {
        let (ok, _, err) = kubectl(&["get", "pod", "e2e-api-pod"]);
        (!ok && err.contains("NotFound")).then_some(())
    })
    .await;
    wait_for("sandbox removed", Duration::from_secs(30), || async { sandboxes_of("e2e-api-pod").await.is_empty().then_some(()) }).await;
    teardown(kubelet).await;
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn mirror_pod_stays_running_while_its_removed_static_pod_terminates() {
    control_plane_ready().await;
    let node = TestNode::new();
    // A static pod whose container sleeps through SIGTERM, within a 20 s grace period.
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: graceful\nspec:\n  terminationGracePeriodSeconds: 20\n  containers:\n  - name: main\n    image: {}\n    command: [\"sh\", \"-c\", \"trap 'sleep 100' TERM; sleep 1000\"]\n",
        busybox_image()
    );
    node.write_manifest("graceful.yaml", &yaml);
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    let mirror_name = format!("graceful-{NODE}");
    let mirror: Pod = wait_for("mirror pod Running", Duration::from_secs(90), || async {
        let p: Pod = kubectl_json(&["get", "pod", &mirror_name])?;
        (phase(&p) == Some("Running")).then_some(p)
    })
    .await;
    let uid = mirror.metadata.uid.clone().unwrap();

    // The manifest goes: the mirror pod stays, Running, while the pod has its grace period.
    std::fs::remove_file(node.manifests().join("graceful.yaml")).unwrap();
    for _ in 0..16 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let p: Pod = kubectl_json(&["get", "pod", &mirror_name]).expect("mirror pod still there");
        assert_eq!((p.metadata.uid.as_deref(), phase(&p)), (Some(uid.as_str()), Some("Running")));
    }
    // Then it goes once the pod has been killed at the end of its grace period.
    wait_for("mirror pod deleted after the grace period", Duration::from_secs(40), || async {
        let (ok, _, err) = kubectl(&["get", "pod", &mirror_name]);
        (!ok && err.contains("NotFound")).then_some(())
    })
    .await;
    assert!(sandboxes_of(&format!("graceful-{NODE}")).await.iter().all(|s| s.state != 0), "sandbox stopped");
    teardown(kubelet).await;
}
