//! The Go (pflag) style command line both components share: `--flag=value`
//! and `--flag value`, bool flags that take a value only with `=`, `-v`,
//! repeated flags kept in command-line order, `-h`/`--help` and `--version`,
//! clap's errors turned into the messages upstream prints, and flags
//! upstream removed (accepted, hidden, warned about).
//!
//! The flag tables and what a flag sets belong to each component's crate;
//! this module builds the command from them and reports what was given.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command};

use crate::error::{ConfigError, ConfigWarning, Origin, WarningKind};
use crate::{Component, KUBERNETES_VERSION};

/// A flag upstream removed: `(name, is_bool, why)`. Accepted, ignored, warned about.
pub type RemovedFlag = (&'static str, bool, &'static str);

/// klog flags removed in Kubernetes 1.26 that both components still accept
/// with the same reason (`--log-dir`, `--log-file` and `--logtostderr` are
/// in each component's own table: the kubelet says more about them).
pub const KLOG_REMOVED_FLAGS: &[RemovedFlag] = &[
    ("add-dir-header", true, KLOG_REMOVED),
    ("alsologtostderr", true, KLOG_REMOVED),
    ("log-backtrace-at", false, KLOG_REMOVED),
    ("log-file-max-size", false, KLOG_REMOVED),
    ("one-output", true, KLOG_REMOVED),
    ("skip-headers", true, KLOG_REMOVED),
    ("skip-log-headers", true, KLOG_REMOVED),
    ("stderrthreshold", false, KLOG_REMOVED),
];

/// Why the klog flags are gone.
pub const KLOG_REMOVED: &str = "klog flag removed in Kubernetes 1.26";

/// `a` then `b` as one array, for a `const` table made of two (`N` must be
/// the sum of their lengths; a wrong `N` fails to compile in a `const`).
pub const fn join_removed<const N: usize>(a: &[RemovedFlag], b: &[RemovedFlag]) -> [RemovedFlag; N] {
    assert!(a.len() + b.len() == N, "N must be a.len() + b.len()");
    let mut out = [("", false, ""); N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - a.len()];
        i += 1;
    }
    out
}

/// A Go flag: bool flags take a value only as `--name=value`, others take
/// the next argument even when it starts with `-`. `v` also answers to `-v`.
pub fn go_arg(name: &'static str, is_bool: bool, help: &'static str) -> Arg {
    let arg = Arg::new(name).long(name).help(help).action(ArgAction::Append);
    let arg = if name == "v" { arg.short('v') } else { arg };
    if is_bool { arg.num_args(0..=1).require_equals(true).default_missing_value("true") } else { arg.num_args(1).allow_hyphen_values(true) }
}

/// The component's clap command (for parsing and `--help`): `-h`/`--help`,
/// `--version[=raw]`, then `args` in `--help` order, then the `removed`
/// flags, hidden.
pub fn command<C: Component>(about: &'static str, args: impl IntoIterator<Item = Arg>, removed: &[RemovedFlag]) -> Command {
    let cmd = Command::new(C::NAME)
        .about(about)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(Arg::new("help").short('h').long("help").help(format!("help for {}", C::NAME)).action(ArgAction::SetTrue))
        .arg(
            Arg::new("version")
                .long("version")
                .help("--version, --version=raw prints version information and quits")
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .action(ArgAction::Append),
        )
        .args(args);
    removed.iter().fold(cmd, |cmd, (name, is_bool, _)| cmd.arg(go_arg(name, *is_bool, "removed upstream; accepted and ignored").hide(true)))
}

/// A flag as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenFlag {
    /// The name without dashes.
    pub name: String,
    /// The value as given; `true` for a bool flag given without `=value`.
    pub value: String,
    /// True on the flag's first occurrence.
    pub first: bool,
}

/// Parses the command line (`args[0]` is the program name) with `cmd`.
/// Returns every flag given, in command-line order; `--help` and
/// `--version` come back as [`ConfigError::Help`] / [`ConfigError::Version`].
pub fn parse_command_line<C: Component, I, T>(cmd: &mut Command, args: I) -> Result<Vec<GivenFlag>, ConfigError<C>>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = cmd.try_get_matches_from_mut(args).map_err(clap_error)?;
    if matches.get_flag("help") {
        return Err(ConfigError::Help { text: cmd.render_help().to_string() });
    }
    if let Some(v) = matches.get_many::<String>("version").and_then(|mut v| v.next_back())
        && v != "false"
    {
        return Err(ConfigError::Version { text: format!("Kubernetes {KUBERNETES_VERSION} (knode {})", env!("CARGO_PKG_VERSION")) });
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
        let (Some(values), Some(indices)) = (matches.get_many::<String>(name), matches.indices_of(name)) else {
            continue;
        };
        for (value, index) in values.zip(indices) {
            given.push((index, name.to_string(), value.clone()));
        }
    }
    given.sort_by_key(|(i, _, _)| *i);
    let mut seen = std::collections::BTreeSet::new();
    Ok(given.into_iter().map(|(_, name, value)| GivenFlag { first: seen.insert(name.clone()), name, value }).collect())
}

/// clap's error as the message upstream prints.
fn clap_error<C: Component>(e: clap::Error) -> ConfigError<C> {
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    match (e.kind(), invalid) {
        (ErrorKind::UnknownArgument, Some(arg)) if arg.starts_with("--") => {
            ConfigError::UnknownFlag { flag: arg.split('=').next().unwrap_or(&arg).to_string() }
        }
        (ErrorKind::UnknownArgument, Some(arg)) if arg.starts_with('-') && arg.len() > 1 => {
            // The first character after the dash, whatever its width (`-é` must not panic).
            let shorthand = arg[1..].chars().next().unwrap_or('-');
            ConfigError::Usage { message: format!("unknown shorthand flag: '{shorthand}' in {arg}") }
        }
        (ErrorKind::UnknownArgument, Some(arg)) => ConfigError::Usage { message: C::unknown_command(&arg) },
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid command line");
            ConfigError::Usage { message: first.trim_start_matches("error: ").to_string() }
        }
    }
}

/// The warning for a deprecated flag (`flag` with dashes), in upstream's words.
pub fn deprecated_flag_warning(flag: &str, note: &str) -> ConfigWarning {
    ConfigWarning::new(&Origin::CommandLine, WarningKind::DeprecatedFlag, flag, format!("Flag {flag} has been deprecated, {note}"))
}

/// The warning for `name` (without dashes) if `removed` lists it.
pub fn removed_flag_warning(removed: &[RemovedFlag], name: &str) -> Option<ConfigWarning> {
    let (_, _, why) = removed.iter().find(|f| f.0 == name)?;
    let flag = format!("--{name}");
    let message = format!("flag {flag} is no longer supported upstream ({why}); ignored");
    Some(ConfigWarning::new(&Origin::CommandLine, WarningKind::RemovedFlag, flag, message))
}

#[cfg(test)]
mod tests;
