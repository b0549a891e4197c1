//! The content of one downwardAPI volume file (upstream `pkg/fieldpath` + the downwardAPI
//! plugin): pod metadata by `fieldRef`, container resources by `resourceFieldRef`.
//!
//! Pure. Maps print as upstream's `FormatMap`: sorted `key="value"` lines, Go-quoted values.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, Pod};

use crate::kuberuntime::resources::{ResourceFieldError, find_container, resource_field_value};

/// Why a `fieldRef` path has no value in a downwardAPI volume ([`field_value`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldPathError {
    /// A subscripted path (`metadata.<map>['key']`) of a map other than `labels` and
    /// `annotations` (the path).
    #[error("unsupported fieldPath {0:?}")]
    UnsupportedSubscript(String),
    /// A path a downwardAPI volume does not give (the path).
    #[error("unsupported fieldPath {0:?} in a downwardAPI volume")]
    Unsupported(String),
}

/// Why one item of a downwardAPI volume has no content ([`file_value`]); the text is the
/// volume's `MountVolume.SetUp` reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DownwardApiError {
    /// The item's `fieldRef` cannot be resolved.
    #[error("items[{item}].fieldRef: {source}")]
    FieldRef {
        /// The item's `path` in the volume.
        item: String,
        /// Why its field path has no value.
        #[source]
        source: FieldPathError,
    },
    /// The item's `resourceFieldRef` names a container the pod does not have.
    #[error("items[{item}].resourceFieldRef: {source}")]
    Container {
        /// The item's `path` in the volume.
        item: String,
        /// The container lookup's error.
        #[source]
        source: ResourceFieldError,
    },
    /// The item's `resourceFieldRef` cannot be resolved (resource or divisor).
    #[error("items[{item}]: {source}")]
    ResourceField {
        /// The item's `path` in the volume.
        item: String,
        /// Why the resource has no value.
        #[source]
        source: ResourceFieldError,
    },
    /// The item has neither a `fieldRef` nor a `resourceFieldRef` (its `path`).
    #[error("items[{0}]: one of fieldRef and resourceFieldRef is required")]
    NoSource(String),
}

/// Upstream `fieldpath.FormatMap`.
pub fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter().map(|(k, v)| format!("{k}={}", go_quote(v))).collect::<Vec<_>>().join("\n")
}

/// A Go `%q` rendering of `s` (double-quoted, escapes for quotes, backslashes and controls).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `metadata.labels['key']` → (`labels`, `key`).
fn subscript(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("metadata.")?;
    let (map, tail) = rest.split_once("['")?;
    let key = tail.strip_suffix("']")?;
    Some((map, key))
}

/// The value of a `fieldRef` path on `pod` (the paths a downwardAPI volume accepts).
pub fn field_value(pod: &Pod, path: &str) -> Result<String, FieldPathError> {
    let meta = &pod.metadata;
    if let Some((map, key)) = subscript(path) {
        let m = match map {
            "labels" => &meta.labels,
            "annotations" => &meta.annotations,
            _ => return Err(FieldPathError::UnsupportedSubscript(path.to_string())),
        };
        return Ok(m.as_ref().and_then(|m| m.get(key)).cloned().unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(&meta.labels.clone().unwrap_or_default()),
        "metadata.annotations" => format_map(&meta.annotations.clone().unwrap_or_default()),
        other => return Err(FieldPathError::Unsupported(other.to_string())),
    })
}

/// The content of one downwardAPI item of `pod`, whose unset limits are already defaulted
/// (`resources::with_default_limits`).
pub fn file_value(pod: &Pod, item: &DownwardAPIVolumeFile) -> Result<String, DownwardApiError> {
    if let Some(f) = &item.field_ref {
        return field_value(pod, &f.field_path).map_err(|source| DownwardApiError::FieldRef { item: item.path.clone(), source });
    }
    if let Some(r) = &item.resource_field_ref {
        let name = r.container_name.as_deref().unwrap_or_default();
        let container = find_container(pod, name).map_err(|source| DownwardApiError::Container { item: item.path.clone(), source })?;
        return resource_field_value(container, r).map_err(|source| DownwardApiError::ResourceField { item: item.path.clone(), source });
    }
    Err(DownwardApiError::NoSource(item.path.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ObjectFieldSelector, PodSpec, ResourceFieldSelector, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pod() -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("web".into());
        p.metadata.namespace = Some("prod".into());
        p.metadata.uid = Some("u-1".into());
        p.metadata.labels = Some(BTreeMap::from([("tier".to_string(), "front".to_string()), ("app".to_string(), "a\"b".to_string())]));
        p.spec = Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                resources: Some(ResourceRequirements {
                    limits: Some(BTreeMap::from([("memory".to_string(), Quantity("64Mi".into()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        });
        p
    }

    fn field(path: &str, field_path: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector { field_path: field_path.into(), api_version: None }),
            ..Default::default()
        }
    }

    #[test]
    fn metadata_fields_and_maps() {
        let p = pod();
        assert_eq!(file_value(&p, &field("n", "metadata.name")).unwrap(), "web");
        assert_eq!(file_value(&p, &field("u", "metadata.uid")).unwrap(), "u-1");
        assert_eq!(file_value(&p, &field("l", "metadata.labels")).unwrap(), "app=\"a\\\"b\"\ntier=\"front\"");
        assert_eq!(file_value(&p, &field("t", "metadata.labels['tier']")).unwrap(), "front");
        assert_eq!(file_value(&p, &field("a", "metadata.annotations")).unwrap(), "");
        let err = file_value(&p, &field("x", "spec.nodeName")).unwrap_err();
        assert!(err.to_string().starts_with("items[x].fieldRef: unsupported fieldPath \"spec.nodeName\""), "{err}");
        assert_eq!(err, DownwardApiError::FieldRef { item: "x".into(), source: FieldPathError::Unsupported("spec.nodeName".into()) });
        let err = file_value(&p, &field("s", "metadata.finalizers['x']")).unwrap_err();
        assert_eq!(err.to_string(), "items[s].fieldRef: unsupported fieldPath \"metadata.finalizers['x']\"");
    }

    #[test]
    fn resource_fields_need_a_known_container() {
        let p = pod();
        let mut item = DownwardAPIVolumeFile {
            path: "mem".into(),
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some("main".into()),
                resource: "limits.memory".into(),
                divisor: Some(Quantity("1Mi".into())),
            }),
            ..Default::default()
        };
        assert_eq!(file_value(&p, &item).unwrap(), "64");
        item.resource_field_ref.as_mut().unwrap().container_name = Some("other".into());
        let err = file_value(&p, &item).unwrap_err();
        assert!(err.to_string().contains("container other not found"), "{err}");
        assert!(
            matches!(&err, DownwardApiError::Container { item, source: ResourceFieldError::ContainerNotFound(c) } if item == "mem" && c == "other"),
            "{err}"
        );
        assert_eq!(err.to_string(), "items[mem].resourceFieldRef: container other not found");
        let err = file_value(&p, &DownwardAPIVolumeFile { path: "e".into(), ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("required"), "{err}");
        assert_eq!(err, DownwardApiError::NoSource("e".into()));
    }
}
