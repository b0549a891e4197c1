//! [`ApiError`]: what went wrong talking to the API server, reduced to what callers decide on
//! (not found, conflict, already exists, anything else). Owns no I/O.

/// A failed API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404: the object does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What the request was about, e.g. `nodes/knode-node` or `pods/<namespace>/<name>`.
        what: String,
    },
    /// 409 on create: the object already exists.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What the request was about, e.g. `nodes/knode-node` or `pods/<namespace>/<name>`.
        what: String,
    },
    /// 409 on update: the object changed since it was read.
    #[error("conflict on {what}: {message}")]
    Conflict {
        /// What the request was about, e.g. `nodes/knode-node` or `pods/<namespace>/<name>`.
        what: String,
        /// The `message` of the API server's `Status` answer.
        message: String,
    },
    /// 410: the watch's resource version is too old; list again.
    #[error("resource version of {what} expired: {message}")]
    Gone {
        /// What the request was about, e.g. `nodes/knode-node` or `pods/<namespace>/<name>`.
        what: String,
        /// The `message` of the API server's `Status` answer.
        message: String,
    },
    /// Any other status the API server answered with.
    #[error("{what}: API server answered {code} {reason}: {message}")]
    Status {
        /// What the request was about, e.g. `nodes/knode-node` or `pods/<namespace>/<name>`.
        what: String,
        /// The HTTP status code (`Status.code`).
        code: u16,
        /// The machine-readable `Status.reason` (`Forbidden`, `Timeout`, ...).
        reason: String,
        /// The `message` of the API server's `Status` answer.
        message: String,
    },
    /// The request never got an answer (connection refused, TLS, timeout, decoding).
    #[error("{what}: {message}")]
    Transport {
        /// What the request was about, e.g. `nodes/knode-node` or `pods/<namespace>/<name>`.
        what: String,
        /// The client's description of the failure.
        message: String,
    },
}

impl ApiError {
    /// Maps an API `Status` answer.
    pub fn from_status(what: String, code: u16, reason: &str, message: &str) -> ApiError {
        match (code, reason) {
            (404, _) => ApiError::NotFound { what },
            (409, "AlreadyExists") => ApiError::AlreadyExists { what },
            (409, _) => ApiError::Conflict { what, message: message.into() },
            (410, _) => ApiError::Gone { what, message: message.into() },
            _ => ApiError::Status { what, code, reason: reason.into(), message: message.into() },
        }
    }

    /// Whether the object does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::NotFound { .. })
    }

    /// Whether an update lost a race with another writer (409 `Conflict`).
    pub fn is_conflict(&self) -> bool {
        matches!(self, ApiError::Conflict { .. })
    }

    /// Whether a create found the object already there (409 `AlreadyExists`).
    pub fn is_already_exists(&self) -> bool {
        matches!(self, ApiError::AlreadyExists { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_status_codes() {
        assert!(ApiError::from_status("nodes/a".into(), 404, "NotFound", "").is_not_found());
        assert!(ApiError::from_status("nodes/a".into(), 409, "AlreadyExists", "").is_already_exists());
        assert!(ApiError::from_status("nodes/a".into(), 409, "Conflict", "x").is_conflict());
        assert!(matches!(ApiError::from_status("pods".into(), 410, "Expired", "old"), ApiError::Gone { .. }));
        let e = ApiError::from_status("pods/x".into(), 403, "Forbidden", "no");
        assert_eq!(e.to_string(), "pods/x: API server answered 403 Forbidden: no");
    }
}
