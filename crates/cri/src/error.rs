//! Typed errors of CRI calls: which operation failed, on which object, and the runtime's gRPC status.

/// A failed call to the container runtime.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CriError {
    /// The runtime socket could not be reached.
    #[error("cannot connect to the container runtime at {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    /// The runtime answered with a gRPC error.
    #[error("CRI {op} {object}: {code:?}: {message}")]
    Status { op: &'static str, object: String, code: tonic::Code, message: String },
    /// The call did not finish within the runtime request timeout.
    #[error("CRI {op} {object}: timed out after {timeout:?}")]
    Timeout { op: &'static str, object: String, timeout: std::time::Duration },
    /// The runtime answered, but without a field CRI requires (e.g. an empty sandbox ID).
    #[error("CRI {op} {object}: invalid response: {reason}")]
    InvalidResponse { op: &'static str, object: String, reason: String },
}

impl CriError {
    /// True when the runtime reported that the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CriError::Status { code: tonic::Code::NotFound, .. })
    }

    /// True when the runtime could not be reached (socket missing, runtime down or restarting).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CriError::Connect { .. } | CriError::Status { code: tonic::Code::Unavailable, .. })
    }
}
