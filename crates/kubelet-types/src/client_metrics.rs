//! What the API client reports of each request it sends (component-base's `restclient`
//! metrics): the kubelet's metrics implement [`RequestObserver`], the cluster-mode crate's
//! client layer calls it.

use std::time::Duration;

/// Receives each finished request.
pub trait RequestObserver: Send + Sync + 'static {
    fn observe(&self, method: &str, host: &str, code: &str, elapsed: Duration);
}
