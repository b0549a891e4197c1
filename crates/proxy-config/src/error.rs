//! Errors and warnings of kube-proxy configuration loading.
//!
//! Every error displays as one line naming where the problem is (file or
//! flag) and which field. Warnings are values returned to the caller, and are
//! also logged where they are made.

use std::fmt;
use std::path::PathBuf;

/// Where a setting came from: a configuration file, or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
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

/// Why kube-proxy's configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read kube-proxy configuration file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not well-formed YAML/JSON, or not a mapping.
    #[error("{origin}: cannot parse kube-proxy configuration: {message}")]
    Syntax { origin: Origin, message: String },
    /// A field has a value of the wrong form (type, duration, enum value...).
    #[error("{origin}: field {field}: {message}")]
    Field {
        origin: Origin,
        field: String,
        message: String,
    },
    /// The configuration parsed but upstream validation refuses it.
    #[error("{origin}: invalid configuration: {field}: {message}")]
    Invalid {
        origin: Origin,
        field: String,
        message: String,
    },
    #[error("unknown flag: {flag}")]
    UnknownFlag { flag: String },
    #[error("invalid argument {value:?} for \"{flag}\" flag: {message}")]
    FlagValue {
        flag: String,
        value: String,
        message: String,
    },
    #[error("{message}")]
    Usage { message: String },
    /// `--help`: print this text and exit 0.
    #[error("{text}")]
    Help { text: String },
    /// `--version`: print this text and exit 0.
    #[error("{text}")]
    Version { text: String },
}

impl ConfigError {
    /// The process exit code a binary should use for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Help { .. } | ConfigError::Version { .. } => 0,
            _ => 1,
        }
    }

    pub(crate) fn field(
        origin: &Origin,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError::Field {
            origin: origin.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(
        origin: &Origin,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            origin: origin.clone(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What kind of thing a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// A field this API version does not have (typo, or another component's field).
    UnknownField,
    /// A field upstream removed; ignored.
    RemovedField,
    /// A field upstream keeps but which has no effect.
    DeprecatedField,
    /// A flag upstream removed; accepted and ignored.
    RemovedFlag,
    /// A flag upstream deprecated (it still works).
    DeprecatedFlag,
    /// A flag given together with `--config`, which upstream ignores.
    IgnoredFlag,
}

/// A problem that does not stop kube-proxy: reported, logged, and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub origin: Origin,
    pub kind: WarningKind,
    /// Field path (`conntrack.max`) or flag (`--logtostderr`).
    pub field: String,
    pub message: String,
}

impl ConfigWarning {
    pub(crate) fn new(
        origin: &Origin,
        kind: WarningKind,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let w = ConfigWarning {
            origin: origin.clone(),
            kind,
            field: field.into(),
            message: message.into(),
        };
        tracing::warn!(origin = %w.origin, field = %w.field, "{}", w);
        w
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.field, self.message)
    }
}
