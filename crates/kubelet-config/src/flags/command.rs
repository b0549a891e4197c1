//! The clap command for the kubelet: every flag (kubelet-only, config and
//! removed) declared with Go pflag syntax, and clap's errors turned into the
//! messages upstream prints. Builds and reports only; values are applied in
//! `flags`.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command};

use super::kubelet_flags::KUBELET_FLAGS;
use crate::error::ConfigError;
use crate::flag_table::{REMOVED_FLAGS, config_flags};

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

pub(super) fn clap_error(e: clap::Error) -> ConfigError {
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
