//! End-to-end, cluster mode, volumes: a pod with the default service-account token automount
//! (a `kube-api-access-*` projected volume added by admission) and a `projected` volume (token, the
//! `kube-root-ca.crt` ConfigMap, downwardAPI) reads its files; a configMap volume follows a
//! changed ConfigMap while the container runs; a pod whose secret is missing waits with a
//! FailedMount event and starts once the secret exists; deleting pods unmounts their tmpfs.
//! Real control plane (`hack/control-plane.sh`), real containerd, real `kubectl`.

mod cluster_support;

use std::path::Path;
use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, wait_for};
use k8s_openapi::api::core::v1::Pod;

const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn apply(node: &TestNode, file: &str, yaml: &str) {
    let path = node.dir.path().join(file);
    std::fs::write(&path, yaml).unwrap();
    let (ok, _, err) = kubectl(&["apply", "-f", path.to_str().unwrap()]);
    assert!(ok, "kubectl apply {file}: {err}");
}

/// Reads the service-account files of the automount and of a projected volume, then sleeps.
fn token_pod_yaml() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: e2e-vol-token, namespace: default, labels: {{tier: front}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "echo token=$(head -c 20 {SA_DIR}/token) ns=$(cat {SA_DIR}/namespace); grep -c 'BEGIN CERTIFICATE' {SA_DIR}/ca.crt; echo ptoken=$(head -c 20 /projected/token) pns=$(cat /projected/namespace) plabels=$(cat /projected/labels); grep -c 'BEGIN CERTIFICATE' /projected/ca.crt; echo done; sleep 3600"]
    volumeMounts:
    - {{name: access, mountPath: /projected, readOnly: true}}
  volumes:
  - name: access
    projected:
      sources:
      - serviceAccountToken: {{path: token, expirationSeconds: 3607}}
      - configMap:
          name: kube-root-ca.crt
          items: [{{key: ca.crt, path: ca.crt}}]
      - downwardAPI:
          items:
          - {{path: namespace, fieldRef: {{fieldPath: metadata.namespace}}}}
          - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
"#,
        image = busybox_image()
    )
}

/// Prints its configMap file every second.
fn config_pod_yaml() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: e2e-vol-config, namespace: default}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {}
    imagePullPolicy: Never
    command: ["sh", "-c", "while true; do echo greeting=$(cat /config/greeting); sleep 1; done"]
    volumeMounts: [{{name: config, mountPath: /config}}]
  volumes:
  - name: config
    configMap: {{name: e2e-vol-cm}}
"#,
        busybox_image()
    )
}

fn config_map_yaml(greeting: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: e2e-vol-cm, namespace: default}}\ndata: {{greeting: {greeting}}}\n")
}

/// Needs a secret that does not exist yet.
fn secret_pod_yaml() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: e2e-vol-secret, namespace: default}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {}
    imagePullPolicy: Never
    command: ["sh", "-c", "echo secret=$(cat /creds/password) mode=$(stat -L -c %a /creds/password); sleep 3600"]
    volumeMounts: [{{name: creds, mountPath: /creds}}]
  volumes:
  - name: creds
    secret: {{secretName: e2e-vol-missing, defaultMode: 0400}}
"#,
        busybox_image()
    )
}

async fn running(name: &str, timeout: Duration) -> Pod {
    wait_for(&format!("pod {name} Running"), timeout, || async {
        let p: Pod = kubectl_json(&["get", "pod", name])?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(p)
    })
    .await
}

async fn log_containing(node: &TestNode, pod: &Pod, needle: &str, timeout: Duration) -> String {
    let (name, uid) = (pod.metadata.name.clone().unwrap(), pod.metadata.uid.clone().unwrap());
    let log = node.logs().join(format!("default_{name}_{uid}/main/0.log"));
    wait_for(&format!("{name} log containing {needle:?}"), timeout, || async {
        std::fs::read_to_string(&log).ok().filter(|t| t.contains(needle))
    })
    .await
}

