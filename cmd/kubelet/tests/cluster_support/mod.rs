//! Shared helpers of the cluster-mode end-to-end tests: bring up the real control plane of
//! `hack/control-plane.sh` (idempotent), clean the test node out of it, start our kubelet as node
//! `knode-node` with the node kubeconfig, and run the real `kubectl` as admin.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::{KubeletProcess, TestNode, remove_all_pods, wait_for};

pub const KUBELET: &str = env!("CARGO_BIN_EXE_kubelet");
pub const NODE: &str = "knode-node";
pub const NODE_IP: &str = "198.18.255.1";
pub const CP_DIR: &str = "/var/lib/knode/control-plane";

/// The checkout's root, from this crate's directory read at run time
/// (cargo and nextest set it): a test binary that cargo reuses from another
/// checkout sharing the target directory (CI's clone) must still run this
/// checkout's scripts.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from).join("../..")
}

pub fn kubectl_bin() -> String {
    std::env::var("KNODE_KUBECTL").unwrap_or_else(|_| "/var/cache/knode/k8s-1.37.2/bin/kubectl".into())
}

/// Runs `kubectl` as admin; returns (success, stdout, stderr).
pub fn kubectl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(kubectl_bin()).env("KUBECONFIG", format!("{CP_DIR}/admin.kubeconfig")).args(args).output().expect("run kubectl");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `kubectl ... -o json` decoded, `None` when the command fails.
pub fn kubectl_json<T: k8s_openapi::serde::de::DeserializeOwned>(args: &[&str]) -> Option<T> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (ok, out, _) = kubectl(&all);
    ok.then(|| serde_json::from_str(&out).ok()).flatten()
}

/// Starts the control plane (a no-op when it runs), stops the upstream kubelet if it runs as
/// our node, and removes the node's pods and Node object left by earlier runs.
pub async fn control_plane_ready() {
    let script = repo_root().join("hack/control-plane.sh");
    let status = Command::new(&script).arg("up").status().expect("run hack/control-plane.sh up");
    assert!(status.success(), "hack/control-plane.sh up failed");
    // Both kubelets report the same version: ask the harness whether upstream's runs.
    let cp_status = Command::new(&script).arg("status").output().expect("run hack/control-plane.sh status");
    if String::from_utf8_lossy(&cp_status.stdout).lines().any(|l| l.contains("upstream-kubelet") && l.contains("running")) {
        let status = Command::new(&script).arg("kubelet-down").status().expect("run hack/control-plane.sh kubelet-down");
        assert!(status.success(), "hack/control-plane.sh kubelet-down failed");
    }
    kubectl(&[
        "delete",
        "pods",
        "--all-namespaces",
        "--field-selector",
        &format!("spec.nodeName={NODE}"),
        "--force",
        "--grace-period=0",
        "--wait=false",
    ]);
    kubectl(&["delete", "node", NODE, "--wait=true"]);
    remove_all_pods().await;
}

/// Our kubelet as `knode-node` against the control plane, on a fresh test node.
pub async fn start_cluster_kubelet(node: &TestNode) -> KubeletProcess {
    start_cluster_kubelet_with(node, &[]).await
}

/// [`start_cluster_kubelet`] with more flags.
pub async fn start_cluster_kubelet_with(node: &TestNode, extra: &[&str]) -> KubeletProcess {
    let kubeconfig = format!("--kubeconfig={CP_DIR}/node.kubeconfig");
    let ip = format!("--node-ip={NODE_IP}");
    let host = format!("--hostname-override={NODE}");
    let mut flags = vec![kubeconfig.as_str(), ip.as_str(), host.as_str(), "--node-labels=knode.test/e2e=true"];
    flags.extend_from_slice(extra);
    KubeletProcess::start(Path::new(KUBELET), node, &flags).await
}

/// Waits until the node reports `Ready=True`.
pub async fn wait_node_ready(timeout: Duration) -> k8s_openapi::api::core::v1::Node {
    wait_for("node Ready", timeout, || async {
        let node: k8s_openapi::api::core::v1::Node = kubectl_json(&["get", "node", NODE])?;
        let ready = node.status.as_ref()?.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(node)
    })
    .await
}

/// Stops the kubelet, then removes what it left in the runtime and the API.
pub async fn teardown(kubelet: KubeletProcess) {
    kubelet.stop().await;
    remove_all_pods().await;
    kubectl(&[
        "delete",
        "pods",
        "--all-namespaces",
        "--field-selector",
        &format!("spec.nodeName={NODE}"),
        "--force",
        "--grace-period=0",
        "--wait=false",
    ]);
    kubectl(&["delete", "node", NODE, "--wait=false"]);
}

/// The node's KubeletConfiguration: port 10250 on the node IP with the cluster's serving
/// certificate, client certificates from the cluster CA, webhook authentication and authorization.
pub fn secure_config(node: &TestNode) {
    let pki = format!("{CP_DIR}/pki");
    node.write_config(&format!(
        "tlsCertFile: {pki}/kubelet-serving-{NODE}.crt\ntlsPrivateKeyFile: {pki}/kubelet-serving-{NODE}.key\n\
         authentication:\n  x509: {{clientCAFile: {pki}/ca.crt}}\n  webhook: {{enabled: true}}\n  anonymous: {{enabled: false}}\n\
         authorization: {{mode: Webhook}}\n"
    ));
    let path = node.config_path();
    let text = std::fs::read_to_string(&path).unwrap().replace("address: 127.0.0.1\n", &format!("address: {NODE_IP}\n"));
    std::fs::write(&path, text).unwrap();
}

