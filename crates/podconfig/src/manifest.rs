//! Decoding of pod manifests: the bytes of a static pod file or a manifest URL body.
//!
//! Upstream (`common.go`) converts YAML to JSON and decodes with the universal decoder,
//! trying a single `Pod` first and then a `PodList`. Decoding here is pure (no I/O, no
//! clock) and never panics, so it can be fuzzed. Defaulting and validation are separate
//! steps ([`crate::apply_static_pod_defaults`], [`crate::validate_pod`]);
//! [`load_static_pods`] chains all three the way the sources need them.

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use crate::{SourceRef, ValidationErrors, apply_static_pod_defaults, validate_pod};

/// Why a manifest could not be turned into pods. Every variant names the manifest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManifestError {
    /// The bytes are neither YAML nor JSON.
    #[error("{name}: not valid YAML or JSON: {reason}")]
    Syntax {
        /// The manifest's file path or URL.
        name: String,
        /// The parser's message.
        reason: String,
    },
    /// The document is empty or not a mapping.
    #[error("{name}: expected an object with apiVersion and kind, found {found}")]
    NotAnObject {
        /// The manifest's file path or URL.
        name: String,
        /// What the document is instead (`a list`, `a string`, `an empty document`, ...).
        found: &'static str,
    },
    /// `kind` or `apiVersion` is missing.
    #[error("{name}: Object '{field}' is missing")]
    MissingTypeField {
        /// The manifest's file path or URL.
        name: String,
        /// The missing or empty field: `kind` or `apiVersion`.
        field: &'static str,
    },
    /// A kind other than a v1 Pod or PodList (e.g. `List`, `Deployment`).
    #[error("{name}: unsupported kind {kind:?} (apiVersion {api_version:?}): expected a v1 {expected}")]
    UnsupportedKind {
        /// The manifest's file path or URL.
        name: String,
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
        /// The kinds accepted (`Pod or PodList`).
        expected: &'static str,
    },
    /// The object has the right kind but its fields do not fit the Pod schema.
    #[error("{name}: couldn't decode {kind}: {reason}")]
    Decode {
        /// The manifest's file path or URL.
        name: String,
        /// The kind being decoded: `Pod` or `PodList`.
        kind: &'static str,
        /// The decoder's message, with the item index for a PodList.
        reason: String,
    },
    /// Decoded and defaulted, but the pod fails validation.
    #[error("{name}: invalid pod {pod:?}: {errors}")]
    Invalid {
        /// The manifest's file path or URL.
        name: String,
        /// The pod's `metadata.name` after static pod defaulting.
        pod: String,
        /// Every validation failure found in the pod.
        errors: ValidationErrors,
    },
}

/// A decoded manifest: upstream accepts exactly these two shapes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Manifest {
    Pod(Box<Pod>),
    List(Vec<Pod>),
}

/// Decodes a manifest holding a v1 `Pod` or a v1 `PodList`, in YAML or JSON.
///
/// `name` (a file path or URL) only appears in errors. No defaults are applied.
pub fn decode_manifest(name: &str, bytes: &[u8]) -> Result<Vec<Pod>, ManifestError> {
    match decode_object(name, bytes)? {
        Manifest::Pod(pod) => Ok(vec![*pod]),
        Manifest::List(pods) => Ok(pods),
    }
}

/// Decodes, defaults and validates a static pod manifest (a `Pod` or a `PodList`).
pub(crate) fn load_static_pods(bytes: &[u8], node_name: &str, source: &SourceRef) -> Result<Vec<Pod>, ManifestError> {
    let name = match source {
        SourceRef::File(path) => path.display().to_string(),
        SourceRef::Url(url) => url.clone(),
    };
    let mut pods = match decode_object(&name, bytes)? {
        Manifest::Pod(pod) => vec![*pod],
        Manifest::List(pods) => pods,
    };
    for pod in &mut pods {
        apply_static_pod_defaults(pod, node_name, source);
        if let Err(errors) = validate_pod(pod) {
            let pod = pod.metadata.name.clone().unwrap_or_default();
            return Err(ManifestError::Invalid { name, pod, errors });
        }
    }
    Ok(pods)
}

