//! Reading a `KubeletConfiguration` file (YAML or JSON) into the typed struct.
//!
//! Steps: bytes → `serde_json::Value` (serde-saphyr for YAML) → check
//! `apiVersion`/`kind` → warn about removed, deprecated and unknown fields
//! (upstream falls back to lenient decoding and logs, it does not fail) →
//! typed decode with the failing field's path → upstream defaulting.
//! Validation is `validation.rs`; the command line is `flags.rs`.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{ConfigError, ConfigWarning, Origin, WarningKind};
use crate::types::{API_VERSION, KIND, KubeletConfiguration};

/// Fields that `KubeletConfiguration` had once (or that old guides put in the
/// file) and that upstream removed; ignored with a warning.
const REMOVED_FIELDS: &[(&str, &str)] = &[
    (
        "cAdvisorPort",
        "removed in Kubernetes 1.12 (cAdvisor no longer serves its own port)",
    ),
    ("resourceContainer", "removed; use kubeletCgroups"),
    ("enableCAdvisorJSONEndpoints", "removed in Kubernetes 1.21"),
    (
        "dynamicConfigDir",
        "removed with dynamic kubelet configuration in Kubernetes 1.24",
    ),
    (
        "containerRuntime",
        "removed in Kubernetes 1.27; only remote CRI runtimes are supported",
    ),
    (
        "podInfraContainerImage",
        "removed; the CRI runtime chooses the sandbox image",
    ),
    (
        "networkPluginName",
        "removed with dockershim in Kubernetes 1.24",
    ),
    ("keepTerminatedPodVolumes", "removed in Kubernetes 1.31"),
];

/// Fields upstream still accepts but documents as having no effect.
const DEPRECATED_FIELDS: &[(&str, &str)] = &[
    (
        "iptablesMasqueradeBit",
        "deprecated: no longer has any effect",
    ),
    ("iptablesDropBit", "deprecated: no longer has any effect"),
    (
        "streamingConnectionIdleTimeout",
        "deprecated: no longer has any effect",
    ),
];

/// Loads, defaults and validates a configuration file.
pub fn load_config_file(
    path: &Path,
) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    let (cfg, warnings) = decode_file(path)?;
    crate::validation::validate(&cfg, &Origin::File(path.to_path_buf()))?;
    Ok((cfg, warnings))
}

/// Loads and defaults a configuration file, without validation (flags may
/// still override it).
pub(crate) fn decode_file(
    path: &Path,
) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&Origin::File(path.to_path_buf()), &bytes)
}

/// Parses, defaults and validates configuration bytes; `name` is used in
/// messages as the file name. Never panics, whatever the input.
pub fn parse_config_bytes(
    name: &str,
    bytes: &[u8],
) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    let origin = Origin::File(name.into());
    let (cfg, warnings) = decode(&origin, bytes)?;
    crate::validation::validate(&cfg, &origin)?;
    Ok((cfg, warnings))
}

pub(crate) fn decode(
    origin: &Origin,
    bytes: &[u8],
) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    let syntax = |message: String| ConfigError::Syntax {
        origin: origin.clone(),
        message,
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| syntax(format!("not valid UTF-8 (at byte {})", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(syntax(format!("the file is empty (expected a {KIND})")));
    }
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| syntax(format!("invalid JSON: {e}")))?
    } else {
        serde_saphyr::from_str(text)
            .map_err(|e| syntax(format!("invalid YAML: {}", one_line(&e.to_string()))))?
    };
    let Value::Object(mut map) = strip_nulls(value) else {
        return Err(syntax(format!(
            "expected a mapping of fields at the top level (a {KIND})"
        )));
    };
    check_type_meta(origin, &map)?;

    let mut warnings = Vec::new();
    for (name, why) in REMOVED_FIELDS {
        if map.remove(*name).is_some() {
            warnings.push(ConfigWarning::new(
                origin,
                WarningKind::RemovedField,
                *name,
                format!("field ignored: {why}"),
            ));
        }
    }
    for (name, why) in DEPRECATED_FIELDS {
        if map.contains_key(*name) {
            warnings.push(ConfigWarning::new(
                origin,
                WarningKind::DeprecatedField,
                *name,
                *why,
            ));
        }
    }
    if let Some(Value::Object(gates)) = map.get_mut("featureGates") {
        for gate in crate::features::REMOVED {
            if gates.remove(*gate).is_some() {
                warnings.push(ConfigWarning::new(
                    origin,
                    WarningKind::RemovedFeatureGate,
                    format!("featureGates.{gate}"),
                    "feature gate removed upstream (the feature is now always on or gone); ignored",
                ));
            }
        }
    }

    let mut unknown: Vec<String> = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let de = serde_ignored::Deserializer::new(Value::Object(map.clone()), &mut on_unknown);
    let mut cfg: KubeletConfiguration = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = field_path(&e.path().to_string());
        ConfigError::field(origin, field, one_line(&e.into_inner().to_string()))
    })?;
    for path in unknown {
        warnings.push(ConfigWarning::new(
            origin,
            WarningKind::UnknownField,
            field_path(&path),
            format!("unknown field in {API_VERSION} {KIND}; ignored"),
        ));
    }
    crate::defaults::apply_after_decode(&mut cfg, &map);
    Ok((cfg, warnings))
}

fn check_type_meta(origin: &Origin, map: &Map<String, Value>) -> Result<(), ConfigError> {
    match map.get("kind") {
        None => {
            return Err(ConfigError::field(
                origin,
                "kind",
                format!("missing (expected {KIND:?})"),
            ));
        }
        Some(Value::String(k)) if k == KIND => {}
        Some(other) => {
            return Err(ConfigError::field(
                origin,
                "kind",
                format!("expected {KIND:?}, got {}", show(other)),
            ));
        }
    }
    match map.get("apiVersion") {
        None => Err(ConfigError::field(
            origin,
            "apiVersion",
            format!("missing (expected {API_VERSION:?})"),
        )),
        Some(Value::String(v)) if v == API_VERSION => Ok(()),
        Some(other) => Err(ConfigError::field(
            origin,
            "apiVersion",
            format!(
                "unsupported version {} (expected {API_VERSION:?})",
                show(other)
            ),
        )),
    }
}

/// A JSON value as it would appear in a message (strings quoted).
fn show(v: &Value) -> String {
    v.to_string()
}

/// Go decoders treat `null` as "not set": drop null members (recursively) so
/// serde fills them with defaults instead of failing.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Normalizes a serde path (`a.b[0].c` / `a.b.0.c`) to `a.b[0].c`; `.` means the root.
fn field_path(p: &str) -> String {
    let mut out = String::new();
    for seg in p.split('.').filter(|s| !s.is_empty()) {
        if let Some(idx) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            out.push_str(&format!("[{idx}]"));
        } else if seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    if out.is_empty() {
        "(document)".to_string()
    } else {
        out
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
