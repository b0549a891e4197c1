//! Unit tests of static-pod defaulting and UID generation.

use std::path::PathBuf;

use super::*;
use crate::decode_manifest;

fn pod(yaml: &str) -> Pod {
    decode_manifest("t.yaml", yaml.as_bytes()).unwrap().remove(0)
}

const WEB: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: nginx\n    image: nginx\n    ports: [{containerPort: 80}]\n    resources:\n      limits: {cpu: 500m, memory: 64Mi}\n      requests: {cpu: 100m}\n";

fn file(path: &str) -> SourceRef {
    SourceRef::File(PathBuf::from(path))
}

#[test]
fn uid_is_stable_and_depends_on_node_path_and_content() {
    let p = pod(WEB);
    let a = static_pod_uid(&p, "node-a", &file("/etc/kubernetes/manifests/web.yaml"));
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(a, static_pod_uid(&pod(WEB), "node-a", &file("/etc/kubernetes/manifests/web.yaml")));
    assert_ne!(a, static_pod_uid(&p, "node-b", &file("/etc/kubernetes/manifests/web.yaml")));
    assert_ne!(a, static_pod_uid(&p, "node-a", &file("/etc/kubernetes/manifests/web2.yaml")));
    let changed = pod(&WEB.replace("image: nginx", "image: nginx:1.27"));
    assert_ne!(a, static_pod_uid(&changed, "node-a", &file("/etc/kubernetes/manifests/web.yaml")));
    let url = static_pod_uid(&p, "node-a", &SourceRef::Url("http://x/pods".into()));
    assert_ne!(a, url);
}

#[test]
fn uid_ignores_seen_annotation_and_key_order() {
    let mut p = pod(WEB);
    let source = file("/m/web.yaml");
    let before = static_pod_uid(&p, "n", &source);
    p.metadata.annotations.get_or_insert_default().insert(CONFIG_SEEN_ANNOTATION.into(), "t".into());
    assert_eq!(before, static_pod_uid(&p, "n", &source));
    let json = r#"{"kind":"Pod","spec":{"containers":[{"ports":[{"containerPort":80}],"image":"nginx","name":"nginx","resources":{"requests":{"cpu":"100m"},"limits":{"memory":"64Mi","cpu":"500m"}}}]},"metadata":{"name":"web"},"apiVersion":"v1"}"#;
    let from_json = decode_manifest("j", json.as_bytes()).unwrap().remove(0);
    assert_eq!(before, static_pod_uid(&from_json, "n", &source));
}

#[test]
fn static_defaults_name_namespace_annotations_tolerations() {
    let mut p = pod(WEB);
    apply_static_pod_defaults(&mut p, "Node-A", &file("/m/web.yaml"));
    let uid = p.metadata.uid.clone().unwrap();
    assert_eq!(p.metadata.name.as_deref(), Some("web-node-a"));
    assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
    let annotations = p.metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations[CONFIG_HASH_ANNOTATION], uid);
    assert_eq!(annotations[CONFIG_SOURCE_ANNOTATION], "file");
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("Node-A"));
    let tolerations = spec.tolerations.as_ref().unwrap();
    assert_eq!(tolerations.len(), 1);
    assert_eq!(tolerations[0].operator.as_deref(), Some("Exists"));
    assert_eq!(tolerations[0].effect.as_deref(), Some("NoExecute"));

    let mut from_url = pod(WEB);
    apply_static_pod_defaults(&mut from_url, "n", &SourceRef::Url("http://x".into()));
    assert!(from_url.spec.unwrap().tolerations.is_none());
    assert_eq!(from_url.metadata.annotations.unwrap()[CONFIG_SOURCE_ANNOTATION], "http");
}

#[test]
fn existing_uid_and_namespace_are_kept() {
    let yaml = WEB.replace("  name: web\n", "  name: web\n  namespace: kube-system\n  uid: fixed\n");
    let mut p = pod(&yaml);
    apply_static_pod_defaults(&mut p, "n", &file("/m/web.yaml"));
    assert_eq!(p.metadata.uid.as_deref(), Some("fixed"));
    assert_eq!(p.metadata.namespace.as_deref(), Some("kube-system"));
}

#[test]
fn api_defaults() {
    let mut p = pod(WEB);
    apply_api_defaults(&mut p);
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.enable_service_links, Some(true));
    assert!(spec.security_context.is_some());
    let c = &spec.containers[0];
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(c.termination_message_path.as_deref(), Some("/dev/termination-log"));
    assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
    let port = &c.ports.as_ref().unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(port.host_port, None, "hostPort is only defaulted for hostNetwork pods");
    let requests = c.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert_eq!(requests["cpu"].0, "100m", "explicit requests win");
    assert_eq!(requests["memory"].0, "64Mi", "missing requests default to limits");
}

#[test]
fn host_network_ports_and_pull_policies() {
    let mut p = pod(&WEB.replace("spec:\n", "spec:\n  hostNetwork: true\n"));
    apply_api_defaults(&mut p);
    let c = &p.spec.as_ref().unwrap().containers[0];
    assert_eq!(c.ports.as_ref().unwrap()[0].host_port, Some(80));

    for (image, want) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("localhost:5000/nginx", "Always"),
        ("localhost:5000/nginx:v1", "IfNotPresent"),
        ("nginx@sha256:0123", "IfNotPresent"),
    ] {
        let mut policy = None;
        default_pull_policy(&mut policy, Some(image));
        assert_eq!(policy.as_deref(), Some(want), "{image}");
    }
}

#[test]
fn probe_and_volume_defaults() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  volumes: [{name: s, secret: {secretName: x}}]\n  containers:\n  - name: c\n    image: x:1\n    livenessProbe: {httpGet: {port: 8080}}\n";
    let mut p = pod(yaml);
    apply_api_defaults(&mut p);
    let spec = p.spec.unwrap();
    assert_eq!(spec.volumes.unwrap()[0].secret.as_ref().unwrap().default_mode, Some(0o644));
    let probe = spec.containers[0].liveness_probe.clone().unwrap();
    assert_eq!((probe.timeout_seconds, probe.period_seconds), (Some(1), Some(10)));
    assert_eq!((probe.success_threshold, probe.failure_threshold), (Some(1), Some(3)));
    let http = probe.http_get.unwrap();
    assert_eq!((http.path.as_deref(), http.scheme.as_deref()), (Some("/"), Some("HTTP")));
}
