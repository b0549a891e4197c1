//! End-to-end, cluster mode, volumes: a pod with the default service-account token automount
//! (a `kube-api-access-*` projected volume added by admission) and a `projected` volume (token, the
//! `kube-root-ca.crt` ConfigMap, downwardAPI) reads its files; pod syncs read Secrets and
//! ConfigMaps from their watches (no GETs on the API server, also for 130 objects, more than one
//! HTTP/2 connection's streams); a configMap volume follows a
//! changed ConfigMap while the container runs; a pod whose secret is missing waits with a
//! FailedMount event and starts once the secret exists; deleting pods unmounts their tmpfs;
//! `subPathExpr` expands from the environment into a directory with the volume's mode (bind-mounted
//! for the runtime under the pod's directory, unmounted with it), while a
//! `..` expansion and a symlink pointing out of the volume are `CreateContainerConfigError`s; a
//! pod that finished gives back its (memory-backed) emptyDir while its object stays.
//! Real control plane (`hack/control-plane.sh`), real containerd, real `kubectl`.

mod cluster_support;

use std::path::Path;
use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, wait_for};
use k8s_openapi::api::core::v1::Pod;

const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

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

async fn log_containing(node: &TestNode, pod: &Pod, needle: &str, timeout: Duration) -> String {
    let (name, log) = (pod.metadata.name.clone().unwrap(), main_log(node, pod));
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
    apply(&node, "token", &token_pod_yaml());
    apply(&node, "cm", &config_map_yaml("hello"));
    apply(&node, "config", &config_pod_yaml());
    apply(&node, "secret-pod", &secret_pod_yaml());

    let token_pod = pod_running("e2e-vol-token", Duration::from_secs(90)).await;
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
    let config_pod = pod_running("e2e-vol-config", Duration::from_secs(60)).await;
    log_containing(&node, &config_pod, "greeting=hello", Duration::from_secs(30)).await;
    // Pod syncs (every 10 s here) read the watched objects: no GETs (upstream's default
    // `Watch` strategy), also not for the secret that does not exist yet.
    let gets = || apiserver_gets("configmaps") + apiserver_gets("secrets");
    let before = gets();
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(gets() - before, 0, "ConfigMap and Secret GETs during two sync periods of three pods");
    // The watch brings the change well within a sync period or two.
    apply(&node, "cm", &config_map_yaml("bonjour"));
    log_containing(&node, &config_pod, "greeting=bonjour", Duration::from_secs(25)).await;

    // The pod with a missing secret waits with FailedMount, then starts once it exists.
    let want = "MountVolume.SetUp failed for volume \"creds\" : secret \"e2e-vol-missing\" not found";
    wait_event("e2e-vol-secret", "FailedMount", want, Duration::from_secs(60)).await;
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
    let secret_pod = pod_running("e2e-vol-secret", Duration::from_secs(60)).await;
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

/// ConfigMaps `e2e-many-<i>` for `i < n` and a pod whose projected volume reads them all.
fn many_objects_yaml(n: usize) -> String {
    let mut yaml = String::new();
    for i in 0..n {
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: e2e-many-{i}, namespace: default}}\ndata: {{v{i}: \"{i}\"}}\n---\n"
        ));
    }
    let sources: String = (0..n).map(|i| format!("      - configMap: {{name: e2e-many-{i}}}\n")).collect();
    yaml.push_str(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: e2e-vol-many, namespace: default}}\nspec:\n  automountServiceAccountToken: false\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {}\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"ls /many | wc -l; sleep 3600\"]\n    volumeMounts: [{{name: many, mountPath: /many}}]\n  volumes:\n  - name: many\n    projected:\n      sources:\n{sources}",
        busybox_image()
    ));
    yaml
}

/// More watched objects than one HTTP/2 connection carries (kube-apiserver's default stream
/// limit is 100): the object watches spread over their lanes' connections, every object is
/// served from its watch (no GETs at pod syncs), and a change still arrives.
#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn more_objects_than_one_connection_carries_are_all_watched() {
    const N: usize = 130;
    control_plane_ready().await;
    kubectl(&["delete", "pod", "e2e-vol-many", "--ignore-not-found", "--wait=false"]);
    let node = TestNode::new();
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    apply(&node, "many", &many_objects_yaml(N));
    let pod = pod_running("e2e-vol-many", Duration::from_secs(90)).await;
    let text = log_containing(&node, &pod, "\n", Duration::from_secs(30)).await;
    assert!(text.lines().any(|l| l.ends_with(&format!(" F {N}"))), "one file per ConfigMap: {text}");
    let gets = || apiserver_gets("configmaps");
    let before = gets();
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(gets() - before, 0, "ConfigMap GETs during two sync periods of a pod reading {N} of them");
    let (ok, _, err) =
        kubectl(&["patch", "configmap", &format!("e2e-many-{}", N - 1), "-p", &format!("{{\"data\":{{\"v{}\":\"changed\"}}}}", N - 1)]);
    assert!(ok, "patch: {err}");
    let file = node.root().join(format!("pods/{}/volumes/kubernetes.io~projected/many/v{}", pod.metadata.uid.as_deref().unwrap(), N - 1));
    wait_for("the change in the volume", Duration::from_secs(30), || async {
        (std::fs::read_to_string(&file).ok()? == "changed").then_some(())
    })
    .await;
    kubectl(&["delete", "pod", "e2e-vol-many", "--wait=false"]);
    for i in 0..N {
        kubectl(&["delete", "configmap", &format!("e2e-many-{i}"), "--ignore-not-found", "--wait=false"]);
    }
    teardown(kubelet).await;
}

