//! End-to-end, cluster mode: joining with TLS bootstrap as operators do. The harness publishes
//! a bootstrap token and kubeadm's RBAC (auto-approval of node client certificates by the
//! controller-manager, which signs with the cluster CA). Our kubelet starts with only
//! `--bootstrap-kubeconfig` (the token) and an empty `--cert-dir`:
//! - it sends a `kubernetes.io/kube-apiserver-client-kubelet` request as
//!   `system:bootstrap:<id>`, gets it approved and issued, writes `kubelet-client-<time>.pem`
//!   (0600), the `kubelet-client-current.pem` link and the kubeconfig (0600), and the node
//!   becomes Ready with that certificate;
//! - with `serverTLSBootstrap` it asks for a `kubernetes.io/kubelet-serving` certificate for its
//!   name and IP; once an admin approves it, port 10250 serves it (verified against the CA, and
//!   by the API server for `kubectl logs`), and `/metrics` reports both certificates' TTLs
//!   (`kubelet_certificate_manager_*`);
//! - a restart sends no new request;
//! - with a certificate about to expire (signed here with the harness CA) and
//!   `rotateCertificates`, the kubelet renews it with a request authenticated by the old one,
//!   switches its API client, and keeps its lease fresh after the old certificate expired;
//! - a wrong token stops start-up with a clear error;
//! - a request that is not auto-approved and that an admin denies stops start-up with its name
//!   and the denial's reason.

mod cluster_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cluster_support::*;
use e2e::{KubeletProcess, TestNode, wait_for};
use k8s_openapi::api::coordination::v1::Lease;

const SERVER: &str = "https://198.18.255.1:6443";

fn bootstrap_kubeconfig(dir: &Path, token: &str) -> PathBuf {
    let path = dir.join("bootstrap-kubelet.conf");
    std::fs::write(
        &path,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: knode\n  cluster:\n    server: {SERVER}\n    certificate-authority: {CP_DIR}/pki/ca.crt\nusers:\n- name: tls-bootstrap-token-user\n  user:\n    token: {token}\ncontexts:\n- name: tls-bootstrap-token-user@knode\n  context: {{cluster: knode, user: tls-bootstrap-token-user}}\ncurrent-context: tls-bootstrap-token-user@knode\n"),
    )
    .unwrap();
    path
}

/// Webhook authentication and authorization with the cluster CA, no serving certificate file
/// (it comes from the cluster), rotation on.
fn write_config(node: &TestNode) {
    node.write_config(&format!(
        "authentication:\n  x509: {{clientCAFile: {CP_DIR}/pki/ca.crt}}\n  webhook: {{enabled: true}}\n  anonymous: {{enabled: false}}\n\
         authorization: {{mode: Webhook}}\nrotateCertificates: true\nserverTLSBootstrap: true\n"
    ));
    let text = std::fs::read_to_string(node.config_path()).unwrap().replace("address: 127.0.0.1\n", &format!("address: {NODE_IP}\n"));
    std::fs::write(node.config_path(), text).unwrap();
}

fn flags(node: &TestNode, bootstrap: &Path) -> Vec<String> {
    let dir = node.dir.path();
    vec![
        format!("--bootstrap-kubeconfig={}", bootstrap.display()),
        format!("--kubeconfig={}", dir.join("kubelet.conf").display()),
        format!("--cert-dir={}", dir.join("pki").display()),
        format!("--node-ip={NODE_IP}"),
        format!("--hostname-override={NODE}"),
    ]
}

async fn start(node: &TestNode, bootstrap: &Path) -> KubeletProcess {
    let f = flags(node, bootstrap);
    let args: Vec<&str> = f.iter().map(String::as_str).collect();
    KubeletProcess::start(Path::new(KUBELET), node, &args).await
}

fn clean_csrs() {
    let (_, names, _) = kubectl(&["get", "csr", "-o", "name"]);
    for n in names.lines() {
        kubectl(&["delete", n, "--wait=false"]);
    }
}

