//! Reading a `KubeProxyConfiguration` file (YAML or JSON) into the typed struct.
//!
//! Steps: bytes → `serde_json::Value` (serde-saphyr for YAML) → check
//! `apiVersion`/`kind` → warn about removed, deprecated and unknown fields
//! (upstream tries a strict decode, then falls back to a lenient one and logs:
//! it does not fail) → typed decode with the failing field's path → upstream
//! defaulting. The steps themselves are `component_config::decode`; which
//! fields kube-proxy removed or deprecated is here. Validation is
//! `validation.rs`; the command line is `flags.rs`.

use std::path::Path;

use component_config::decode;

use crate::error::{ConfigError, ConfigWarning, KubeProxy, Origin, WarningKind};
use crate::types::KubeProxyConfiguration;

/// Fields (dotted paths) that `KubeProxyConfiguration` once had; ignored with a warning.
const REMOVED_FIELDS: &[(&str, &str)] = &[
    ("resourceContainer", "removed in Kubernetes 1.16"),
    ("udpIdleTimeout", "removed with the userspace proxy in Kubernetes 1.26"),
    ("conntrack.max", "removed; the limit is conntrack.maxPerCore × CPUs, at least conntrack.min"),
];

/// Loads, defaults (including platform defaults) and validates a configuration file.
pub fn load_config_file(path: &Path) -> Result<(KubeProxyConfiguration, Vec<ConfigWarning>), ConfigError> {
    let (mut cfg, warnings) = decode_file(path)?;
    crate::defaults::apply_platform_defaults(&mut cfg);
    crate::validation::validate(&cfg, &Origin::File(path.to_path_buf()))?;
    Ok((cfg, warnings))
}

/// Loads and defaults a file, without platform defaults or validation.
pub(crate) fn decode_file(path: &Path) -> Result<(KubeProxyConfiguration, Vec<ConfigWarning>), ConfigError> {
    let bytes = decode::read_file(path)?;
    decode(&Origin::File(path.to_path_buf()), &bytes)
}

/// Parses, defaults and validates configuration bytes; `name` stands for the
/// file in messages. Never panics, whatever the input.
pub fn parse_config_bytes(name: &str, bytes: &[u8]) -> Result<(KubeProxyConfiguration, Vec<ConfigWarning>), ConfigError> {
    let origin = Origin::File(name.into());
    let (mut cfg, warnings) = decode(&origin, bytes)?;
    crate::defaults::apply_platform_defaults(&mut cfg);
    crate::validation::validate(&cfg, &origin)?;
    Ok((cfg, warnings))
}

pub(crate) fn decode(origin: &Origin, bytes: &[u8]) -> Result<(KubeProxyConfiguration, Vec<ConfigWarning>), ConfigError> {
    // Type meta and removed fields are looked at before nulls are dropped:
    // `kind: null` is a wrong kind, a removed field set to null is warned about.
    let mut map = decode::parse_mapping::<KubeProxy>(origin, bytes)?;
    decode::check_type_meta::<KubeProxy>(origin, &map)?;

    let mut warnings = decode::remove_fields(origin, &mut map, REMOVED_FIELDS);
    let map = decode::strip_nulls(map);
    if map.get("portRange").is_some_and(|v| v.as_str().is_none_or(|s| !s.is_empty())) {
        warnings.push(ConfigWarning::new(
            origin,
            WarningKind::DeprecatedField,
            "portRange",
            "no longer has any effect (it configured the removed userspace proxy)",
        ));
    }

    let (mut cfg, unknown): (KubeProxyConfiguration, _) = decode::decode_typed(origin, map)?;
    warnings.extend(unknown);
    crate::defaults::apply_defaults(&mut cfg);
    Ok((cfg, warnings))
}
