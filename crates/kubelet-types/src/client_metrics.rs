//! What the API client reports of each request it sends (component-base's `restclient`
//! metrics): the kubelet's metrics implement [`RequestObserver`], the cluster-mode crate's
//! client layer calls it.

use std::time::Duration;

/// Receives each finished request.
pub trait RequestObserver: Send + Sync + 'static {
    /// One request: its HTTP `method`, the API server's `host:port`, the status `code` (`<error>`
    /// when no answer came) and how long the answer took (for a watch, until its headers).
    fn observe(&self, method: &str, host: &str, code: &str, elapsed: Duration);
}
