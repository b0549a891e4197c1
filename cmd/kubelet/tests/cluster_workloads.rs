//! End-to-end, cluster mode, with controllers: a Deployment of 3 replicas becomes Available on
//! our node; a kubelet restart and an API server restart leave every container running with
//! unchanged IDs and restart counts; a container that dies during an API outage is restarted and
//! its status reaches the API once it is back; scaling down stops pods gracefully (SIGTERM first).
//! Real control plane (`hack/control-plane.sh`), real containerd, real `kubectl`.

mod cluster_support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, cri, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kubelet_cri::RuntimeService;

const DEPLOYMENT: &str = "e2e-web";

/// A Deployment whose containers note SIGTERM in a hostPath file named after the pod, then exit.
fn deployment_yaml(replicas: u32, term_dir: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {DEPLOYMENT}
  namespace: default
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {DEPLOYMENT}}}
  template:
    metadata:
      labels: {{app: {DEPLOYMENT}}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 30
      containers:
      - name: web
        image: {image}
        imagePullPolicy: Never
        command: ["sh", "-c", "trap 'echo TERM > /term/$HOSTNAME; exit 0' TERM; while true; do sleep 1; done"]
        resources:
          requests: {{cpu: 10m, memory: 8Mi}}
        volumeMounts:
        - {{name: term, mountPath: /term}}
      volumes:
      - name: term
        hostPath: {{path: {term_dir}, type: DirectoryOrCreate}}
"#,
        image = busybox_image()
    )
}

fn apply(node: &TestNode, yaml: &str) {
    let file = node.dir.path().join("deployment.yaml");
    std::fs::write(&file, yaml).unwrap();
    let (ok, _, err) = kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(ok, "kubectl apply: {err}");
}

/// The Deployment's pods (`kubectl get` prints a `List`, which k8s-openapi has no type for).
fn pods() -> Option<Vec<Pod>> {
    let list: serde_json::Value = kubectl_json(&["get", "pods", "-l", &format!("app={DEPLOYMENT}")])?;
    serde_json::from_value(list.get("items")?.clone()).ok()
}

/// Live (not terminating) pods of the Deployment: name → (container ID, restart count, phase).
fn live_pods() -> BTreeMap<String, (String, i32, String)> {
    pods()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p: Pod| {
            let status = p.status.unwrap_or_default();
            let c = status.container_statuses.unwrap_or_default().into_iter().next().unwrap_or_default();
            (p.metadata.name.unwrap_or_default(), (c.container_id.unwrap_or_default(), c.restart_count, status.phase.unwrap_or_default()))
        })
        .collect()
}