/// `subPathExpr` from the pod name (a non-root writer), a `..` expansion, and an init container
/// that leaves a symlink to `/etc` in the volume for the main container's `subPath`.
fn sub_path_pods_yaml() -> String {
    let image = busybox_image();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: e2e-vol-subpath, namespace: default}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    securityContext: {{runAsUser: 1001}}
    env:
    - name: POD_NAME
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    command: ["sh", "-c", "echo hi > /logs/f && test -f /whole/e2e-vol-subpath/f && echo subpath-ok mode=$(stat -c %a /whole/e2e-vol-subpath); sleep 3600"]
    volumeMounts:
    - {{name: work, mountPath: /logs, subPathExpr: "$(POD_NAME)"}}
    - {{name: work, mountPath: /whole}}
  volumes:
  - {{name: work, emptyDir: {{}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-vol-subpath-up, namespace: default}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    env: [{{name: UP, value: ".."}}]
    command: ["sleep", "3600"]
    volumeMounts: [{{name: work, mountPath: /logs, subPathExpr: "$(UP)"}}]
  volumes:
  - {{name: work, emptyDir: {{}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-vol-subpath-escape, namespace: default}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: plant
    image: {image}
    imagePullPolicy: Never
    command: ["ln", "-s", "/etc", "/work/escape"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sleep", "3600"]
    volumeMounts: [{{name: work, mountPath: /host-etc, subPath: escape}}]
  volumes:
  - {{name: work, emptyDir: {{}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-vol-done, namespace: default}}
spec:
  automountServiceAccountToken: false
  restartPolicy: Never
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "echo data > /scratch/f"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
  volumes:
  - {{name: scratch, emptyDir: {{medium: Memory}}}}
"#
    )
}

/// The message of the pod's container `main` once it waits with `CreateContainerConfigError`.
async fn config_error(name: &str) -> String {
    wait_for(&format!("{name}: main container waiting with a config error"), Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", name])?;
        let cs = p.status?.container_statuses?;
        let w = cs.iter().find(|c| c.name == "main")?.state.clone()?.waiting?;
        (w.reason.as_deref() == Some("CreateContainerConfigError")).then(|| w.message.unwrap_or_default())
    })
    .await
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn sub_paths_and_finished_pod_volumes() {
    control_plane_ready().await;
    let pods = ["e2e-vol-subpath", "e2e-vol-subpath-up", "e2e-vol-subpath-escape", "e2e-vol-done"];
    for pod in pods {
        kubectl(&["delete", "pod", pod, "--ignore-not-found", "--wait=false"]);
    }
    let node = TestNode::new();
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    apply(&node, "subpath", &sub_path_pods_yaml());

    // The expanded sub path is a directory of the (0777) emptyDir that uid 1001 can write.
    let pod = pod_running("e2e-vol-subpath", Duration::from_secs(90)).await;
    let text = log_containing(&node, &pod, "subpath-ok", Duration::from_secs(30)).await;
    assert!(text.contains("subpath-ok mode=777"), "{text}");
    // The runtime got a bind mount of the checked directory, under the pod's directory.
    let subpath_pod_dir = node.root().join(format!("pods/{}", pod.metadata.uid.clone().unwrap()));
    let pinned = subpath_pod_dir.join("volume-subpaths");
    let mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(pinned.to_str().unwrap())))
            .count()
    };
    assert_eq!(mounts(), 1, "one sub path bind mount under {}", pinned.display());

    assert_eq!(config_error("e2e-vol-subpath-up").await, "unable to provision SubPath `..`: must not contain '..'");
    assert_eq!(config_error("e2e-vol-subpath-escape").await, "subPath `escape` resolves outside its volume");
    // Neither started a container; the node's /etc was never mounted anywhere.
    let p: Pod = kubectl_json(&["get", "pod", "e2e-vol-subpath-escape"]).unwrap();
    assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Pending"));

    // The finished pod: Succeeded, its tmpfs unmounted and its volume directory gone.
    let done: Pod = wait_for("e2e-vol-done Succeeded", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-vol-done"])?;
        (p.status.as_ref()?.phase.as_deref() == Some("Succeeded")).then_some(p)
    })
    .await;
    let pod_dir = node.root().join(format!("pods/{}", done.metadata.uid.unwrap()));
    let scratch = pod_dir.join("volumes/kubernetes.io~empty-dir/scratch");
    wait_for("finished pod's emptyDir torn down", Duration::from_secs(30), || async {
        (!scratch.exists() && !is_mount_point(&scratch)).then_some(())
    })
    .await;
    assert!(pod_dir.is_dir(), "the pod directory stays until the pod is deleted");

    // Deleted, the pod's sub path mount goes with its directory.
    kubectl(&["delete", "pod", pods[0], pods[1], pods[2], pods[3], "--wait=false"]);
    wait_for("sub path pod directory removed", Duration::from_secs(60), || async { (!subpath_pod_dir.exists()).then_some(()) }).await;
    assert_eq!(mounts(), 0);
    teardown(kubelet).await;
}