fn is_mount_point(p: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts.lines().any(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap_or_default()))
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn secret_configmap_projected_and_token_volumes() {
    control_plane_ready().await;
    for obj in ["pod/e2e-vol-token", "pod/e2e-vol-config", "pod/e2e-vol-secret", "configmap/e2e-vol-cm", "secret/e2e-vol-missing"] {
        kubectl(&["delete", obj, "--ignore-not-found", "--wait=false"]);
    }
    let node = TestNode::new();
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;

    // The default service-account automount and a projected token volume.
    apply(&node, "token.yaml", &token_pod_yaml());
    apply(&node, "cm.yaml", &config_map_yaml("hello"));
    apply(&node, "config.yaml", &config_pod_yaml());
    apply(&node, "secret-pod.yaml", &secret_pod_yaml());

    let token_pod = running("e2e-vol-token", Duration::from_secs(90)).await;
    let vols = token_pod.spec.as_ref().unwrap().volumes.clone().unwrap_or_default();
    assert!(vols.iter().any(|v| v.secret.is_some() || v.name.starts_with("kube-api-access")), "admission added the token volume: {vols:?}");
    let text = log_containing(&node, &token_pod, "done", Duration::from_secs(30)).await;
    assert!(text.contains("token=eyJ") && text.contains("ns=default"), "{text}");
    assert!(text.contains("ptoken=eyJ") && text.contains("pns=default") && text.contains("plabels=tier=\"front\""), "{text}");
    assert_eq!(text.lines().filter(|l| l.ends_with(" F 1")).count(), 2, "one CA certificate in each ca.crt: {text}");
    let uid = token_pod.metadata.uid.clone().unwrap();
    let projected = node.root().join(format!("pods/{uid}/volumes/kubernetes.io~projected/access"));
    assert!(is_mount_point(&projected), "projected volume on tmpfs");
    let data = std::fs::read_link(projected.join("..data")).unwrap();
    assert!(data.to_string_lossy().starts_with("..20"), "{data:?}");

    // A changed ConfigMap reaches the running container (one sync period: 10 s in tests).
    let config_pod = running("e2e-vol-config", Duration::from_secs(60)).await;
    log_containing(&node, &config_pod, "greeting=hello", Duration::from_secs(30)).await;
    apply(&node, "cm.yaml", &config_map_yaml("bonjour"));
    log_containing(&node, &config_pod, "greeting=bonjour", Duration::from_secs(60)).await;

    // The pod with a missing secret waits with FailedMount, then starts once it exists.
    let want = "MountVolume.SetUp failed for volume \"creds\" : secret \"e2e-vol-missing\" not found";
    wait_for("FailedMount event", Duration::from_secs(60), || async {
        let (ok, out, _) = kubectl(&["get", "events", "--field-selector", "involvedObject.name=e2e-vol-secret,reason=FailedMount", "-o", "jsonpath={.items[*].message}"]);
        (ok && out.contains(want)).then_some(())
    })
    .await;
    // The event can reach the API server before the pod's status does.
    let st = wait_for("status of the pod waiting for its volume", Duration::from_secs(20), || async {
        let waiting: Pod = kubectl_json(&["get", "pod", "e2e-vol-secret"])?;
        waiting.status.filter(|s| s.container_statuses.as_ref().is_some_and(|c| !c.is_empty()))
    })
    .await;
    assert_eq!(st.phase.as_deref(), Some("Pending"));
    let reason = st.container_statuses.unwrap_or_default().first().and_then(|c| c.state.clone()?.waiting?.reason);
    assert_eq!(reason.as_deref(), Some("ContainerCreating"));
    let (ok, _, err) = kubectl(&["create", "secret", "generic", "e2e-vol-missing", "--from-literal=password=opensesame"]);
    assert!(ok, "create secret: {err}");
    let secret_pod = running("e2e-vol-secret", Duration::from_secs(60)).await;
    let text = log_containing(&node, &secret_pod, "secret=", Duration::from_secs(30)).await;
    assert!(text.contains("secret=opensesame mode=400"), "{text}");

    // Deleted pods leave no mounts behind.
    kubectl(&["delete", "pod", "e2e-vol-token", "e2e-vol-config", "e2e-vol-secret", "--wait=false"]);
    wait_for("token pod gone", Duration::from_secs(60), || async {
        let (ok, _, err) = kubectl(&["get", "pod", "e2e-vol-token"]);
        (!ok && err.contains("NotFound")).then_some(())
    })
    .await;
    wait_for("projected tmpfs unmounted", Duration::from_secs(30), || async { (!is_mount_point(&projected)).then_some(()) }).await;
    let pod_dir = node.root().join(format!("pods/{uid}"));
    wait_for("pod directory removed", Duration::from_secs(30), || async { (!pod_dir.exists()).then_some(()) }).await;
    kubectl(&["delete", "configmap", "e2e-vol-cm", "--ignore-not-found"]);
    kubectl(&["delete", "secret", "e2e-vol-missing", "--ignore-not-found"]);
    teardown(kubelet).await;
}
