//! End-to-end, cluster mode, certificate projections: a pod's projected volume carries
//! `clusterTrustBundle` sources by name, by signer with a label selector, by signer with an empty
//! selector (every bundle of the signer, each certificate once) and an optional missing one (an
//! empty file); a bundle changed in the API reaches the running container; a non-optional missing
//! bundle holds the pod in `ContainerCreating` with a `FailedMount` event naming it. A pod whose
//! containers all run as one user gets its credential files as that user, mode 0600 plus the
//! fsGroup's group read. A `podCertificate` source files a PodCertificateRequest (the test is
//! the signer: it issues a certificate for the request's public key); the pod starts with the
//! key and the chain, the key matching the certificate; a denied request holds its pod with a
//! `FailedMount` event naming it. Real control plane (1.37, Node authorizer and NodeRestriction
//! checking the requests), real containerd, real `kubectl`.

mod cluster_support;

use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, wait_for};
use k8s_openapi::api::certificates::v1::PodCertificateRequest;
use k8s_openapi::api::core::v1::Pod;
use rcgen::PublicKeyData;

const SIGNER: &str = "example.com/e2e-signer";

fn ca_pem(name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

/// A ClusterTrustBundle named `name` (for `signer` when given) holding `certs`.
fn bundle_yaml(name: &str, signer: Option<&str>, tier: &str, certs: &[&str]) -> String {
    let pem: String = certs.concat().lines().map(|l| format!("    {l}\n")).collect();
    let signer = signer.map(|s| format!("  signerName: {s}\n")).unwrap_or_default();
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: ClusterTrustBundle\nmetadata: {{name: {name}, labels: {{tier: {tier}}}}}\nspec:\n{signer}  trustBundle: |\n{pem}"
    )
}

/// Prints, every second, how many certificates each projected file holds and the token's
/// mode, owner and group.
fn pod_yaml() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: e2e-ctb, namespace: default}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {{runAsUser: 1000, fsGroup: 2000}}
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "while true; do echo named=$(grep -c BEGIN /ctb/named.pem) root=$(grep -c BEGIN /ctb/root.pem) all=$(grep -c BEGIN /ctb/all.pem) missing=$(wc -c < /ctb/missing.pem) token=$(stat -L -c %a:%u:%g /ctb/token) end; sleep 1; done"]
    volumeMounts:
    - {{name: anchors, mountPath: /ctb, readOnly: true}}
  volumes:
  - name: anchors
    projected:
      sources:
      - clusterTrustBundle: {{name: e2e-ctb-named, path: named.pem}}
      - clusterTrustBundle: {{signerName: {SIGNER}, labelSelector: {{matchLabels: {{tier: root}}}}, path: root.pem}}
      - clusterTrustBundle: {{signerName: {SIGNER}, labelSelector: {{}}, path: all.pem}}
      - clusterTrustBundle: {{name: e2e-ctb-absent, optional: true, path: missing.pem}}
      - serviceAccountToken: {{path: token}}
"#,
        image = busybox_image()
    )
}

fn missing_bundle_pod_yaml() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: e2e-ctb-missing, namespace: default}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: {image}, imagePullPolicy: Never, command: ["sleep", "3600"], volumeMounts: [{{name: anchors, mountPath: /ctb}}]}}
  volumes:
  - name: anchors
    projected:
      sources:
      - clusterTrustBundle: {{name: e2e-ctb-nope, path: ca.pem}}
"#,
        image = busybox_image()
    )
}

async fn log_line(node: &TestNode, pod: &Pod, needle: &str, timeout: Duration) -> String {
    let (name, log) = (pod.metadata.name.clone().unwrap(), main_log(node, pod));
    wait_for(&format!("{name} log containing {needle:?}"), timeout, || async {
        let text = std::fs::read_to_string(&log).ok()?;
        text.lines().rev().find(|l| l.contains(" end")).filter(|l| l.contains(needle)).map(String::from)
    })
    .await
}