/// Waits until pod `name` (namespace `default`) is Running; returns it.
pub async fn pod_running(name: &str, timeout: Duration) -> k8s_openapi::api::core::v1::Pod {
    wait_for(&format!("pod {name} Running"), timeout, || async {
        let p: k8s_openapi::api::core::v1::Pod = kubectl_json(&["get", "pod", name])?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(p)
    })
    .await
}

/// Waits until pod `pod` (namespace `default`) has an event of `reason` whose message contains
/// `want`.
pub async fn wait_event(pod: &str, reason: &str, want: &str, timeout: Duration) {
    let selector = format!("involvedObject.name={pod},reason={reason}");
    wait_for(&format!("{reason} event for {pod} containing {want:?}"), timeout, || async {
        let (ok, out, _) = kubectl(&["get", "events", "--field-selector", &selector, "-o", "jsonpath={.items[*].message}"]);
        (ok && out.contains(want)).then_some(())
    })
    .await
}

/// How many single-object GETs of `resource` the API server has answered (its
/// `apiserver_request_total`, every code).
pub fn apiserver_gets(resource: &str) -> u64 {
    let (ok, text, err) = kubectl(&["get", "--raw", "/metrics"]);
    assert!(ok, "API server metrics: {err}");
    let wanted = [format!("resource=\"{resource}\""), "scope=\"resource\"".to_string(), "verb=\"GET\"".to_string()];
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{") && wanted.iter().all(|w| l.contains(w.as_str())))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The log of container `main` (first run) of pod `pod` in namespace `default`.
pub fn main_log(node: &TestNode, pod: &k8s_openapi::api::core::v1::Pod) -> PathBuf {
    let (name, uid) = (pod.metadata.name.as_deref().unwrap_or_default(), pod.metadata.uid.as_deref().unwrap_or_default());
    node.logs().join(format!("default_{name}_{uid}/main/0.log"))
}

/// Writes `yaml` to `<name>.yaml` in the test node's directory and `kubectl apply`s it.
pub fn apply(node: &TestNode, name: &str, yaml: &str) {
    let file = node.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    let (ok, _, err) = kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(ok, "kubectl apply {name}: {err}");
}

/// Removes a cgroup tree bottom-up (cgroup directories go with `rmdir` only).
pub fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Removes the cgroup tree `/<root>` from every hierarchy.
pub fn remove_test_cgroups(root: &str) {
    for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        remove_cgroup_tree(&h.path().join(root));
    }
}

/// Our kubelet as `knode-node` with pod cgroups in the test's own tree `/<cgroup_root>`, the
/// secure port on the node IP, Ready.
pub async fn start_kubelet_with_pod_cgroups(node: &TestNode, cgroup_root: &str) -> KubeletProcess {
    remove_test_cgroups(cgroup_root);
    secure_config(node);
    let config = std::fs::read_to_string(node.config_path()).unwrap();
    std::fs::write(
        node.config_path(),
        config.replace("cgroupsPerQOS: false\n", &format!("cgroupsPerQOS: true\ncgroupRoot: /{cgroup_root}\n")),
    )
    .unwrap();
    let kubelet = start_cluster_kubelet(node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    kubelet
}

/// `hack/metrics-server.sh <cmd>` (`up`, `down`) succeeded.
pub fn metrics_server(cmd: &str) -> bool {
    Command::new(repo_root().join("hack/metrics-server.sh")).arg(cmd).status().is_ok_and(|s| s.success())
}

/// A pod in `default` whose container `busy` spins under a 200m CPU limit, with `extra`
/// (indented YAML) appended to the container.
pub fn busy_pod_yaml(name: &str, script: &str, extra: &str) -> String {
    let image = e2e::busybox_image();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  terminationGracePeriodSeconds: 1\n  automountServiceAccountToken: false\n  containers:\n  - name: busy\n    image: {image}\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", {script:?}]\n    resources: {{limits: {{cpu: 200m, memory: 64Mi}}}}\n{extra}"
    )
}

/// A client certificate and key (PEM) signed by the harness CA for `cn` (in organization
/// `org` when given), valid from `from` to `to` seconds around now.
pub fn harness_client_cert(cn: &str, org: Option<&str>, from: i64, to: i64) -> String {
    let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(format!("{CP_DIR}/pki/ca.key")).unwrap()).unwrap();
    let ca = rcgen::Issuer::from_ca_cert_pem(&std::fs::read_to_string(format!("{CP_DIR}/pki/ca.crt")).unwrap(), ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(org) = org {
        params.distinguished_name.push(rcgen::DnType::OrganizationName, org);
    }
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::seconds(from);
    params.not_after = now + time::Duration::seconds(to);
    format!("{}{}", params.signed_by(&key, &ca).unwrap().pem(), key.serialize_pem())
}

/// The harness's bootstrap token (`<id>.<secret>`).
pub fn token() -> String {
    std::fs::read_to_string(format!("{CP_DIR}/pki/bootstrap-token")).unwrap().trim().to_string()
}

/// A file's permission bits.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// `kubernetes.io/kube-apiserver-client-kubelet`: the kubelet's client certificate requests.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// The certificate signing requests for `signer`.
pub fn csrs(signer: &str) -> Vec<k8s_openapi::api::certificates::v1::CertificateSigningRequest> {
    let list: Option<serde_json::Value> = kubectl_json(&["get", "csr"]);
    let items: Vec<k8s_openapi::api::certificates::v1::CertificateSigningRequest> =
        list.and_then(|l| serde_json::from_value(l["items"].clone()).ok()).unwrap_or_default();
    items.into_iter().filter(|c| c.spec.signer_name == signer).collect()
}

/// Who asked for the kubelet client certificates (`spec.username` of each request).
pub fn client_csr_users() -> Vec<String> {
    csrs(CLIENT_SIGNER).into_iter().filter_map(|c| c.spec.username).collect()
}
