//! The kubelet command line, with upstream's flag names and Go (pflag) syntax:
//! `--flag=value` and `--flag value`, bool flags that take a value only with
//! `=`, `-v=2`, repeated and comma-list flags. Kubelet-only settings land in
//! `KubeletFlags`; flags that set configuration fields are returned in
//! command-line order so `lib.rs` can apply them over the config file
//! (upstream: flags win). Removed flags are accepted with a warning.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command};

use crate::error::{ConfigError, ConfigWarning, Origin, WarningKind};
use crate::flag_table::{REMOVED_FLAGS, config_flags};
use crate::flag_values::*;
use crate::types::KubeletConfiguration;

/// The Kubernetes release whose kubelet this one stands in for.
pub const KUBERNETES_VERSION: &str = "v1.34.0";

/// Settings that only come from the command line (upstream `KubeletFlags`).
#[derive(Debug, Clone, PartialEq)]
pub struct KubeletFlags {
    pub config: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
    pub bootstrap_kubeconfig: Option<PathBuf>,
    pub cert_dir: PathBuf,
    pub hostname_override: String,
    pub node_ip: String,
    pub root_dir: PathBuf,
    /// `-v` / `--v` log verbosity.
    pub verbosity: u8,
    pub provider_id: String,
    pub node_labels: BTreeMap<String, String>,
    pub cloud_provider: String,
    pub image_credential_provider_config: Option<PathBuf>,
    pub image_credential_provider_bin_dir: Option<PathBuf>,
    pub lock_file: Option<PathBuf>,
    pub exit_on_lock_contention: bool,
    pub runtime_cgroups: String,
    pub experimental_mounter_path: String,
    pub experimental_allocatable_ignore_eviction: bool,
    pub minimum_gc_age: Duration,
    pub max_container_count: i32,
    pub max_per_pod_container_count: i32,
    /// Names of every flag given on the command line, without dashes.
    pub explicit: Vec<String>,
}

impl Default for KubeletFlags {
    fn default() -> Self {
        KubeletFlags {
            config: None,
            config_dir: None,
            kubeconfig: None,
            bootstrap_kubeconfig: None,
            cert_dir: PathBuf::from("/var/lib/kubelet/pki"),
            hostname_override: String::new(),
            node_ip: String::new(),
            root_dir: PathBuf::from("/var/lib/kubelet"),
            verbosity: 0,
            provider_id: String::new(),
            node_labels: BTreeMap::new(),
            cloud_provider: String::new(),
            image_credential_provider_config: None,
            image_credential_provider_bin_dir: None,
            lock_file: None,
            exit_on_lock_contention: false,
            runtime_cgroups: String::new(),
            experimental_mounter_path: String::new(),
            experimental_allocatable_ignore_eviction: false,
            minimum_gc_age: Duration::ZERO,
            max_container_count: -1,
            max_per_pod_container_count: 1,
            explicit: Vec::new(),
        }
    }
}

type FlagSetter = fn(&mut KubeletFlags, &str) -> Result<(), String>;

