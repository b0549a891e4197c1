//! Defaulting of static pods: the API's own v1 defaults plus the kubelet's static-pod
//! defaults from upstream `pkg/kubelet/config/common.go` (`applyDefaults`).
//!
//! The generated UID is an MD5 over `host:<node>` + `file:<path>` (or `url:<url>`) and the
//! pod. Upstream hashes the Go object with `DeepHashObject`; we hash the *canonical JSON*
//! of the pod instead (object keys sorted, no whitespace), after the API defaults and before
//! any kubelet-specific field is set, with the `kubernetes.io/config.seen` annotation left
//! out. Like upstream, the UID is only generated when the manifest carries none. The
//! values therefore differ from a Go kubelet's, but share its properties: stable across
//! restarts, different per node, per path and per content.
//!
//! Pure functions only; the first-seen time is stamped later by [`crate::PodConfig`].

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSecurityContext, PodSpec, Probe, Toleration};
use md5::{Digest, Md5};
use serde_json::Value;

use crate::{CONFIG_HASH_ANNOTATION, CONFIG_SEEN_ANNOTATION, CONFIG_SOURCE_ANNOTATION, SourceRef};

/// Mode 0644, upstream `DefaultMode` of secret, configMap, downwardAPI and projected volumes.
const DEFAULT_VOLUME_MODE: i32 = 0o644;

