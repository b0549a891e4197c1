//! kube-proxy configuration: the `KubeProxyConfiguration` file
//! (`kubeproxy.config.k8s.io/v1alpha1`), kube-proxy's command-line flags,
//! upstream defaulting and validation, and how they combine.
//!
//! Precedence is upstream's (`cmd/kube-proxy/app/options.go`, `Complete`):
//! when `--config` is given the file replaces the flag-built configuration
//! entirely, except that logging flags (`-v`, `--vmodule`, ...) and
//! `--hostname-override` still win; every other configuration flag is
//! ignored (upstream silently, here with a warning). Without `--config`,
//! flags apply over the defaults. Then the Linux platform defaults, then
//! validation. Owns parsing and checking only; nothing is started here.

pub mod defaults;
pub mod error;
pub mod flag_table;
pub mod flags;
pub mod load;
pub mod types;
pub mod validation;

use std::ffi::OsString;

pub use error::{ConfigError, ConfigWarning, Origin, WarningKind};
pub use flags::ProxyFlags;
pub use load::{load_config_file, parse_config_bytes};
pub use types::*;

use flag_table::Target;

/// Everything the kube-proxy binary needs to start.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The command-line-only options (`--config`, `--cleanup`, `--hostname-override`, ...).
    pub flags: ProxyFlags,
    /// The effective configuration: file or flags, defaulted, validated.
    pub config: KubeProxyConfiguration,
    /// What the operator should hear about: deprecated or removed flags, flags ignored under
    /// `--config`, deprecated or unknown fields in the file.
    pub warnings: Vec<ConfigWarning>,
}

/// Parses the command line (`args[0]` is the program name), reads `--config`
/// if given, combines them as upstream does, and validates. `--help` and
/// `--version` come back as `ConfigError::Help` / `ConfigError::Version`.
pub fn load_from_args<I, T>(args: I) -> Result<ProxyOptions, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = flags::parse_args(args)?;
    let mut warnings = parsed.warnings;
    let table = flag_table::flags();
    let target_of = |name: &str| table.iter().find(|f| f.name == name).map(|f| f.target);
    let set_error =
        |name: &str, value: &str, message: String| ConfigError::FlagValue { flag: format!("--{name}"), value: value.to_string(), message };
    let pflags = parsed.flags;
    let (mut config, origin) = match &pflags.config {
        Some(path) => {
            let (mut config, file_warnings) = load::decode_file(path)?;
            warnings.extend(file_warnings);
            let mut ignored = std::collections::BTreeSet::new();
            for (name, value) in &parsed.config_values {
                match target_of(name) {
                    Some(Target::Logging(set)) => {
                        set(&mut config, value).map_err(|m| set_error(name, value, m))?;
                    }
                    _ => {
                        ignored.insert(name.clone());
                    }
                }
            }
            let sync_flags = [
                "iptables-sync-period",
                "iptables-min-sync-period",
                "ipvs-sync-period",
                "ipvs-min-sync-period",
                "healthz-port",
                "metrics-port",
            ];
            for name in sync_flags.iter().filter(|n| pflags.explicit.iter().any(|e| e == *n)) {
                ignored.insert(name.to_string());
            }
            for name in ignored {
                warnings.push(ConfigWarning::new(
                    &Origin::CommandLine,
                    WarningKind::IgnoredFlag,
                    format!("--{name}"),
                    "ignored because --config is given (upstream: the file replaces all configuration flags)",
                ));
            }
            (config, Origin::File(path.clone()))
        }
        None => {
            let mut config = defaults::defaulted();
            for (name, value) in &parsed.config_values {
                if let Some(Target::Config(set) | Target::Logging(set)) = target_of(name) {
                    set(&mut config, value).map_err(|m| set_error(name, value, m))?;
                }
            }
            apply_mode_dependent_flags(&pflags, &mut config);
            config.healthz_bind_address = address_from_deprecated_flag(&config.healthz_bind_address, pflags.healthz_port);
            config.metrics_bind_address = address_from_deprecated_flag(&config.metrics_bind_address, pflags.metrics_port);
            (config, Origin::CommandLine)
        }
    };
    defaults::apply_platform_defaults(&mut config);
    if let Some(name) = &pflags.hostname_override {
        let name = name.trim();
        if name.is_empty() {
            return Err(ConfigError::FlagValue {
                flag: "--hostname-override".into(),
                value: pflags.hostname_override.clone().unwrap_or_default(),
                message: "empty hostname-override is invalid".into(),
            });
        }
        config.hostname_override = name.to_lowercase();
    }
    validation::validate(&config, &origin)?;
    Ok(ProxyOptions { flags: pflags, config, warnings })
}

/// `processV1Alpha1Flags`: the `--iptables-*` sync periods apply to every mode
/// but IPVS (iptables and nftables share them), the `--ipvs-*` ones to IPVS only.
fn apply_mode_dependent_flags(f: &ProxyFlags, c: &mut KubeProxyConfiguration) {
    if c.mode == ProxyMode::IPVS {
        if let Some(d) = f.ipvs_sync_period {
            c.ipvs.sync_period = d;
        }
        if let Some(d) = f.ipvs_min_sync_period {
            c.ipvs.min_sync_period = d;
        }
    } else {
        if let Some(d) = f.iptables_sync_period {
            c.iptables.sync_period = d;
            c.nftables.sync_period = d;
        }
        if let Some(d) = f.iptables_min_sync_period {
            c.iptables.min_sync_period = d;
            c.nftables.min_sync_period = d;
        }
    }
}

/// `addressFromDeprecatedFlags`: port 0 disables the server; otherwise a bare
/// IP gets the port appended.
fn address_from_deprecated_flag(addr: &str, port: i32) -> String {
    if port == 0 {
        return String::new();
    }
    match u16::try_from(port) {
        Ok(p) => defaults::append_port_if_needed(addr, p),
        Err(_) => addr.to_string(),
    }
}

#[cfg(test)]
mod tests;
