//! Unit tests of static pod validation and its messages.

use std::path::PathBuf;

use super::*;
use crate::{SourceRef, apply_static_pod_defaults, decode_manifest};

fn defaulted(yaml: &str) -> Pod {
    let mut pod = decode_manifest("t.yaml", yaml.as_bytes()).unwrap().remove(0);
    apply_static_pod_defaults(&mut pod, "node1", &SourceRef::File(PathBuf::from("/m/t.yaml")));
    pod
}

fn errors(yaml: &str) -> String {
    validate_pod(&defaulted(yaml)).unwrap_err().to_string()
}

const HEAD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n";

#[test]
fn valid_pod_passes() {
    let yaml = format!(
        "{HEAD}  volumes: [{{name: data, emptyDir: {{}}}}]\n  containers:\n  - name: web\n    image: nginx\n    env: [{{name: MY_VAR.x, value: a}}]\n    ports: [{{containerPort: 80, protocol: UDP}}]\n    volumeMounts: [{{name: data, mountPath: /data}}]\n    resources: {{limits: {{cpu: 1}}, requests: {{cpu: 500m}}}}\n"
    );
    validate_pod(&defaulted(&yaml)).unwrap();
}

#[test]
fn container_name_message_matches_upstream() {
    let yaml = format!("{HEAD}  containers:\n  - {{name: a, image: x}}\n  - {{name: Web_1, image: x}}\n");
    assert_eq!(
        errors(&yaml),
        "spec.containers[1].name: Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    );
}

#[test]
fn duplicate_names_across_init_and_regular_containers() {
    let yaml = format!("{HEAD}  initContainers: [{{name: a, image: x}}]\n  containers: [{{name: a, image: x}}]\n");
    assert_eq!(errors(&yaml), "spec.containers[0].name: Duplicate value: \"a\"");
}

#[test]
fn missing_containers_and_image() {
    assert_eq!(errors(&format!("{HEAD}  containers: []\n")), "spec.containers: Required value");
    let yaml = format!("{HEAD}  containers: [{{name: a}}]\n");
    assert_eq!(errors(&yaml), "spec.containers[0].image: Required value");
}

#[test]
fn bad_name_namespace_and_policy() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name, namespace: \"kube.system\"}\nspec:\n  restartPolicy: Sometimes\n  terminationGracePeriodSeconds: -1\n  containers: [{name: a, image: x}]\n";
    let message = errors(yaml);
    assert!(message.starts_with("[metadata.name: Invalid value: \"Bad_Name-node1\": a lowercase RFC 1123 subdomain"), "{message}");
    assert!(message.contains("metadata.namespace: Invalid value: \"kube.system\": a lowercase RFC 1123 label"), "{message}");
    assert!(
        message.contains("spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""),
        "{message}"
    );
    assert!(message.contains("spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"), "{message}");
}

#[test]
fn ports_protocols_and_env() {
    let yaml = format!(
        "{HEAD}  containers:\n  - name: a\n    image: x\n    ports: [{{containerPort: 0}}, {{containerPort: 70000, hostPort: 80, protocol: ICMP}}]\n    env: [{{name: 1BAD}}, {{name: \"\"}}]\n"
    );
    let e = validate_pod(&defaulted(&yaml)).unwrap_err();
    let fields: Vec<&str> = e.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.containers[0].ports[0].containerPort",
            "spec.containers[0].ports[1].containerPort",
            "spec.containers[0].ports[1].protocol",
            "spec.containers[0].env[0].name",
            "spec.containers[0].env[1].name",
        ]
    );
    assert_eq!(e.0[0].to_string(), "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive");
    assert_eq!(
        e.0[2].to_string(),
        "spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
    );
    assert!(e.0[3].to_string().contains("a valid environment variable name must consist of"));
    assert_eq!(e.0[4].to_string(), "spec.containers[0].env[1].name: Required value");
}

#[test]
fn resource_quantities() {
    let yaml = format!(
        "{HEAD}  containers:\n  - name: a\n    image: x\n    resources: {{limits: {{cpu: abc, memory: 1Gi}}, requests: {{memory: 2Gi}}}}\n"
    );
    let e = validate_pod(&defaulted(&yaml)).unwrap_err();
    assert_eq!(
        e.0[0].to_string(),
        "spec.containers[0].resources.limits[cpu]: Invalid value: \"abc\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert!(
        e.to_string()
            .contains("spec.containers[0].resources.requests: Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi"),
        "{e}"
    );
}

#[test]
fn unknown_volume_mount() {
    let yaml = format!("{HEAD}  containers:\n  - name: a\n    image: x\n    volumeMounts: [{{name: nope, mountPath: /x}}]\n");
    assert_eq!(errors(&yaml), "spec.containers[0].volumeMounts[0].name: Not found: \"nope\"");
}

#[test]
fn name_helpers() {
    assert!(is_dns1123_label("a-1"));
    assert!(!is_dns1123_label("-a"));
    assert!(!is_dns1123_label("a."));
    assert!(is_dns1123_subdomain("a.b-c"));
    assert!(!is_dns1123_subdomain("a..b"));
    assert!(is_env_var_name("_x.y-z"));
    assert!(!is_env_var_name("9x"));
}
