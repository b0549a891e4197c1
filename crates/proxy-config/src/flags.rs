//! The kube-proxy command line, with upstream's flag names and Go (pflag)
//! syntax: `--flag=value` and `--flag value`, bool flags that take a value
//! only with `=`, `-v=2`. Parsing only: [`parse_args`] returns the
//! command-line-only options and the configuration-setting flags in order;
//! `lib.rs` decides, as upstream does, which of them apply. The Go flag
//! syntax, `--help`/`--version` and the warnings' wording are
//! `component_config::flags`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Command;
use component_config::flags::{self as component_flags, GivenFlag, deprecated_flag_warning, go_arg, removed_flag_warning};

use crate::error::{ConfigError, ConfigWarning, KubeProxy};
use crate::flag_table::{REMOVED_FLAGS, Target, flags};

/// The Kubernetes release whose kube-proxy this one stands in for.
pub use component_config::KUBERNETES_VERSION;

/// Settings that only come from the command line (upstream `Options`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyFlags {
    /// `--config`: path of the `KubeProxyConfiguration` file, which replaces the configuration
    /// flags.
    pub config: Option<PathBuf>,
    /// `--write-config-to`: upstream writes the default configuration to this file and exits.
    /// Parsed for compatibility; knode does not act on it (kube-proxy starts normally).
    pub write_config_to: Option<PathBuf>,
    /// `--cleanup`: remove the iptables, IPVS and nftables rules kube-proxy made, then exit.
    pub cleanup: bool,
    /// `--init-only`: upstream does the initialization that needs full root privileges, then
    /// exits. Parsed for compatibility; knode does not act on it (kube-proxy starts normally).
    pub init_only: bool,
    /// `--master`: overrides the kubeconfig's server URL.
    pub master: String,
    /// `--hostname-override` as given (wins over the file; trimmed and lowercased on use).
    pub hostname_override: Option<String>,
    /// Deprecated `--healthz-port` (default 10256, 0 disables the health server); only used
    /// without `--config`.
    pub healthz_port: i32,
    /// Deprecated `--metrics-port` (default 10249, 0 disables the metrics server); only used
    /// without `--config`.
    pub metrics_port: i32,
    /// `--iptables-sync-period`: the longest time between rule syncs of the iptables and
    /// nftables modes (`iptables.syncPeriod`, `nftables.syncPeriod`); only used without
    /// `--config`. Each iptables sync rewrites every rule; nftables syncs are incremental.
    pub iptables_sync_period: Option<Duration>,
    /// `--iptables-min-sync-period`: shortest time between rule syncs of the iptables and
    /// nftables modes; only used without `--config`.
    pub iptables_min_sync_period: Option<Duration>,
    /// `--ipvs-sync-period`: full resync period of the IPVS mode; only used without `--config`.
    pub ipvs_sync_period: Option<Duration>,
    /// `--ipvs-min-sync-period`: shortest time between IPVS rule syncs; only used without
    /// `--config`.
    pub ipvs_min_sync_period: Option<Duration>,
    /// Names of every flag given on the command line, without dashes.
    pub explicit: Vec<String>,
}

impl Default for ProxyFlags {
    fn default() -> Self {
        ProxyFlags {
            config: None,
            write_config_to: None,
            cleanup: false,
            init_only: false,
            master: String::new(),
            hostname_override: None,
            healthz_port: i32::from(crate::defaults::PROXY_HEALTHZ_PORT),
            metrics_port: i32::from(crate::defaults::PROXY_STATUS_PORT),
            iptables_sync_period: None,
            iptables_min_sync_period: None,
            ipvs_sync_period: None,
            ipvs_min_sync_period: None,
            explicit: Vec::new(),
        }
    }
}

/// The command line, parsed but not yet combined with the file.
pub struct ParsedArgs {
    /// The command-line-only options.
    pub flags: ProxyFlags,
    /// Configuration and logging flags in command-line order: (name, value).
    pub config_values: Vec<(String, String)>,
    /// Deprecated and removed flags given.
    pub warnings: Vec<ConfigWarning>,
}

/// The clap command for kube-proxy (used for parsing and `--help`).
pub fn command() -> Command {
    component_config::flags::command::<KubeProxy>(
        "The Kubernetes network proxy runs on each node. This reflects services as defined in the Kubernetes API on each node and can do simple TCP, UDP, and SCTP stream forwarding or round robin TCP, UDP, and SCTP forwarding across a set of backends.",
        flags().into_iter().map(|f| go_arg(f.name, f.is_bool, f.help)),
        REMOVED_FLAGS,
    )
}

/// Parses the command line (`args[0]` is the program name).
pub fn parse_args<I, T>(args: I) -> Result<ParsedArgs, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let given = component_flags::parse_command_line::<KubeProxy, _, _>(&mut command(), args)?;
    let table = flags();
    let mut parsed = ParsedArgs { flags: ProxyFlags::default(), config_values: Vec::new(), warnings: Vec::new() };
    for GivenFlag { name, value, first } in given {
        let flag = format!("--{name}");
        if first {
            parsed.flags.explicit.push(name.clone());
        }
        if let Some(spec) = table.iter().find(|f| f.name == name) {
            if let (Some(note), true) = (spec.deprecated, first) {
                parsed.warnings.push(deprecated_flag_warning(&flag, note));
            }
            match spec.target {
                Target::Flags(set) => set(&mut parsed.flags, &value).map_err(|message| ConfigError::flag_value(&flag, &value, message))?,
                Target::Config(_) | Target::Logging(_) => parsed.config_values.push((name, value)),
            }
        } else if first && let Some(warning) = removed_flag_warning(REMOVED_FLAGS, &name) {
            parsed.warnings.push(warning);
        }
    }
    Ok(parsed)
}