/// Kubelet-only flags: `(name, is_bool, deprecation note, help, setter)`.
const KUBELET_FLAGS: &[(&str, bool, Option<&str>, &str, FlagSetter)] = &[
    (
        "config",
        false,
        None,
        "The Kubelet will load its initial configuration from this file",
        |f, v| {
            f.config = Some(v.into());
            Ok(())
        },
    ),
    (
        "config-dir",
        false,
        None,
        "Path to a directory of configuration drop-ins",
        |f, v| {
            f.config_dir = Some(v.into());
            Ok(())
        },
    ),
    (
        "kubeconfig",
        false,
        None,
        "Path to a kubeconfig file, specifying how to connect to the API server",
        |f, v| {
            f.kubeconfig = Some(v.into());
            Ok(())
        },
    ),
    (
        "bootstrap-kubeconfig",
        false,
        None,
        "Path to a kubeconfig file used to get a client certificate for kubelet",
        |f, v| {
            f.bootstrap_kubeconfig = Some(v.into());
            Ok(())
        },
    ),
    (
        "cert-dir",
        false,
        None,
        "The directory where the TLS certs are located",
        |f, v| {
            f.cert_dir = v.into();
            Ok(())
        },
    ),
    (
        "hostname-override",
        false,
        None,
        "If non-empty, will use this string as identification instead of the actual hostname",
        |f, v| {
            f.hostname_override = v.into();
            Ok(())
        },
    ),
    (
        "node-ip",
        false,
        None,
        "IP address (or comma-separated dual-stack IP addresses) of the node",
        |f, v| {
            f.node_ip = v.into();
            Ok(())
        },
    ),
    (
        "root-dir",
        false,
        None,
        "Directory path for managing kubelet files (volume mounts, etc)",
        |f, v| {
            f.root_dir = v.into();
            Ok(())
        },
    ),
    (
        "node-labels",
        false,
        None,
        "Labels to add when registering the node in the cluster (key=value pairs separated by ',')",
        |f, v| {
            f.node_labels.extend(parse_map(v, '=')?);
            Ok(())
        },
    ),
    (
        "cloud-provider",
        false,
        None,
        "The provider for cloud services ('' or 'external')",
        |f, v| {
            f.cloud_provider = v.into();
            Ok(())
        },
    ),
    (
        "image-credential-provider-config",
        false,
        None,
        "Path to a credential provider plugin config file or directory",
        |f, v| {
            f.image_credential_provider_config = Some(v.into());
            Ok(())
        },
    ),
    (
        "image-credential-provider-bin-dir",
        false,
        None,
        "The path to the directory where credential provider plugin binaries are located",
        |f, v| {
            f.image_credential_provider_bin_dir = Some(v.into());
            Ok(())
        },
    ),
    (
        "lock-file",
        false,
        None,
        "<Alpha> The path to file for kubelet to use as a lock file",
        |f, v| {
            f.lock_file = Some(v.into());
            Ok(())
        },
    ),
    (
        "exit-on-lock-contention",
        true,
        None,
        "Whether kubelet should exit upon lock-file contention",
        |f, v| {
            f.exit_on_lock_contention = parse_bool(v)?;
            Ok(())
        },
    ),
    (
        "runtime-cgroups",
        false,
        None,
        "Optional absolute name of cgroups to create and run the runtime in",
        |f, v| {
            f.runtime_cgroups = v.into();
            Ok(())
        },
    ),
    (
        "experimental-mounter-path",
        false,
        Some("will be removed in 1.25 or later, in favor of using CSI"),
        "[Experimental] Path of mounter binary",
        |f, v| {
            f.experimental_mounter_path = v.into();
            Ok(())
        },
    ),
    (
        "experimental-allocatable-ignore-eviction",
        true,
        Some("will be removed in 1.25 or later"),
        "Ignore hard eviction thresholds when calculating Node Allocatable",
        |f, v| {
            f.experimental_allocatable_ignore_eviction = parse_bool(v)?;
            Ok(())
        },
    ),
    (
        "minimum-container-ttl-duration",
        false,
        Some(
            "Use --eviction-hard or --eviction-soft instead. Will be removed in a future version.",
        ),
        "Minimum age for a finished container before it is garbage collected",
        |f, v| {
            f.minimum_gc_age = parse_duration(v)?;
            Ok(())
        },
    ),
    (
        "maximum-dead-containers",
        false,
        Some(
            "Use --eviction-hard or --eviction-soft instead. Will be removed in a future version.",
        ),
        "Maximum number of old instances of containers to retain globally",
        |f, v| {
            f.max_container_count = parse_i32(v)?;
            Ok(())
        },
    ),
    (
        "maximum-dead-containers-per-container",
        false,
        Some(
            "Use --eviction-hard or --eviction-soft instead. Will be removed in a future version.",
        ),
        "Maximum number of old instances to retain per container",
        |f, v| {
            f.max_per_pod_container_count = parse_i32(v)?;
            Ok(())
        },
    ),
    (
        "v",
        false,
        None,
        "number for the log level verbosity",
        |f, v| {
            f.verbosity = v
                .trim()
                .parse()
                .map_err(|_| "expected a verbosity level from 0 to 255".to_string())?;
            Ok(())
        },
    ),
];

const CONFIG_DEPRECATION: &str = "This parameter should be set via the config file specified by the Kubelet's --config flag. See https://kubernetes.io/docs/tasks/administer-cluster/kubelet-config-file/ for more information.";

/// The result of parsing the command line, before the config file is read.
pub struct ParsedArgs {
    pub flags: KubeletFlags,
    /// Config-setting flags in command-line order: (flag name, value).
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

/// The clap command for the kubelet (used for parsing and `--help`).
pub fn command() -> Command {
    let mut cmd = Command::new("kubelet")
        .about("The kubelet is the primary \"node agent\" that runs on each node.")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .help("help for kubelet")
                .action(ArgAction::SetTrue),
        )
        .arg(
            Arg::new("version")
                .long("version")
                .help("--version, --version=raw prints version information and quits")
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .action(ArgAction::Append),
        );
    for (name, is_bool, _, help, _) in KUBELET_FLAGS {
        let mut arg = go_arg(name, *is_bool, help);
        if *name == "v" {
            arg = arg.short('v');
        }
        cmd = cmd.arg(arg);
    }
    for f in config_flags() {
        cmd = cmd.arg(go_arg(f.name, f.is_bool, f.help));
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
            message: format!("unknown command {arg}"),
        },
        _ => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid command line")
                .trim_start_matches("error: ");
            ConfigError::Usage {
                message: first.to_string(),
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