/// A test node with the configuration and the bootstrap kubeconfig, no node object and no
/// signing requests left from earlier runs.
async fn fresh_node() -> (TestNode, PathBuf) {
    control_plane_ready().await;
    clean_csrs();
    kubectl(&["delete", "node", NODE, "--ignore-not-found"]);
    let node = TestNode::new();
    write_config(&node);
    let bootstrap = bootstrap_kubeconfig(node.dir.path(), &token());
    (node, bootstrap)
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn bootstrap_serving_certificate_and_restart() {
    let (node, bootstrap) = fresh_node().await;
    let kubelet = start(&node, &bootstrap).await;
    wait_node_ready(Duration::from_secs(60)).await;

    let pki = node.dir.path().join("pki");
    let current = pki.join("kubelet-client-current.pem");
    let target = std::fs::read_link(&current).expect("kubelet-client-current.pem is a link");
    assert!(target.file_name().unwrap().to_str().unwrap().starts_with("kubelet-client-2"), "{target:?}");
    assert_eq!(mode(&target), 0o600);
    let kubeconfig = node.dir.path().join("kubelet.conf");
    assert_eq!(mode(&kubeconfig), 0o600);
    assert!(std::fs::read_to_string(&kubeconfig).unwrap().contains(&current.display().to_string()));
    let subject = Command::new("openssl").args(["x509", "-noout", "-subject", "-issuer", "-in"]).arg(&target).output().unwrap();
    let subject = String::from_utf8_lossy(&subject.stdout);
    assert!(subject.contains("O = system:nodes, CN = system:node:knode-node") && subject.contains("CN = knode-ca"), "{subject}");
    let client = csrs(CLIENT_SIGNER);
    assert_eq!(client.len(), 1, "one client request");
    let id = token().split('.').next().unwrap().to_string();
    assert_eq!(client[0].spec.username.as_deref(), Some(format!("system:bootstrap:{id}").as_str()));
    assert!(client[0].status.as_ref().unwrap().conditions.as_ref().unwrap().iter().any(|c| c.type_ == "Approved"), "auto-approved");

    // The serving certificate: requested for the node's name and IP, served once approved.
    let serving = wait_for("a kubelet-serving request", Duration::from_secs(30), || async {
        csrs("kubernetes.io/kubelet-serving").into_iter().next()
    })
    .await;
    assert_eq!(serving.spec.username.as_deref(), Some("system:node:knode-node"));
    let name = serving.metadata.name.unwrap();
    let (ok, _, err) = kubectl(&["certificate", "approve", &name]);
    assert!(ok, "approve {name}: {err}");
    wait_for("port 10250 serving the issued certificate", Duration::from_secs(30), || async {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
                "--cacert",
                &format!("{CP_DIR}/pki/ca.crt"),
                &format!("https://{NODE_IP}:10250/healthz"),
            ])
            .output()
            .ok()?;
        (String::from_utf8_lossy(&out.stdout) == "401").then_some(())
    })
    .await;
    assert!(pki.join("kubelet-server-current.pem").exists());
    // kubectl logs goes through the API server, which verifies the kubelet's serving
    // certificate against the cluster CA (--kubelet-certificate-authority).
    apply(&node, "served", &busy_pod_yaml("served-logs", "echo served-over-the-issued-certificate; sleep 3600", ""));
    pod_running("served-logs", Duration::from_secs(60)).await;
    let logs = wait_for("kubectl logs over the issued certificate", Duration::from_secs(30), || async {
        let (ok, out, _) = kubectl(&["logs", "served-logs"]);
        (ok && out.contains("served-over-the-issued-certificate")).then_some(out)
    })
    .await;
    assert!(logs.contains("served-over-the-issued-certificate"));
    kubectl(&["delete", "pod", "served-logs", "--grace-period=0", "--force"]);
    // The certificate managers' metrics, as upstream registers them with both rotations on:
    // seconds to each certificate's notAfter (issued for a year by the harness signer).
    let (ok, metrics, err) = kubectl(&["get", "--raw", &format!("/api/v1/nodes/{NODE}/proxy/metrics")]);
    assert!(ok, "{err}");
    let gauge = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name} in\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(gauge("kubelet_certificate_manager_client_ttl_seconds") > 3600.0, "{metrics}");
    assert!(gauge("kubelet_certificate_manager_server_ttl_seconds") > 3600.0, "{metrics}");
    assert_eq!(gauge("kubelet_certificate_manager_client_expiration_renew_errors"), 0.0);
    assert_eq!(gauge("kubelet_server_expiration_renew_errors"), 0.0);
    assert!(metrics.contains("kubelet_certificate_manager_server_rotation_seconds_count 0\n"), "no rotation yet: {metrics}");

    // A restart reuses the certificate: no new client request.
    kubelet.stop().await;
    let kubelet = start(&node, &bootstrap).await;
    wait_node_ready(Duration::from_secs(60)).await;
    assert!(kubelet.log_text().contains("kubeconfig exists and is valid; skipping TLS bootstrap"));
    assert_eq!(csrs(CLIENT_SIGNER).len(), 1, "no new client request after a restart");
    teardown(kubelet).await;
    clean_csrs();
}

