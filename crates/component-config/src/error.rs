//! Errors and warnings of component configuration loading.
//!
//! Every error displays as one line naming where the problem is (file or
//! flag) and which field, and what was expected; the one exception is
//! upstream's two-line `--node-labels` refusal of the kubelet, kept word for
//! word. Warnings are values returned to the caller, and are also logged
//! where they are made. This module only describes problems; it finds none.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use crate::Component;

/// Where a setting came from: a configuration file, or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file at this path (`--config`).
    File(PathBuf),
    /// A command-line flag.
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::CommandLine => f.write_str("command line"),
        }
    }
}

/// Why a component's configuration could not be loaded. `C` names the
/// component in the messages about its file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError<C: Component> {
    /// The configuration file could not be read.
    #[error("{}: cannot read {} configuration file: {source}", path.display(), C::NAME)]
    Read {
        /// The configuration file's path, as given.
        path: PathBuf,
        /// The I/O error reading it.
        #[source]
        source: std::io::Error,
    },
    /// Not well-formed YAML/JSON, or not a mapping.
    #[error("{origin}: cannot parse {} configuration: {message}", C::NAME)]
    Syntax {
        /// The file or command line that holds the configuration.
        origin: Origin,
        /// The parser's description of what is wrong.
        message: String,
    },
    /// A field has a value of the wrong form (type, duration, quantity, ...).
    #[error("{origin}: field {field}: {message}")]
    Field {
        /// The file or command line the value came from.
        origin: Origin,
        /// Path of the field (`evictionHard.memory.available`) or the flag.
        field: String,
        /// What form the value was expected to have.
        message: String,
    },
    /// The configuration parsed but upstream validation refuses it.
    #[error("{origin}: invalid configuration: {field}: {message}")]
    Invalid {
        /// The file or command line the value came from.
        origin: Origin,
        /// Path of the refused field, as upstream validation names it.
        field: String,
        /// Why validation refuses the value.
        message: String,
    },
    /// A flag upstream does not know (`unknown flag: --foo`).
    #[error("unknown flag: {flag}")]
    UnknownFlag {
        /// The flag as given, with its dashes and without any `=value`.
        flag: String,
    },
    /// A known flag with a value it cannot take.
    #[error("invalid argument {value:?} for \"{flag}\" flag: {message}")]
    FlagValue {
        /// The flag's name with dashes (`--max-pods`).
        flag: String,
        /// The value given on the command line, verbatim.
        value: String,
        /// Why the value cannot be taken.
        message: String,
    },
    /// Any other command-line problem (missing value, stray argument...).
    #[error("{message}")]
    Usage {
        /// The complete one-line message, in upstream's wording.
        message: String,
    },
    /// `--node-labels` named labels the kubelet may not set on itself, or
    /// malformed label keys or values (the kubelet only).
    #[error("{message}")]
    NodeLabels {
        /// Upstream's two-line refusal naming the labels, word for word; or,
        /// for malformed keys or values, the one-line `invalid node labels: …`.
        message: String,
    },
    /// `--help` was given: print this text and exit 0.
    #[error("{text}")]
    Help {
        /// The rendered `--help` output.
        text: String,
    },
    /// `--version` was given: print this text and exit 0.
    #[error("{text}")]
    Version {
        /// The version line (`Kubernetes v1.37.2 (knode x.y.z)`).
        text: String,
    },
    /// Never made: only ties the component to the type.
    #[doc(hidden)]
    #[error("unreachable")]
    _Component(std::convert::Infallible, PhantomData<C>),
}

impl<C: Component> ConfigError<C> {
    /// The process exit code a binary should use for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Help { .. } | ConfigError::Version { .. } => 0,
            _ => 1,
        }
    }

    /// A field of `origin` with a value of the wrong form.
    pub fn field(origin: &Origin, field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Field { origin: origin.clone(), field: field.into(), message: message.into() }
    }

    /// A field of `origin` that upstream validation refuses.
    pub fn invalid(origin: &Origin, field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { origin: origin.clone(), field: field.into(), message: message.into() }
    }

    /// A flag (`--name`) given a value it cannot take.
    pub fn flag_value(flag: impl Into<String>, value: impl Into<String>, message: String) -> Self {
        ConfigError::FlagValue { flag: flag.into(), value: value.into(), message }
    }
}

/// What kind of thing a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// A field this version of the API does not have (typo, or another component's field).
    UnknownField,
    /// A field upstream removed from the configuration type; ignored.
    RemovedField,
    /// A field upstream still accepts but which no longer has any effect.
    DeprecatedField,
    /// A command-line flag upstream removed; accepted and ignored.
    RemovedFlag,
    /// A command-line flag upstream deprecated (it still works).
    DeprecatedFlag,
    /// A feature gate upstream removed after it graduated; ignored (kubelet).
    RemovedFeatureGate,
    /// A flag given together with `--config`, which upstream ignores (kube-proxy).
    IgnoredFlag,
}

/// A problem that does not stop the component: reported, logged, and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file or command line the setting came from.
    pub origin: Origin,
    /// What sort of problem this is.
    pub kind: WarningKind,
    /// Field path (`authentication.webhook.foo`) or flag (`--network-plugin`).
    pub field: String,
    /// The human-readable explanation, printed after the field.
    pub message: String,
}

impl ConfigWarning {
    /// Makes the warning and logs it.
    pub fn new(origin: &Origin, kind: WarningKind, field: impl Into<String>, message: impl Into<String>) -> Self {
        let w = ConfigWarning { origin: origin.clone(), kind, field: field.into(), message: message.into() };
        tracing::warn!(origin = %w.origin, field = %w.field, "{}", w);
        w
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.field, self.message)
    }
}

#[cfg(test)]
mod tests;