pub(crate) fn decode_object(name: &str, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let value = parse_document(name, bytes)?;
    let Value::Object(map) = &value else {
        return Err(ManifestError::NotAnObject { name: name.to_owned(), found: kind_of(&value) });
    };
    let type_field = |field: &'static str| match map.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ManifestError::MissingTypeField { name: name.to_owned(), field }),
    };
    let kind = type_field("kind")?;
    let api_version = type_field("apiVersion")?;
    let expected = "Pod or PodList";
    let unsupported =
        || ManifestError::UnsupportedKind { name: name.to_owned(), api_version: api_version.clone(), kind: kind.clone(), expected };
    if api_version != "v1" {
        return Err(unsupported());
    }
    match kind.as_str() {
        "Pod" => serde_json::from_value::<Pod>(value).map(|pod| Manifest::Pod(Box::new(pod))).map_err(|e| decode_error(name, "Pod", e)),
        "PodList" => {
            let items = map.get("items").cloned().unwrap_or(Value::Array(Vec::new()));
            let items = match items {
                Value::Null => Vec::new(),
                Value::Array(items) => items,
                other => {
                    let reason = format!("items: expected a list, found {}", kind_of(&other));
                    return Err(ManifestError::Decode { name: name.to_owned(), kind: "PodList", reason });
                }
            };
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| serde_json::from_value::<Pod>(item).map_err(|e| decode_error(name, "PodList", format!("items[{i}]: {e}"))))
                .collect::<Result<Vec<_>, _>>()
                .map(Manifest::List)
        }
        _ => Err(unsupported()),
    }
}

fn decode_error(name: &str, kind: &'static str, reason: impl ToString) -> ManifestError {
    ManifestError::Decode { name: name.to_owned(), kind, reason: reason.to_string() }
}

/// JSON is YAML, but serde_json gives better messages for JSON, so JSON goes there first.
fn parse_document(name: &str, bytes: &[u8]) -> Result<Value, ManifestError> {
    let syntax = |reason: String| ManifestError::Syntax { name: name.to_owned(), reason };
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"{") {
        return serde_json::from_slice(trimmed).map_err(|e| syntax(e.to_string()));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| syntax(format!("not UTF-8: {e}")))?;
    serde_saphyr::from_str::<Option<Value>>(text).map(Option::unwrap_or_default).map_err(|e| syntax(first_line(&e.to_string())))
}

/// serde-saphyr appends a source snippet to its messages; one line is enough for a log.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_owned()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "an empty document",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD_YAML: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: nginx\n    image: nginx:1.27\n    resources:\n      limits: {cpu: 1, memory: 64Mi}\n";

    #[test]
    fn decodes_yaml_pod() {
        let pods = decode_manifest("web.yaml", POD_YAML.as_bytes()).unwrap();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].metadata.name.as_deref(), Some("web"));
        let c = &pods[0].spec.as_ref().unwrap().containers[0];
        let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["cpu"].0, "1");
    }

    #[test]
    fn decodes_json_pod() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"c","image":"busybox"}]},"unknownField":1}"#;
        let pods = decode_manifest("j.json", json.as_bytes()).unwrap();
        assert_eq!(pods[0].metadata.name.as_deref(), Some("j"));
    }

    #[test]
    fn decodes_pod_list() {
        let list = "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: a}\n  spec: {containers: [{name: c, image: x}]}\n- metadata: {name: b}\n  spec: {containers: [{name: c, image: x}]}\n";
        let pods = decode_manifest("list.yaml", list.as_bytes()).unwrap();
        assert_eq!(pods.len(), 2);
        assert_eq!(pods[1].metadata.name.as_deref(), Some("b"));
    }

    #[test]
    fn rejects_wrong_kinds() {
        for (doc, needle) in [
            ("apiVersion: v1\nkind: List\nitems: []\n", "unsupported kind \"List\""),
            ("apiVersion: apps/v1\nkind: Deployment\n", "unsupported kind \"Deployment\""),
            ("apiVersion: v2\nkind: Pod\n", "apiVersion \"v2\""),
            ("kind: Pod\nmetadata: {name: x}\n", "Object 'apiVersion' is missing"),
            ("apiVersion: v1\nmetadata: {name: x}\n", "Object 'kind' is missing"),
        ] {
            let err = decode_manifest("m.yaml", doc.as_bytes()).unwrap_err().to_string();
            assert!(err.starts_with("m.yaml: "), "{err}");
            assert!(err.contains(needle), "{err} should contain {needle}");
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let inputs: [&[u8]; 9] = [
            b"",
            b"   \n",
            b"{not json",
            b"- a\n- b\n",
            b"just a string",
            b"\xff\xfe\x00garbage",
            b"apiVersion: v1\nkind: Pod\nspec: [1, 2]\n",
            b"key: [unclosed\n",
            b"apiVersion: v1\nkind: PodList\nitems: 3\n",
        ];
        for input in inputs {
            let err = decode_manifest("bad", input).unwrap_err();
            assert!(err.to_string().starts_with("bad: "), "{err}");
        }
    }
}
