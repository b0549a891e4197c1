//! Parsing of the `--container-runtime-endpoint` flag into a unix socket path.
//!
//! Accepts what upstream accepts on Linux: `unix:///path/to.sock` and, for compatibility, a bare
//! absolute path. Anything else (`tcp://`, `npipe://`) is rejected with [`CriError::Connect`].

use std::path::PathBuf;

use crate::CriError;

/// The unix socket path named by `endpoint`.
pub(crate) fn socket_path(endpoint: &str) -> Result<PathBuf, CriError> {
    let reject = |reason: &str| CriError::Connect { endpoint: endpoint.to_owned(), reason: reason.to_owned() };
    let path = match endpoint.split_once("://") {
        Some(("unix", rest)) => rest,
        Some((scheme, _)) => {
            return Err(reject(&format!("unsupported scheme {scheme:?}: only unix sockets are supported")));
        }
        None => endpoint,
    };
    if path.is_empty() {
        return Err(reject("empty socket path"));
    }
    if !path.starts_with('/') {
        return Err(reject("socket path must be absolute"));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_url_and_bare_path() {
        assert_eq!(socket_path("unix:///run/containerd/containerd.sock").ok(), Some(PathBuf::from("/run/containerd/containerd.sock")));
        assert_eq!(socket_path("/run/crio/crio.sock").ok(), Some(PathBuf::from("/run/crio/crio.sock")));
    }

    #[test]
    fn rejects_other_schemes_and_relative_paths() {
        for bad in ["tcp://127.0.0.1:1234", "npipe:////./pipe/x", "unix://", "", "unix://rel.sock", "x.sock"] {
            let err = socket_path(bad).expect_err(bad);
            assert!(matches!(err, CriError::Connect { .. }), "{bad}: {err}");
        }
    }
}