/// Applies the static-pod defaults to a freshly decoded pod (apply it exactly once: the
/// name suffix is not idempotent).
///
/// In order: the API defaults ([`apply_api_defaults`]); a UID derived from node, origin
/// and content if the manifest has none; `name` becomes `<name>-<node>` (node lowercased);
/// `namespace` defaults to `default`; `spec.nodeName` is the node; the `config.hash` and
/// `config.source` annotations; and for files a toleration of every `NoExecute` taint.
pub fn apply_static_pod_defaults(pod: &mut Pod, node_name: &str, source: &SourceRef) {
    apply_api_defaults(pod);
    if pod.metadata.uid.as_deref().unwrap_or_default().is_empty() {
        pod.metadata.uid = Some(static_pod_uid(pod, node_name, source));
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    pod.metadata.name = Some(format!("{name}-{}", node_name.to_lowercase()));
    if pod.metadata.namespace.as_deref().unwrap_or_default().is_empty() {
        pod.metadata.namespace = Some("default".to_owned());
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let annotations = pod.metadata.annotations.get_or_insert_default();
    annotations.insert(CONFIG_HASH_ANNOTATION.to_owned(), uid);
    annotations.insert(CONFIG_SOURCE_ANNOTATION.to_owned(), source.kind().as_str().to_owned());

    let spec = pod.spec.get_or_insert_default();
    spec.node_name = Some(node_name.to_owned());
    if matches!(source, SourceRef::File(_)) {
        let tolerate_all =
            Toleration { operator: Some("Exists".to_owned()), effect: Some("NoExecute".to_owned()), ..Toleration::default() };
        let tolerations = spec.tolerations.get_or_insert_default();
        if !tolerations.iter().any(|t| same_toleration(t, &tolerate_all)) {
            tolerations.push(tolerate_all);
        }
    }
}

/// The UID a static pod gets: hex MD5 of origin and canonical content (see module docs).
pub fn static_pod_uid(pod: &Pod, node_name: &str, source: &SourceRef) -> String {
    let mut hasher = Md5::new();
    match source {
        SourceRef::File(path) => {
            hasher.update(format!("host:{node_name}"));
            hasher.update(format!("file:{}", path.display()));
        }
        SourceRef::Url(url) => hasher.update(format!("url:{url}")),
    }
    let mut value = serde_json::to_value(pod).unwrap_or(Value::Null);
    let emptied = value.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut).is_some_and(|annotations| {
        annotations.remove(CONFIG_SEEN_ANNOTATION);
        annotations.is_empty()
    });
    if emptied {
        // No annotations and only `config.seen` hash alike.
        value.get_mut("metadata").and_then(Value::as_object_mut).map(|m| m.remove("annotations"));
    }
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    hasher.update(canonical.as_bytes());
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON with object keys sorted, independent of serde_json's map ordering features.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Upstream `Toleration.MatchToleration`: key, operator, value and effect are equal.
fn same_toleration(a: &Toleration, b: &Toleration) -> bool {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    s(&a.key) == s(&b.key) && s(&a.operator) == s(&b.operator) && s(&a.value) == s(&b.value) && s(&a.effect) == s(&b.effect)
}

/// The v1 API defaults a kubelet relies on (upstream `pkg/apis/core/v1/defaults.go`).
pub fn apply_api_defaults(pod: &mut Pod) {
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    default_pod_spec(spec);
    let host_network = spec.host_network.unwrap_or(false);
    let init = spec.init_containers.iter_mut().flatten();
    for container in spec.containers.iter_mut().chain(init) {
        default_container(container, host_network);
    }
    for ephemeral in spec.ephemeral_containers.iter_mut().flatten() {
        let policy = &mut ephemeral.image_pull_policy;
        default_pull_policy(policy, ephemeral.image.as_deref());
        set(&mut ephemeral.termination_message_path, "/dev/termination-log");
        set(&mut ephemeral.termination_message_policy, "File");
        ephemeral.ports.iter_mut().flatten().for_each(default_port_protocol);
    }
}

fn default_pod_spec(spec: &mut PodSpec) {
    set(&mut spec.dns_policy, "ClusterFirst");
    set(&mut spec.restart_policy, "Always");
    set(&mut spec.scheduler_name, "default-scheduler");
    spec.security_context.get_or_insert_with(PodSecurityContext::default);
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.enable_service_links.get_or_insert(true);
    for volume in spec.volumes.iter_mut().flatten() {
        if let Some(secret) = volume.secret.as_mut() {
            secret.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        }
        if let Some(config_map) = volume.config_map.as_mut() {
            config_map.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        }
        if let Some(downward) = volume.downward_api.as_mut() {
            downward.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        }
        if let Some(projected) = volume.projected.as_mut() {
            projected.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        }
    }
}

fn default_container(container: &mut Container, host_network: bool) {
    default_pull_policy(&mut container.image_pull_policy, container.image.as_deref());
    set(&mut container.termination_message_path, "/dev/termination-log");
    set(&mut container.termination_message_policy, "File");
    for port in container.ports.iter_mut().flatten() {
        default_port_protocol(port);
        if host_network && port.host_port.unwrap_or(0) == 0 {
            port.host_port = Some(port.container_port);
        }
    }
    // Requests default to limits, per resource (upstream SetDefaults_Pod).
    if let Some(resources) = container.resources.as_mut().filter(|r| r.limits.is_some()) {
        let limits = resources.limits.clone().unwrap_or_default();
        let requests = resources.requests.get_or_insert_default();
        for (name, quantity) in limits {
            requests.entry(name).or_insert(quantity);
        }
    }
    for env in container.env.iter_mut().flatten() {
        if let Some(field_ref) = env.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            set(&mut field_ref.api_version, "v1");
        }
    }
    let probes = [&mut container.liveness_probe, &mut container.readiness_probe, &mut container.startup_probe];
    for probe in probes.into_iter().flatten() {
        default_probe(probe);
    }
}

fn default_probe(probe: &mut Probe) {
    probe.timeout_seconds.get_or_insert(1);
    probe.period_seconds.get_or_insert(10);
    probe.success_threshold.get_or_insert(1);
    probe.failure_threshold.get_or_insert(3);
    if let Some(http) = probe.http_get.as_mut() {
        set(&mut http.path, "/");
        set(&mut http.scheme, "HTTP");
    }
}

fn default_port_protocol(port: &mut ContainerPort) {
    set(&mut port.protocol, "TCP");
}

/// `Always` when the image has no tag or the tag `latest`, else `IfNotPresent`
/// (a digest without a tag counts as pinned), as upstream `SetDefaults_Container`.
fn default_pull_policy(policy: &mut Option<String>, image: Option<&str>) {
    if policy.as_deref().unwrap_or_default().is_empty() {
        let tag = image_tag(image.unwrap_or_default());
        let always = match tag {
            Some(tag) => tag == "latest",
            None => !image.unwrap_or_default().contains('@'),
        };
        *policy = Some(if always { "Always" } else { "IfNotPresent" }.to_owned());
    }
}

/// The tag of an image reference: after the last ':' of the last path component.
fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or_default();
    let last = without_digest.rsplit('/').next().unwrap_or_default();
    last.split_once(':').map(|(_, tag)| tag)
}

fn set(field: &mut Option<String>, default: &str) {
    if field.as_deref().unwrap_or_default().is_empty() {
        *field = Some(default.to_owned());
    }
}

#[cfg(test)]
#[path = "defaults_tests.rs"]
mod tests;