/// A client certificate for the node from the harness CA, valid from `from` to `to` seconds
/// around now: certificate and key PEM.
fn short_lived_client_cert(from: i64, to: i64) -> String {
    harness_client_cert(&format!("system:node:{NODE}"), Some("system:nodes"), from, to)
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn a_client_certificate_about_to_expire_is_rotated_without_a_restart() {
    let (node, bootstrap) = fresh_node().await;
    // Valid for 130 s, 100 of them gone: renewed within ~20 s, expired 30 s from now.
    let pki = node.dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let old = pki.join("kubelet-client-2000-01-01-00-00-00.pem");
    std::fs::write(&old, short_lived_client_cert(-100, 30)).unwrap();
    std::os::unix::fs::symlink(&old, pki.join("kubelet-client-current.pem")).unwrap();
    let current = pki.join("kubelet-client-current.pem").display().to_string();
    std::fs::write(
        node.dir.path().join("kubelet.conf"),
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: default-cluster\n  cluster: {{server: {SERVER}, certificate-authority: {CP_DIR}/pki/ca.crt}}\nusers:\n- name: default-auth\n  user: {{client-certificate: {current}, client-key: {current}}}\ncontexts:\n- name: default-context\n  context: {{cluster: default-cluster, user: default-auth}}\ncurrent-context: default-context\n"),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let kubelet = start(&node, &bootstrap).await;
    wait_node_ready(Duration::from_secs(60)).await;
    assert!(kubelet.log_text().contains("skipping TLS bootstrap"), "the seeded certificate is still valid");
    wait_for("the client certificate rotated", Duration::from_secs(60), || async {
        (std::fs::read_link(pki.join("kubelet-client-current.pem")).ok()? != old).then_some(())
    })
    .await;
    wait_for("the API client switched", Duration::from_secs(10), || async {
        kubelet.log_text().contains("API client switched to the rotated client certificate").then_some(())
    })
    .await;
    let renewal = csrs(CLIENT_SIGNER);
    assert_eq!(renewal.len(), 1);
    assert_eq!(renewal[0].spec.username.as_deref(), Some("system:node:knode-node"), "the renewal is authenticated by the old certificate");
    // Past the old certificate's expiry the lease is still renewed with the new one.
    let expired_at = Duration::from_secs(35);
    if let Some(rest) = expired_at.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let renew_time =
        || kubectl_json::<Lease>(&["get", "lease", "-n", "kube-node-lease", NODE]).and_then(|l| l.spec?.renew_time).map(|t| t.0);
    let before = renew_time().expect("lease");
    wait_for("a lease renewal after the old certificate expired", Duration::from_secs(30), || async {
        renew_time().filter(|t| *t > before).map(|_| ())
    })
    .await;
    assert!(!kubelet.log_text().contains("certificate has expired"), "{}", kubelet.log_text());
    teardown(kubelet).await;
    clean_csrs();
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn a_wrong_bootstrap_token_stops_start_up_with_a_clear_error() {
    control_plane_ready().await;
    let node = TestNode::new();
    write_config(&node);
    let bootstrap = bootstrap_kubeconfig(node.dir.path(), "abcdef.0123456789abcdef");
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(KUBELET)
            .arg(format!("--config={}", node.config_path().display()))
            .arg(format!("--root-dir={}", node.root().display()))
            .args(flags(&node, &bootstrap))
            .output(),
    )
    .await
    .expect("the kubelet exits")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TLS bootstrap: cannot create certificate signing request: certificatesigningrequests/node-csr-")
            && stderr.contains("401"),
        "{stderr}"
    );
    assert!(!node.dir.path().join("kubelet.conf").exists(), "no kubeconfig written");
}

/// A bootstrap identity that may create signing requests but is not auto-approved (it is
/// neither a bootstrap token nor a node): its request waits for an admin, who denies it here.
/// The kubelet stops with the request's name and the denial's reason.
#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn a_denied_signing_request_stops_start_up_with_its_name_and_reason() {
    let (node, _) = fresh_node().await;
    const USER: &str = "knode-e2e-csr-requester";
    let (ok, _, err) =
        kubectl(&["create", "clusterrolebinding", USER, "--clusterrole=system:node-bootstrapper", &format!("--user={USER}")]);
    assert!(ok || err.contains("already exists"), "{err}");
    let cert = node.dir.path().join("requester.pem");
    std::fs::write(&cert, harness_client_cert(USER, None, -60, 3600)).unwrap();
    let bootstrap = node.dir.path().join("bootstrap-kubelet.conf");
    std::fs::write(
        &bootstrap,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: knode\n  cluster: {{server: {SERVER}, certificate-authority: {CP_DIR}/pki/ca.crt}}\nusers:\n- name: r\n  user: {{client-certificate: {0}, client-key: {0}}}\ncontexts:\n- name: r\n  context: {{cluster: knode, user: r}}\ncurrent-context: r\n", cert.display()),
    )
    .unwrap();
    let child = tokio::process::Command::new(KUBELET)
        .arg(format!("--config={}", node.config_path().display()))
        .arg(format!("--root-dir={}", node.root().display()))
        .args(flags(&node, &bootstrap))
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pending = wait_for("the kubelet's pending request", Duration::from_secs(30), || async {
        csrs(CLIENT_SIGNER).into_iter().find(|c| c.spec.username.as_deref() == Some(USER))
    })
    .await;
    assert!(pending.status.as_ref().and_then(|s| s.conditions.as_ref()).is_none_or(|c| c.is_empty()), "not auto-approved: {pending:?}");
    let name = pending.metadata.name.unwrap();
    let (ok, _, err) = kubectl(&["certificate", "deny", &name]);
    assert!(ok, "{err}");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.expect("the kubelet exits").unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("certificate signing request {name} is denied, reason: KubectlDeny")), "{stderr}");
    assert!(!node.dir.path().join("kubelet.conf").exists(), "no kubeconfig written");
    kubectl(&["delete", "clusterrolebinding", USER]);
    clean_csrs();
}
