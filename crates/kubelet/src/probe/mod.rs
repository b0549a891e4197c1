//! The checks behind probes and lifecycle hooks (upstream `pkg/probe`): run a command in a
//! container, GET a URL, open a TCP connection, ask a gRPC health service.
//!
//! Each check answers a [`ProbeOutcome`]: success, success with a warning (an HTTP redirect
//! that was not followed), or failure, with the output upstream puts in its events. The checks
//! know nothing about thresholds or pods; that is the prober's job ([`crate::prober`]).

pub mod exec;
pub mod grpc;
pub mod http;
pub mod tcp;
mod tls;

/// The result of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcomeKind {
    /// The check passed.
    Success,
    /// Counted as success, reported as a `ProbeWarning` event.
    Warning,
    /// The check failed (non-zero exit, bad HTTP status, refused connection, `NOT_SERVING`).
    Failure,
    /// The check could not be made (the runtime refused the exec, a named port is unknown):
    /// retried, then neither success nor failure, as upstream's `Unknown`.
    Error,
}

/// What one check found, with the output (or error) that explains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// Whether the check passed, warned, failed or could not be made.
    pub kind: ProbeOutcomeKind,
    /// The check's output (exec output, HTTP body) or the error, as put in probe events.
    pub output: String,
}

impl ProbeOutcome {
    /// A passed check with its output.
    pub fn success(output: impl Into<String>) -> Self {
        Self { kind: ProbeOutcomeKind::Success, output: output.into() }
    }

    /// A check passed with a warning, its output saying why.
    pub fn warning(output: impl Into<String>) -> Self {
        Self { kind: ProbeOutcomeKind::Warning, output: output.into() }
    }

    /// A failed check with its output or error.
    pub fn failure(output: impl Into<String>) -> Self {
        Self { kind: ProbeOutcomeKind::Failure, output: output.into() }
    }

    /// A check that could not be made, with the error.
    pub fn error(output: impl Into<String>) -> Self {
        Self { kind: ProbeOutcomeKind::Error, output: output.into() }
    }

    /// Success or warning.
    pub fn passed(&self) -> bool {
        matches!(self.kind, ProbeOutcomeKind::Success | ProbeOutcomeKind::Warning)
    }
}

/// Upstream reads at most this much of a probe's output (exec stdout, HTTP body).
pub const MAX_PROBE_OUTPUT: usize = 10 * 1024;

/// Lossy UTF-8 of at most [`MAX_PROBE_OUTPUT`] bytes.
pub(crate) fn bounded_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_PROBE_OUTPUT)]).into_owned()
}
