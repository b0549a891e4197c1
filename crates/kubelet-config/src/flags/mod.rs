//! The kubelet command line, with upstream's flag names and Go (pflag) syntax:
//! `--flag=value` and `--flag value`, bool flags that take a value only with
//! `=`, `-v=2`, repeated and comma-list flags. Kubelet-only settings land in
//! `KubeletFlags`; flags that set configuration fields are returned in
//! command-line order so `lib.rs` can apply them over the config file
//! (upstream: flags win). Removed flags are accepted with a warning.

use std::ffi::OsString;

use self::command::clap_error;
use self::kubelet_flags::KUBELET_FLAGS;
use crate::error::{ConfigError, ConfigWarning, Origin, WarningKind};
use crate::flag_table::{REMOVED_FLAGS, config_flags};
use crate::types::KubeletConfiguration;

mod command;
mod kubelet_flags;

pub use command::command;
pub use kubelet_flags::KubeletFlags;

/// The Kubernetes release whose kubelet this one stands in for.
pub const KUBERNETES_VERSION: &str = "v1.34.0";

const CONFIG_DEPRECATION: &str = "This parameter should be set via the config file specified by the Kubelet's --config flag. See https://kubernetes.io/docs/tasks/administer-cluster/kubelet-config-file/ for more information.";

/// The result of parsing the command line, before the config file is read.
pub struct ParsedArgs {
    pub flags: KubeletFlags,
    /// Config-setting flags in command-line order: (flag name, value).
    pub config_values: Vec<(String, String)>,
    pub warnings: Vec<ConfigWarning>,
}

/// Parses the command line (`args[0]` is the program name).
pub fn parse_args<I, T>(args: I) -> Result<ParsedArgs, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args).map_err(clap_error)?;
    if matches.get_flag("help") {
        return Err(ConfigError::Help {
            text: cmd.render_help().to_string(),
        });
    }
    if let Some(v) = matches
        .get_many::<String>("version")
        .and_then(|mut v| v.next_back())
        && v != "false"
    {
        return Err(ConfigError::Version {
            text: format!(
                "Kubernetes {KUBERNETES_VERSION} (knode {})",
                env!("CARGO_PKG_VERSION")
            ),
        });
    }
    // Every (position, flag, value) in command-line order.
    let mut given: Vec<(usize, String, String)> = Vec::new();
    for id in matches.ids() {
        let name = id.as_str();
        if name == "help" || name == "version" {
            continue;
        }
        if matches.value_source(name) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let (Some(values), Some(indices)) =
            (matches.get_many::<String>(name), matches.indices_of(name))
        else {
            continue;
        };
        for (value, index) in values.zip(indices) {
            given.push((index, name.to_string(), value.clone()));
        }
    }
    given.sort_by_key(|(i, _, _)| *i);

    let origin = Origin::CommandLine;
    let mut parsed = ParsedArgs {
        flags: KubeletFlags::default(),
        config_values: Vec::new(),
        warnings: Vec::new(),
    };
    let config_table = config_flags();
    let mut warned = std::collections::BTreeSet::new();
    for (_, name, value) in given {
        let flag = format!("--{name}");
        let first_time = warned.insert(name.clone());
        if !parsed.flags.explicit.contains(&name) {
            parsed.flags.explicit.push(name.clone());
        }
        if let Some((_, _, deprecation, _, set)) = KUBELET_FLAGS.iter().find(|f| f.0 == name) {
            set(&mut parsed.flags, &value).map_err(|message| ConfigError::FlagValue {
                flag: flag.clone(),
                value: value.clone(),
                message,
            })?;
            if let (Some(note), true) = (deprecation, first_time) {
                let msg = format!("Flag {flag} has been deprecated, {note}");
                parsed.warnings.push(ConfigWarning::new(
                    &origin,
                    WarningKind::DeprecatedFlag,
                    &flag,
                    msg,
                ));
            }
        } else if let Some(f) = config_table.iter().find(|f| f.name == name) {
            if f.deprecated && first_time {
                let msg = format!("Flag {flag} has been deprecated, {CONFIG_DEPRECATION}");
                parsed.warnings.push(ConfigWarning::new(
                    &origin,
                    WarningKind::DeprecatedFlag,
                    &flag,
                    msg,
                ));
            }
            parsed.config_values.push((name, value));
        } else if let Some((_, _, why)) = REMOVED_FLAGS.iter().find(|f| f.0 == name)
            && first_time
        {
            let msg = format!("flag {flag} is no longer supported upstream ({why}); ignored");
            parsed.warnings.push(ConfigWarning::new(
                &origin,
                WarningKind::RemovedFlag,
                &flag,
                msg,
            ));
        }
    }
    Ok(parsed)
}

/// Applies config-setting flags over `config`, in command-line order.
pub fn apply_config_flags(
    parsed: &ParsedArgs,
    config: &mut KubeletConfiguration,
) -> Result<(), ConfigError> {
    let table = config_flags();
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in &parsed.config_values {
        let Some(f) = table.iter().find(|f| f.name == name) else {
            continue;
        };
        let first = seen.insert(name.as_str());
        (f.set)(config, value, first).map_err(|message| ConfigError::FlagValue {
            flag: format!("--{name}"),
            value: value.clone(),
            message,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
