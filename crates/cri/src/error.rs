//! Typed errors of CRI calls: which operation failed, on which object, and the runtime's gRPC status.

/// A failed call to the container runtime.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CriError {
    /// The runtime socket could not be reached.
    #[error("cannot connect to the container runtime at {endpoint}: {reason}")]
    Connect {
        /// The runtime endpoint as configured (`unix:///run/containerd/containerd.sock`).
        endpoint: String,
        /// Why the endpoint was refused or could not be dialled.
        reason: String,
    },
    /// The runtime answered with a gRPC error.
    #[error("CRI {op} {object}: {code:?}: {message}")]
    Status {
        /// The CRI method that failed (`RunPodSandbox`, `StartContainer`, ...).
        op: &'static str,
        /// The sandbox ID, container ID or image the call was about; empty for node-wide calls.
        object: String,
        /// The gRPC status code the runtime returned.
        code: tonic::Code,
        /// The runtime's status message.
        message: String,
    },
    /// The call did not finish within the runtime request timeout.
    #[error("CRI {op} {object}: timed out after {timeout:?}")]
    Timeout {
        /// The CRI method that failed (`RunPodSandbox`, `StartContainer`, ...).
        op: &'static str,
        /// The sandbox ID, container ID or image the call was about; empty for node-wide calls.
        object: String,
        /// The deadline the call ran out of.
        timeout: std::time::Duration,
    },
    /// The runtime answered, but without a field CRI requires (e.g. an empty sandbox ID).
    #[error("CRI {op} {object}: invalid response: {reason}")]
    InvalidResponse {
        /// The CRI method that failed (`RunPodSandbox`, `StartContainer`, ...).
        op: &'static str,
        /// The sandbox ID, container ID or image the call was about; empty for node-wide calls.
        object: String,
        /// What is wrong with the response (which required field is unset).
        reason: String,
    },
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
