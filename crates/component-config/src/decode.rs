//! Decoding a component configuration file (YAML or JSON) into its typed
//! struct, in steps a component composes: bytes → top-level mapping
//! ([`parse_mapping`]) → type meta ([`check_type_meta`]) → removed fields
//! ([`remove_fields`]) and nulls ([`strip_nulls`]) → typed decode with the
//! failing field's path and warnings for unknown fields ([`decode_typed`]).
//!
//! Upstream decodes strictly, then falls back to a lenient decode and logs:
//! unknown and removed fields are warnings here, never errors. Which fields
//! are removed or deprecated, defaulting and validation belong to the
//! component's crate. Never panics, whatever the input.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Component;
use crate::error::{ConfigError, ConfigWarning, Origin, WarningKind};

/// Reads a configuration file; the error names the file.
pub fn read_file<C: Component>(path: &Path) -> Result<Vec<u8>, ConfigError<C>> {
    std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

/// Parses YAML or JSON (chosen by a leading `{`) whose top level must be a
/// mapping. A UTF-8 byte order mark is skipped; nulls are kept.
pub fn parse_mapping<C: Component>(origin: &Origin, bytes: &[u8]) -> Result<Map<String, Value>, ConfigError<C>> {
    let kind = C::KIND;
    let syntax = |message: String| ConfigError::Syntax { origin: origin.clone(), message };
    let text = std::str::from_utf8(bytes).map_err(|e| syntax(format!("not valid UTF-8 (at byte {})", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(syntax(format!("the file is empty (expected a {kind})")));
    }
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| syntax(format!("invalid JSON: {e}")))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| syntax(format!("invalid YAML: {}", one_line(&e.to_string()))))?
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(syntax(format!("expected a mapping of fields at the top level (a {kind})"))),
    }
}

/// Checks `kind`, then `apiVersion`, against the component's.
pub fn check_type_meta<C: Component>(origin: &Origin, map: &Map<String, Value>) -> Result<(), ConfigError<C>> {
    let (kind, api_version) = (C::KIND, C::API_VERSION);
    match map.get("kind") {
        None => {
            return Err(ConfigError::field(origin, "kind", format!("missing (expected {kind:?})")));
        }
        Some(Value::String(k)) if k == kind => {}
        Some(other) => {
            return Err(ConfigError::field(origin, "kind", format!("expected {kind:?}, got {other}")));
        }
    }
    match map.get("apiVersion") {
        None => Err(ConfigError::field(origin, "apiVersion", format!("missing (expected {api_version:?})"))),
        Some(Value::String(v)) if v == api_version => Ok(()),
        Some(other) => Err(ConfigError::field(origin, "apiVersion", format!("unsupported version {other} (expected {api_version:?})"))),
    }
}

/// Removes each field of `removed` — `(dotted path, why)` — that the file
/// sets (even to null), with a [`WarningKind::RemovedField`] warning for each.
pub fn remove_fields(origin: &Origin, map: &mut Map<String, Value>, removed: &[(&str, &str)]) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    for (path, why) in removed {
        if remove_path(map, path).is_some() {
            warnings.push(ConfigWarning::new(origin, WarningKind::RemovedField, *path, format!("field ignored: {why}")));
        }
    }
    warnings
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

/// Go decoders treat `null` as "not set": drops null members (recursively,
/// also inside lists) so serde fills them with defaults instead of failing.
pub fn strip_nulls(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls_in(v))).collect()
}

fn strip_nulls_in(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip_nulls(m)),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls_in).collect()),
        other => other,
    }
}

/// Decodes the mapping into `T`; an error names the failing field's path,
/// and every field `T` does not have comes back as a
/// [`WarningKind::UnknownField`] warning.
pub fn decode_typed<C: Component, T: DeserializeOwned>(
    origin: &Origin,
    map: Map<String, Value>,
) -> Result<(T, Vec<ConfigWarning>), ConfigError<C>> {
    let mut unknown: Vec<String> = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let de = serde_ignored::Deserializer::new(Value::Object(map), &mut on_unknown);
    let typed: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = field_path(&e.path().to_string());
        ConfigError::field(origin, field, one_line(&e.into_inner().to_string()))
    })?;
    let warnings = unknown
        .iter()
        .map(|path| {
            ConfigWarning::new(
                origin,
                WarningKind::UnknownField,
                field_path(path),
                format!("unknown field in {} {}; ignored", C::API_VERSION, C::KIND),
            )
        })
        .collect();
    Ok((typed, warnings))
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
    if out.is_empty() { "(document)".to_string() } else { out }
}

/// Folds a multi-line message (YAML errors quote the input) onto one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
