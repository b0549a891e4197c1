//! Pod events (`Pulling`, `Created`, `Started`, `Killing`, `BackOff`, ...) and node events
//! (`ImageGCFailed`, `FreeDiskSpaceFailed`, ...): [`EventRecorder`] is the boundary. A
//! standalone kubelet logs events; in cluster mode they are also posted as `v1.Event`s. The
//! reasons and messages follow upstream's wording.

use k8s_openapi::api::core::v1::Pod;

/// `Normal` or `Warning`, as in `v1.Event.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Routine progress (`Pulling`, `Started`, ...).
    Normal,
    /// Something went wrong or needs attention (`BackOff`, `Failed`, ...).
    Warning,
}

impl EventType {
    /// The `v1.Event.type` string: `Normal` or `Warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Receives the events of pods; implementations must not block.
pub trait EventRecorder: Send + Sync + 'static {
    /// An event about `pod`, with its upstream `reason` (`Pulling`, `BackOff`, ...) and
    /// human-readable `message`.
    fn event(&self, pod: &Pod, kind: EventType, reason: &str, message: &str);

    /// An event about this node; logged unless the recorder posts it somewhere.
    fn node_event(&self, kind: EventType, reason: &str, message: &str) {
        match kind {
            EventType::Normal => tracing::info!(reason, "node event: {message}"),
            EventType::Warning => tracing::warn!(reason, "node event: {message}"),
        }
    }
}

/// Writes events to the log (the standalone kubelet's recorder).
pub struct LogEventRecorder;

impl EventRecorder for LogEventRecorder {
    fn event(&self, pod: &Pod, kind: EventType, reason: &str, message: &str) {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        match kind {
            EventType::Normal => tracing::info!(pod = %format!("{ns}/{name}"), reason, "{message}"),
            EventType::Warning => tracing::warn!(pod = %format!("{ns}/{name}"), reason, "{message}"),
        }
    }
}
