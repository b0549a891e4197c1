//! [`ApiError`] (`kubelet_types::api_error`) from what the `kube` client reports.

pub use kubelet_types::api_error::ApiError;

/// Maps a `kube` error for the request about `what` (`nodes/knode-node`, ...).
pub fn from_kube(what: impl Into<String>, err: kube::Error) -> ApiError {
    let what = what.into();
    match err {
        kube::Error::Api(status) => ApiError::from_status(what, status.code, &status.reason, &status.message),
        other => ApiError::Transport { what, message: other.to_string() },
    }
}
