//! Kubelet configuration: the `KubeletConfiguration` file
//! (`kubelet.config.k8s.io/v1beta1`), the kubelet's command-line flags, upstream
//! defaulting and validation, and how they combine (flags win over the file).
//!
//! Owns parsing and checking only: no component is started here, and nothing
//! but the configuration file is read. Entry points: [`load_from_args`] for a
//! binary, [`load_config_file`] / [`parse_config_bytes`] for a file or bytes.

pub mod credential_provider;
pub mod defaults;
pub mod error;
pub mod eviction;
pub mod features;
pub mod flag_table;
pub mod flag_values;
pub mod flags;
pub mod go_duration;
pub mod labels;
pub mod load;
mod logging_serde;
pub mod quantity;
pub mod types;
pub mod validation;

use std::ffi::OsString;

pub use error::{ConfigError, ConfigWarning, Origin, WarningKind};
pub use flags::KubeletFlags;
pub use load::{load_config_file, parse_config_bytes};
pub use types::*;

/// Everything the kubelet binary needs to start: flags, the effective
/// configuration (file + defaults + flag overrides, validated) and warnings.
#[derive(Debug, Clone)]
pub struct KubeletOptions {
    /// Command-line-only settings; `verbosity` follows `logging.verbosity` unless `-v` was given,
    /// and `provider_id` is copied from the configuration.
    pub flags: KubeletFlags,
    /// The effective `KubeletConfiguration`: the defaulted `--config` file (or the flag-only
    /// defaults), then the `--config-dir` drop-ins, then the config-setting flags; validated.
    pub config: KubeletConfiguration,
    /// Problems that do not stop the kubelet, to be logged at startup: deprecated or removed flags,
    /// fields and feature gates, unknown fields.
    pub warnings: Vec<ConfigWarning>,
}

/// Parses the command line (`args[0]` is the program name), reads `--config`
/// if given, applies defaults, then the flags given on the command line, then
/// validates. `--help` and `--version` come back as `ConfigError::Help` /
/// `ConfigError::Version` (exit code 0).
pub fn load_from_args<I, T>(args: I) -> Result<KubeletOptions, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = flags::parse_args(args)?;
    let mut warnings = parsed.warnings.clone();
    let (config, origin) = match &parsed.flags.config {
        Some(path) => {
            let (config, file_warnings) = load::decode_file(path)?;
            warnings.extend(file_warnings);
            (config, Origin::File(path.clone()))
        }
        None => (defaults::flag_only_defaults(), Origin::CommandLine),
    };
    let (mut config, origin) = match &parsed.flags.config_dir {
        Some(dir) => {
            let (merged, drop_in_warnings) = load::drop_in::apply(config, &origin, dir)?;
            warnings.extend(drop_in_warnings);
            (merged, Origin::File(dir.clone()))
        }
        None => (config, origin),
    };
    flags::apply_config_flags(&parsed, &mut config)?;
    for gate in features::REMOVED {
        if parsed
            .config_values
            .iter()
            .any(|(n, v)| n == "feature-gates" && flag_values::parse_bool_map(v).is_ok_and(|m| m.contains_key(*gate)))
            && config.feature_gates.remove(*gate).is_some()
        {
            warnings.push(ConfigWarning::new(
                &Origin::CommandLine,
                WarningKind::RemovedFeatureGate,
                format!("--feature-gates={gate}"),
                "feature gate removed upstream (the feature is now always on or gone); ignored",
            ));
        }
    }
    let mut flags = parsed.flags;
    if flags.explicit.iter().any(|f| f == "v") {
        config.logging.verbosity = u32::from(flags.verbosity);
    } else {
        flags.verbosity = config.logging.verbosity.min(u32::from(u8::MAX)) as u8;
    }
    flags.provider_id.clone_from(&config.provider_id);
    labels::validate_node_labels(&flags.node_labels).map_err(|message| ConfigError::NodeLabels { message })?;
    config.node_labels = flags.node_labels.clone();
    // Defaults that depend on feature gates, which flags may set too.
    defaults::apply_gate_defaults(&mut config);
    validation::validate(&config, &origin)?;
    Ok(KubeletOptions { flags, config, warnings })
}

#[cfg(test)]
mod tests;