const BUNDLES: [&str; 4] = ["e2e-ctb-named", "example.com:e2e-signer:root", "example.com:e2e-signer:leaf", "example.com:other:root"];

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn cluster_trust_bundles_are_projected_and_follow_updates() {
    control_plane_ready().await;
    kubectl(&["delete", "pod", "e2e-ctb", "e2e-ctb-missing", "--ignore-not-found", "--wait=false"]);
    for b in BUNDLES {
        kubectl(&["delete", "clustertrustbundle", b, "--ignore-not-found"]);
    }
    let node = TestNode::new();
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;

    let (a, b, c, d) = (ca_pem("e2e-a"), ca_pem("e2e-b"), ca_pem("e2e-c"), ca_pem("e2e-d"));
    apply(&node, "named", &bundle_yaml(BUNDLES[0], None, "root", &[&a]));
    apply(&node, "root", &bundle_yaml(BUNDLES[1], Some(SIGNER), "root", &[&b, &a]));
    // `a` again: the signer's union holds it once.
    apply(&node, "leaf", &bundle_yaml(BUNDLES[2], Some(SIGNER), "leaf", &[&c, &a]));
    apply(&node, "other", &bundle_yaml(BUNDLES[3], Some("example.com/other"), "root", &[&d]));
    apply(&node, "pod", &pod_yaml());
    apply(&node, "missing", &missing_bundle_pod_yaml());

    let pod = pod_running("e2e-ctb", Duration::from_secs(90)).await;
    // The token: 0600 for the pods' one user, plus group read for the fsGroup.
    log_line(&node, &pod, "named=1 root=2 all=3 missing=0 token=640:1000:2000", Duration::from_secs(30)).await;

    // The files on the node hold exactly the union, as PEM.
    let uid = pod.metadata.uid.clone().unwrap();
    let vol = node.root().join(format!("pods/{uid}/volumes/kubernetes.io~projected/anchors"));
    let all = std::fs::read_to_string(vol.join("all.pem")).unwrap();
    for cert in [&a, &b, &c] {
        let body = cert.lines().nth(1).unwrap();
        assert_eq!(all.matches(body).count(), 1, "each certificate once in all.pem:\n{all}");
    }
    assert!(!all.contains(d.lines().nth(1).unwrap()), "another signer's bundle stays out");

    // An update reaches the running container (cache TTL 10 s, then a sync).
    apply(&node, "root", &bundle_yaml(BUNDLES[1], Some(SIGNER), "root", &[&b, &a, &d]));
    log_line(&node, &pod, "named=1 root=3 all=4", Duration::from_secs(60)).await;

    // A bundle that does not exist holds its pod back, named in the event.
    let want = "MountVolume.SetUp failed for volume \"anchors\" : while getting ClusterTrustBundle: clustertrustbundle.certificates.k8s.io \"e2e-ctb-nope\" not found";
    wait_event("e2e-ctb-missing", "FailedMount", want, Duration::from_secs(60)).await;
    apply(&node, "nope", &bundle_yaml("e2e-ctb-nope", None, "root", &[&a]));
    pod_running("e2e-ctb-missing", Duration::from_secs(60)).await;

    kubectl(&["delete", "pod", "e2e-ctb", "e2e-ctb-missing", "--wait=false"]);
    for b in BUNDLES.iter().chain(&["e2e-ctb-nope"]) {
        kubectl(&["delete", "clustertrustbundle", b, "--ignore-not-found"]);
    }
    teardown(kubelet).await;
}

/// A pod with one `podCertificate` source writing all three files; prints what they hold.
fn pod_certificate_pod_yaml(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {{runAsUser: 1000, fsGroup: 2000}}
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "while true; do echo chain=$(grep -c 'BEGIN CERTIFICATE' /pc/chain.pem) key=$(grep -c 'BEGIN PRIVATE KEY' /pc/key.pem) bundle=$(grep -c BEGIN /pc/bundle.pem) end; sleep 1; done"]
    volumeMounts:
    - {{name: mesh, mountPath: /pc, readOnly: true}}
  volumes:
  - name: mesh
    projected:
      sources:
      - podCertificate: {{signerName: {SIGNER}, keyType: ECDSAP256, maxExpirationSeconds: 3600, credentialBundlePath: bundle.pem, keyPath: key.pem, certificateChainPath: chain.pem}}
"#,
        image = busybox_image()
    )
}

/// The PodCertificateRequest the kubelet filed for pod `pod`.
async fn request_for(pod: &str) -> PodCertificateRequest {
    wait_for(&format!("PodCertificateRequest for {pod}"), Duration::from_secs(60), || async {
        // kubectl answers a `List`, not a typed list.
        let list: serde_json::Value = kubectl_json(&["get", "podcertificaterequests", "-n", "default"])?;
        let items: Vec<PodCertificateRequest> = serde_json::from_value(list.get("items")?.clone()).ok()?;
        items.into_iter().find(|r| r.spec.pod_name == pod)
    })
    .await
}

