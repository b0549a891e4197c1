//! Reading a `KubeletConfiguration` file (YAML or JSON) into the typed struct.
//!
//! Steps: bytes → `serde_json::Value` (serde-saphyr for YAML) → check
//! `apiVersion`/`kind` → warn about removed, deprecated and unknown fields
//! (upstream falls back to lenient decoding and logs, it does not fail) →
//! typed decode with the failing field's path → upstream defaulting.
//! The steps themselves are `component_config::decode`; the kubelet's removed
//! and deprecated fields are here. Validation is `validation.rs`; the command
//! line is `flags.rs`.

pub mod drop_in;

use std::path::Path;

use component_config::decode;
use serde_json::Value;

use crate::error::{ConfigError, ConfigWarning, Kubelet, Origin, WarningKind};
use crate::types::KubeletConfiguration;

/// Fields that `KubeletConfiguration` had once (or that old guides put in the
/// file) and that upstream removed; ignored with a warning.
const REMOVED_FIELDS: &[(&str, &str)] = &[
    ("cAdvisorPort", "removed in Kubernetes 1.12 (cAdvisor no longer serves its own port)"),
    ("resourceContainer", "removed; use kubeletCgroups"),
    ("enableCAdvisorJSONEndpoints", "removed in Kubernetes 1.21"),
    ("dynamicConfigDir", "removed with dynamic kubelet configuration in Kubernetes 1.24"),
    ("containerRuntime", "removed in Kubernetes 1.27; only remote CRI runtimes are supported"),
    ("podInfraContainerImage", "removed; the CRI runtime chooses the sandbox image"),
    ("networkPluginName", "removed with dockershim in Kubernetes 1.24"),
    ("keepTerminatedPodVolumes", "removed in Kubernetes 1.31"),
];

/// Fields upstream still accepts but documents as having no effect.
const DEPRECATED_FIELDS: &[(&str, &str)] = &[
    ("iptablesMasqueradeBit", "deprecated: no longer has any effect"),
    ("iptablesDropBit", "deprecated: no longer has any effect"),
    ("streamingConnectionIdleTimeout", "deprecated: no longer has any effect"),
];

/// Loads, defaults and validates a configuration file.
pub fn load_config_file(path: &Path) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    let (cfg, warnings) = decode_file(path)?;
    crate::validation::validate(&cfg, &Origin::File(path.to_path_buf()))?;
    Ok((cfg, warnings))
}

/// Loads and defaults a configuration file, without validation (flags may
/// still override it).
pub(crate) fn decode_file(path: &Path) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    let bytes = decode::read_file(path)?;
    decode(&Origin::File(path.to_path_buf()), &bytes)
}

/// Parses, defaults and validates configuration bytes; `name` is used in
/// messages as the file name. Never panics, whatever the input.
pub fn parse_config_bytes(name: &str, bytes: &[u8]) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    let origin = Origin::File(name.into());
    let (cfg, warnings) = decode(&origin, bytes)?;
    crate::validation::validate(&cfg, &origin)?;
    Ok((cfg, warnings))
}

pub(crate) fn decode(origin: &Origin, bytes: &[u8]) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    // Nulls go first: a `kind: null` is a missing kind, a removed field set
    // to null is not set.
    let mut map = decode::strip_nulls(decode::parse_mapping::<Kubelet>(origin, bytes)?);
    decode::check_type_meta::<Kubelet>(origin, &map)?;

    let mut warnings = decode::remove_fields(origin, &mut map, REMOVED_FIELDS);
    for (name, why) in DEPRECATED_FIELDS {
        if map.contains_key(*name) {
            warnings.push(ConfigWarning::new(origin, WarningKind::DeprecatedField, *name, *why));
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

    let (mut cfg, unknown): (KubeletConfiguration, _) = decode::decode_typed(origin, map.clone())?;
    warnings.extend(unknown);
    crate::defaults::apply_after_decode(&mut cfg, &map);
    Ok((cfg, warnings))
}

#[cfg(test)]
mod tests;
