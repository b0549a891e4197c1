//! The kubelet command line, with upstream's flag names and Go (pflag) syntax:
//! `--flag=value` and `--flag value`, bool flags that take a value only with
//! `=`, `-v=2`, repeated and comma-list flags. Kubelet-only settings land in
//! `KubeletFlags`; flags that set configuration fields are returned in
//! command-line order so `lib.rs` can apply them over the config file
//! (upstream: flags win). Removed flags are accepted with a warning. The Go
//! flag syntax, `--help`/`--version` and the warnings' wording are
//! `component_config::flags`.

use std::ffi::OsString;

use component_config::flags::{self as component_flags, GivenFlag, deprecated_flag_warning, removed_flag_warning};

use self::kubelet_flags::KUBELET_FLAGS;
use crate::error::{ConfigError, ConfigWarning, Kubelet};
use crate::flag_table::{REMOVED_FLAGS, config_flags};
use crate::types::KubeletConfiguration;

mod command;
mod kubelet_flags;

pub use command::command;
pub use kubelet_flags::KubeletFlags;

/// The Kubernetes release whose kubelet this one stands in for.
pub use component_config::KUBERNETES_VERSION;

const CONFIG_DEPRECATION: &str = "This parameter should be set via the config file specified by the Kubelet's --config flag. See https://kubernetes.io/docs/tasks/administer-cluster/kubelet-config-file/ for more information.";

/// The result of parsing the command line, before the config file is read.
pub struct ParsedArgs {
    /// Kubelet-only settings: the flags given on the command line over their defaults.
    pub flags: KubeletFlags,
    /// Config-setting flags in command-line order: (flag name, value).
    pub config_values: Vec<(String, String)>,
    /// Deprecated and removed flags that were given, one warning per flag.
    pub warnings: Vec<ConfigWarning>,
}

/// Parses the command line (`args[0]` is the program name).
pub fn parse_args<I, T>(args: I) -> Result<ParsedArgs, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let given = component_flags::parse_command_line::<Kubelet, _, _>(&mut command(), args)?;
    let mut parsed = ParsedArgs { flags: KubeletFlags::default(), config_values: Vec::new(), warnings: Vec::new() };
    let config_table = config_flags();
    for GivenFlag { name, value, first } in given {
        let flag = format!("--{name}");
        if first {
            parsed.flags.explicit.push(name.clone());
        }
        if let Some((_, _, deprecation, _, set)) = KUBELET_FLAGS.iter().find(|f| f.0 == name) {
            set(&mut parsed.flags, &value).map_err(|message| ConfigError::flag_value(&flag, &value, message))?;
            if let (Some(note), true) = (deprecation, first) {
                parsed.warnings.push(deprecated_flag_warning(&flag, note));
            }
        } else if let Some(f) = config_table.iter().find(|f| f.name == name) {
            if f.deprecated && first {
                parsed.warnings.push(deprecated_flag_warning(&flag, CONFIG_DEPRECATION));
            }
            parsed.config_values.push((name, value));
        } else if first && let Some(warning) = removed_flag_warning(REMOVED_FLAGS, &name) {
            parsed.warnings.push(warning);
        }
    }
    Ok(parsed)
}

/// Applies config-setting flags over `config`, in command-line order.
pub fn apply_config_flags(parsed: &ParsedArgs, config: &mut KubeletConfiguration) -> Result<(), ConfigError> {
    let table = config_flags();
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in &parsed.config_values {
        let Some(f) = table.iter().find(|f| f.name == name) else {
            continue;
        };
        let first = seen.insert(name.as_str());
        (f.set)(config, value, first).map_err(|message| ConfigError::flag_value(format!("--{name}"), value, message))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