fn patch_status(pcr: &PodCertificateRequest, status: serde_json::Value) {
    let name = pcr.metadata.name.clone().unwrap();
    let patch = serde_json::json!({ "status": status }).to_string();
    let (ok, _, err) =
        kubectl(&["patch", "podcertificaterequest", &name, "-n", "default", "--subresource=status", "--type=merge", "-p", &patch]);
    assert!(ok, "patch status of {name}: {err}");
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn pod_certificates_are_requested_issued_and_denied() {
    control_plane_ready().await;
    kubectl(&["delete", "pod", "e2e-podcert", "e2e-podcert-denied", "--ignore-not-found", "--wait=false"]);
    kubectl(&["delete", "podcertificaterequests", "--all", "-n", "default", "--ignore-not-found"]);
    let node = TestNode::new();
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    apply(&node, "pod", &pod_certificate_pod_yaml("e2e-podcert"));
    apply(&node, "denied", &pod_certificate_pod_yaml("e2e-podcert-denied"));

    // The kubelet's request names the pod, its service account and the node.
    let pcr = request_for("e2e-podcert").await;
    let pod: Pod = kubectl_json(&["get", "pod", "e2e-podcert"]).unwrap();
    let node_obj: k8s_openapi::api::core::v1::Node = kubectl_json(&["get", "node", NODE]).unwrap();
    assert_eq!(Some(&pcr.spec.pod_uid), pod.metadata.uid.as_ref());
    assert_eq!((pcr.spec.node_name.as_str(), Some(&pcr.spec.node_uid)), (NODE, node_obj.metadata.uid.as_ref()));
    assert_eq!(
        (pcr.spec.signer_name.as_str(), pcr.spec.service_account_name.as_str(), pcr.spec.max_expiration_seconds),
        (SIGNER, "default", Some(3600))
    );
    assert_eq!(pcr.metadata.owner_references.as_ref().map(|o| o[0].uid.clone()), pod.metadata.uid.clone());

    // Issue: a one-hour certificate for the request's public key, signed by a test CA.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "e2e pod CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let ca = rcgen::Issuer::new(ca_params, ca_key);
    let csr_der = rustls_pki_types::CertificateSigningRequestDer::from(pcr.spec.stub_pkc_s10_request.0.clone());
    let mut csr = rcgen::CertificateSigningRequestParams::from_der(&csr_der).unwrap();
    let not_before = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - time::Duration::seconds(30);
    let not_after = not_before + time::Duration::hours(1);
    csr.params.not_before = not_before;
    csr.params.not_after = not_after;
    csr.params.distinguished_name.push(rcgen::DnType::CommonName, "e2e-podcert");
    let leaf = csr.signed_by(&ca).unwrap().pem();
    patch_status(
        &pcr,
        serde_json::json!({
            "conditions": [{"type": "Issued", "status": "True", "reason": "Issued", "message": "issued by the e2e signer", "lastTransitionTime": rfc3339(not_before)}],
            "certificateChain": format!("{leaf}{ca_pem}"),
            "notBefore": rfc3339(not_before),
            "beginRefreshAt": rfc3339(not_before + time::Duration::minutes(40)),
            "notAfter": rfc3339(not_after),
        }),
    );
    let running = pod_running("e2e-podcert", Duration::from_secs(90)).await;
    log_line(&node, &running, "chain=2 key=1 bundle=3", Duration::from_secs(30)).await;
    let uid = running.metadata.uid.clone().unwrap();
    let vol = node.root().join(format!("pods/{uid}/volumes/kubernetes.io~projected/mesh"));
    let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(vol.join("key.pem")).unwrap()).unwrap();
    assert_eq!(key.public_key_raw(), csr.public_key.der_bytes(), "the key on the node is the one the certificate was issued for");
    // The key belongs to the pod's user, readable by its fsGroup, by no one else.
    for f in ["key.pem", "bundle.pem"] {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(vol.join(f)).unwrap();
        assert_eq!((m.mode() & 0o777, m.uid(), m.gid()), (0o640, 1000, 2000), "{f}");
    }
    assert_eq!(std::fs::read_to_string(vol.join("chain.pem")).unwrap(), format!("{leaf}{ca_pem}").replace("\r\n", "\n"));

    // A denied request holds its pod back, named in the event.
    let denied = request_for("e2e-podcert-denied").await;
    patch_status(
        &denied,
        serde_json::json!({"conditions": [{"type": "Denied", "status": "True", "reason": "E2EPolicy", "message": "not this pod", "lastTransitionTime": rfc3339(not_before)}]}),
    );
    let want = "was permanently denied: reason=\"E2EPolicy\" message=\"not this pod\"";
    wait_event("e2e-podcert-denied", "FailedMount", want, Duration::from_secs(60)).await;
    let st: Pod = kubectl_json(&["get", "pod", "e2e-podcert-denied"]).unwrap();
    assert_eq!(st.status.and_then(|s| s.phase).as_deref(), Some("Pending"));

    kubectl(&["delete", "pod", "e2e-podcert", "e2e-podcert-denied", "--wait=false"]);
    teardown(kubelet).await;
}
