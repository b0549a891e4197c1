//! Reading a `KubeProxyConfiguration` file (YAML or JSON) into the typed struct.
//!
//! Steps: bytes → `serde_json::Value` (serde-saphyr for YAML) → check
//! `apiVersion`/`kind` → warn about removed, deprecated and unknown fields
//! (upstream tries a strict decode, then falls back to a lenient one and logs:
//! it does not fail) → typed decode with the failing field's path → upstream
//! defaulting. Validation is `validation.rs`; the command line is `flags.rs`.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{ConfigError, ConfigWarning, Origin, WarningKind};
use crate::types::{API_VERSION, KIND, KubeProxyConfiguration};

/// Fields (dotted paths) that `KubeProxyConfiguration` once had; ignored with a warning.
const REMOVED_FIELDS: &[(&str, &str)] = &[
    ("resourceContainer", "removed in Kubernetes 1.16"),
    (
        "udpIdleTimeout",
        "removed with the userspace proxy in Kubernetes 1.26",
    ),
    (
        "conntrack.max",
        "removed; the limit is conntrack.maxPerCore × CPUs, at least conntrack.min",
    ),
];

/// Loads, defaults (including platform defaults) and validates a configuration file.
pub fn load_config_file(
    path: &Path,
) -> Result<(KubeProxyConfiguration, Vec<ConfigWarning>), ConfigError> {
    let (mut cfg, warnings) = decode_file(path)?;
    crate::defaults::apply_platform_defaults(&mut cfg);
    crate::validation::validate(&cfg, &Origin::File(path.to_path_buf()))?;
    Ok((cfg, warnings))
}

/// Loads and defaults a file, without platform defaults or validation.
pub(crate) fn decode_file(
    path: &Path,
) -> Result<(KubeProxyConfiguration, Vec<ConfigWarning>), ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&Origin::File(path.to_path_buf()), &bytes)
}

/// Parses, defaults and validates configuration bytes; `name` stands for the
/// file in messages. Never panics, whatever the input.
pub fn parse_config_bytes(
    name: &str,
    bytes: &[u8],
) -> Result<(KubeProxyConfiguration, Vec<ConfigWarning>), ConfigError> {
    let origin = Origin::File(name.into());
    let (mut cfg, warnings) = decode(&origin, bytes)?;
    crate::defaults::apply_platform_defaults(&mut cfg);
    crate::validation::validate(&cfg, &origin)?;
    Ok((cfg, warnings))
}

pub(crate) fn decode(
    origin: &Origin,
    bytes: &[u8],
) -> Result<(KubeProxyConfiguration, Vec<ConfigWarning>), ConfigError> {
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
    let Value::Object(mut map) = value else {
        return Err(syntax(format!(
            "expected a mapping of fields at the top level (a {KIND})"
        )));
    };
    check_type_meta(origin, &map)?;

    let mut warnings = Vec::new();
    for (path, why) in REMOVED_FIELDS {
        if remove_path(&mut map, path).is_some() {
            warnings.push(ConfigWarning::new(
                origin,
                WarningKind::RemovedField,
                *path,
                format!("field ignored: {why}"),
            ));
        }
    }
    let Value::Object(map) = strip_nulls(Value::Object(map)) else {
        unreachable!("strip_nulls keeps an object an object");
    };
    if map
        .get("portRange")
        .is_some_and(|v| v.as_str().is_none_or(|s| !s.is_empty()))
    {
        warnings.push(ConfigWarning::new(
            origin,
            WarningKind::DeprecatedField,
            "portRange",
            "no longer has any effect (it configured the removed userspace proxy)",
        ));
    }

    let mut unknown: Vec<String> = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let de = serde_ignored::Deserializer::new(Value::Object(map), &mut on_unknown);
    let mut cfg: KubeProxyConfiguration = serde_path_to_error::deserialize(de).map_err(|e| {
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
    crate::defaults::apply_defaults(&mut cfg);
    Ok((cfg, warnings))
}

/// Removes a dotted path (`conntrack.max`) from a JSON object.
fn remove_path(map: &mut Map<String, Value>, path: &str) -> Option<Value> {
    match path.split_once('.') {
        None => map.remove(path),
        Some((head, rest)) => match map.get_mut(head) {
            Some(Value::Object(inner)) => remove_path(inner, rest),
            _ => None,
        },
    }
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
                format!("expected {KIND:?}, got {other}"),
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
            format!("unsupported version {other} (expected {API_VERSION:?})"),
        )),
    }
}

/// Go decoders treat `null` as "not set": drop null members (recursively).
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