async fn wait_available(replicas: i32, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let d: Option<Deployment> = kubectl_json(&["get", "deployment", DEPLOYMENT]);
        let status = d.and_then(|d| d.status);
        if let Some(s) = &status {
            let available =
                s.conditions.iter().flatten().any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"));
            if available && s.available_replicas == Some(replicas) && s.ready_replicas == Some(replicas) && s.replicas == Some(replicas) {
                return;
            }
        }
        if tokio::time::Instant::now() > deadline {
            let pods: Vec<_> = pods()
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.metadata.name, p.metadata.deletion_timestamp, p.status.and_then(|s| s.phase)))
                .collect();
            panic!(
                "timed out after {timeout:?} waiting for deployment {DEPLOYMENT} Available with {replicas} replicas; last status {status:?}; pods {pods:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// IDs of the running containers of the Deployment's pods, straight from containerd.
async fn running_container_ids() -> Vec<String> {
    let mut ids: Vec<String> = cri()
        .list_containers(None)
        .await
        .expect("list containers")
        .into_iter()
        .filter(|c| c.state == kubelet_cri::api::ContainerState::ContainerRunning as i32)
        .filter(|c| c.labels.get("io.kubernetes.pod.name").is_some_and(|n| n.starts_with(DEPLOYMENT)))
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
}

fn control_plane(cmd: &str) {
    let status = Command::new(repo_root().join("hack/control-plane.sh")).arg(cmd).status().expect("run hack/control-plane.sh");
    assert!(status.success(), "hack/control-plane.sh {cmd} failed");
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn deployment_survives_restarts_and_outages_and_scales_down_gracefully() {
    control_plane_ready().await;
    kubectl(&["delete", "deployment", DEPLOYMENT, "--ignore-not-found", "--wait=true"]);
    // Its ReplicaSets too: the garbage collector can lag after an earlier run stopped the API server.
    kubectl(&["delete", "replicasets", "-l", &format!("app={DEPLOYMENT}"), "--ignore-not-found", "--wait=false"]);
    let node = TestNode::new();
    let term_dir = node.dir.path().join("term");
    let term = term_dir.to_str().unwrap().to_string();
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    // Pods of an earlier run are collected in the background once their Deployment is gone.
    wait_for("pods of an earlier run gone", Duration::from_secs(120), || async { pods().filter(|p| p.is_empty()) }).await;

    // Three replicas become Available on our node.
    apply(&node, &deployment_yaml(3, &term));
    wait_available(3, Duration::from_secs(120)).await;
    let before = live_pods();
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(
        before.values().all(|(id, restarts, phase)| id.starts_with("containerd://") && *restarts == 0 && phase == "Running"),
        "{before:?}"
    );
    let containers = running_container_ids().await;
    assert_eq!(containers.len(), 3, "{containers:?}");

    // A kubelet restart keeps every container and restart count.
    assert!(kubelet.stop().await.success());
    assert_eq!(running_container_ids().await, containers, "containers keep running while the kubelet is down");
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    wait_available(3, Duration::from_secs(60)).await;
    assert_eq!(live_pods(), before, "same pods, container IDs and restart counts after a kubelet restart");
    assert_eq!(running_container_ids().await, containers);

    // An API server restart changes nothing either.
    control_plane("apiserver-stop");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(running_container_ids().await, containers, "containers keep running while the API server is down");
    control_plane("up");
    wait_node_ready(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    wait_available(3, Duration::from_secs(60)).await;
    assert_eq!(live_pods(), before, "same pods, container IDs and restart counts after an API server restart");
    assert_eq!(running_container_ids().await, containers);

    // A container killed during an outage is restarted at once; the API learns of it afterwards.
    control_plane("apiserver-stop");
    let victim = containers[0].clone();
    cri().stop_container(&victim, Duration::from_secs(0)).await.expect("stop a container behind the kubelet's back");
    let restarted = wait_for("container restarted during the outage", Duration::from_secs(30), || async {
        let ids = running_container_ids().await;
        (ids.len() == 3 && !ids.contains(&victim)).then_some(ids)
    })
    .await;
    control_plane("up");
    let victim_pod = before.iter().find(|(_, (id, _, _))| id.ends_with(&victim)).map(|(n, _)| n.clone()).expect("victim's pod");
    let after = wait_for("restart reported to the API server", Duration::from_secs(60), || async {
        let pods = live_pods();
        let (id, restarts, _) = pods.get(&victim_pod)?;
        (*restarts == 1 && !id.ends_with(&victim)).then_some(pods)
    })
    .await;
    for (name, (id, restarts, phase)) in &after {
        assert_eq!(phase, "Running", "{name}");
        if name != &victim_pod {
            assert_eq!((id, *restarts), (&before[name].0, 0), "{name} untouched");
        } else {
            assert!(restarted.iter().any(|r| id.ends_with(r)), "{id} is one of {restarted:?}");
        }
    }

    // Scaling down to one stops two pods gracefully: each container got SIGTERM and exited on it.
    // The controller-manager's informers may still be backing off from the two outages
    // (client-go's reflector waits 0.8 s doubling to 30 s, jittered up to twice that, and resets
    // only after 2 minutes without failure), so the controllers may act up to a minute late.
    apply(&node, &deployment_yaml(1, &term));
    wait_available(1, Duration::from_secs(150)).await;
    wait_for("two pods gone from the API", Duration::from_secs(60), || async { (pods()?.len() == 1).then_some(()) }).await;
    let mut termed: Vec<String> =
        std::fs::read_dir(&term_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    termed.sort();
    assert_eq!(termed.len(), 2, "two containers saw SIGTERM: {termed:?}");
    assert!(termed.iter().all(|t| before.contains_key(t)), "{termed:?} ⊂ {:?}", before.keys());
    wait_for("two sandboxes removed", Duration::from_secs(30), || async { (running_container_ids().await.len() == 1).then_some(()) }).await;

    kubectl(&["delete", "deployment", DEPLOYMENT, "--wait=false"]);
    teardown(kubelet).await;
}

fn bare_pod_yaml(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  nodeName: {NODE}\n  automountServiceAccountToken: false\n  terminationGracePeriodSeconds: 5\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: Never\n    command: [\"sleep\", \"3600\"]\n",
        busybox_image()
    )
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn pods_deleted_while_the_kubelet_was_down_are_cleaned_up() {
    control_plane_ready().await;
    let node = TestNode::new();
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    for name in ["e2e-graceful", "e2e-forced"] {
        let file = node.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, bare_pod_yaml(name)).unwrap();
        let (ok, _, err) = kubectl(&["apply", "-f", file.to_str().unwrap()]);
        assert!(ok, "kubectl apply: {err}");
    }
    for name in ["e2e-graceful", "e2e-forced"] {
        wait_for(&format!("{name} Running"), Duration::from_secs(60), || async {
            let p: Pod = kubectl_json(&["get", "pod", name])?;
            (p.status?.phase.as_deref() == Some("Running")).then_some(())
        })
        .await;
    }
    assert!(kubelet.stop().await.success());

    // While the kubelet is down: one pod is deleted gracefully (it waits in the API for the
    // kubelet), the other is force-deleted (gone from the API at once).
    let (ok, _, err) = kubectl(&["delete", "pod", "e2e-graceful", "--wait=false"]);
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl(&["delete", "pod", "e2e-forced", "--force", "--grace-period=0", "--wait=false"]);
    assert!(ok, "{err}");
    let p: Pod = kubectl_json(&["get", "pod", "e2e-graceful"]).expect("graceful pod waits for the kubelet");
    assert!(p.metadata.deletion_timestamp.is_some());
    assert_eq!(e2e::containers_of("e2e-forced").await.len(), 1, "still running in containerd");

    let kubelet = start_cluster_kubelet(&node).await;
    wait_for("gracefully deleted pod finished and removed from the API", Duration::from_secs(60), || async {
        let (ok, _, err) = kubectl(&["get", "pod", "e2e-graceful"]);
        (!ok && err.contains("NotFound")).then_some(())
    })
    .await;
    for name in ["e2e-graceful", "e2e-forced"] {
        wait_for(&format!("{name} removed from containerd"), Duration::from_secs(60), || async {
            (e2e::containers_of(name).await.is_empty() && e2e::sandboxes_of(name).await.is_empty()).then_some(())
        })
        .await;
    }
    teardown(kubelet).await;
}
