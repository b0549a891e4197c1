//! The kube-proxy command line, with upstream's flag names and Go (pflag)
//! syntax: `--flag=value` and `--flag value`, bool flags that take a value
//! only with `=`, `-v=2`. Parsing only: [`parse_args`] returns the
//! command-line-only options and the configuration-setting flags in order;
//! `lib.rs` decides, as upstream does, which of them apply.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command};

use crate::error::{ConfigError, ConfigWarning, Origin, WarningKind};
use crate::flag_table::{REMOVED_FLAGS, Target, flags};

/// The Kubernetes release whose kube-proxy this one stands in for.
pub const KUBERNETES_VERSION: &str = "v1.34.0";

/// Settings that only come from the command line (upstream `Options`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyFlags {
    pub config: Option<PathBuf>,
    pub write_config_to: Option<PathBuf>,
    pub cleanup: bool,
    pub init_only: bool,
    /// `--master`: overrides the kubeconfig's server URL.
    pub master: String,
    /// `--hostname-override` as given (wins over the file; trimmed and lowercased on use).
    pub hostname_override: Option<String>,
    /// Deprecated `--healthz-port` / `--metrics-port` (0 disables the server).
    pub healthz_port: i32,
    pub metrics_port: i32,
    pub iptables_sync_period: Option<Duration>,
    pub iptables_min_sync_period: Option<Duration>,
    pub ipvs_sync_period: Option<Duration>,
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
    pub flags: ProxyFlags,
    /// Configuration and logging flags in command-line order: (name, value).
    pub config_values: Vec<(String, String)>,
    pub warnings: Vec<ConfigWarning>,
}

fn go_arg(name: &'static str, is_bool: bool, help: &'static str) -> Arg {
    let arg = Arg::new(name)
        .long(name)
        .help(help)
        .action(ArgAction::Append);
    if is_bool {
        arg.num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
    } else {
        arg.num_args(1).allow_hyphen_values(true)
    }
}

/// The clap command for kube-proxy (used for parsing and `--help`).
pub fn command() -> Command {
    let mut cmd = Command::new("kube-proxy")
        .about("The Kubernetes network proxy runs on each node. This reflects services as defined in the Kubernetes API on each node and can do simple TCP, UDP, and SCTP stream forwarding or round robin TCP, UDP, and SCTP forwarding across a set of backends.")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(Arg::new("help").short('h').long("help").help("help for kube-proxy").action(ArgAction::SetTrue))
        .arg(
            Arg::new("version")
                .long("version")
                .help("--version, --version=raw prints version information and quits")
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .action(ArgAction::Append),
        );
    for f in flags() {
        let mut arg = go_arg(f.name, f.is_bool, f.help);
        if f.name == "v" {
            arg = arg.short('v');
        }
        cmd = cmd.arg(arg);
    }
    for (name, is_bool, _) in REMOVED_FLAGS {
        cmd = cmd.arg(go_arg(name, *is_bool, "removed upstream; accepted and ignored").hide(true));
    }
    cmd
}

fn clap_error(e: clap::Error) -> ConfigError {
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    match (e.kind(), invalid) {
        (ErrorKind::UnknownArgument, Some(arg)) if arg.starts_with("--") => {
            ConfigError::UnknownFlag {
                flag: arg.split('=').next().unwrap_or(&arg).to_string(),
            }
        }
        (ErrorKind::UnknownArgument, Some(arg)) if arg.starts_with('-') && arg.len() > 1 => {
            ConfigError::Usage {
                message: format!("unknown shorthand flag: '{}' in {arg}", &arg[1..2]),
            }
        }
        (ErrorKind::UnknownArgument, Some(arg)) => ConfigError::Usage {
            message: format!("unknown command {arg:?} for \"kube-proxy\""),
        },
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid command line");
            ConfigError::Usage {
                message: first.trim_start_matches("error: ").to_string(),
            }
        }
    }
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

    let table = flags();
    let mut parsed = ParsedArgs {
        flags: ProxyFlags::default(),
        config_values: Vec::new(),
        warnings: Vec::new(),
    };
    for (_, name, value) in given {
        let flag = format!("--{name}");
        let first_time = !parsed.flags.explicit.contains(&name);
        if first_time {
            parsed.flags.explicit.push(name.clone());
        }
        if let Some(spec) = table.iter().find(|f| f.name == name) {
            if let (Some(note), true) = (spec.deprecated, first_time) {
                parsed.warnings.push(ConfigWarning::new(
                    &Origin::CommandLine,
                    WarningKind::DeprecatedFlag,
                    &flag,
                    format!("Flag {flag} has been deprecated, {note}"),
                ));
            }
            match spec.target {
                Target::Flags(set) => {
                    set(&mut parsed.flags, &value).map_err(|message| ConfigError::FlagValue {
                        flag: flag.clone(),
                        value: value.clone(),
                        message,
                    })?
                }
                Target::Config(_) | Target::Logging(_) => parsed.config_values.push((name, value)),
            }
        } else if let Some((_, _, why)) = REMOVED_FLAGS.iter().find(|f| f.0 == name)
            && first_time
        {
            parsed.warnings.push(ConfigWarning::new(
                &Origin::CommandLine,
                WarningKind::RemovedFlag,
                &flag,
                format!("flag {flag} is no longer supported upstream ({why}); ignored"),
            ));
        }
    }
    Ok(parsed)
}
