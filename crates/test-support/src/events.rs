//! [`RecordingEvents`]: an [`EventRecorder`] that keeps every pod and node event, for tests that
//! check which events the kubelet emitted and with what message.

use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use kubelet_types::events::{EventRecorder, EventType};

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// `namespace/name` of the pod, or `None` for a node event.
    pub pod: Option<String>,
    /// `Normal` or `Warning`.
    pub kind: EventType,
    /// The event's reason (`Pulled`, `BackOff`, `NodeReady`, ...).
    pub reason: String,
    /// The event's human-readable message.
    pub message: String,
}

/// Keeps every event in order.
#[derive(Default)]
pub struct RecordingEvents(Mutex<Vec<RecordedEvent>>);

impl RecordingEvents {
    /// Every event so far.
    pub fn all(&self) -> Vec<RecordedEvent> {
        self.0.lock().unwrap().clone()
    }

    /// The messages of the pod events with `reason`, in order.
    pub fn with_reason(&self, reason: &str) -> Vec<String> {
        self.0.lock().unwrap().iter().filter(|e| e.pod.is_some() && e.reason == reason).map(|e| e.message.clone()).collect()
    }

    /// `(reason, message)` of every node event, in order.
    pub fn node_events(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().iter().filter(|e| e.pod.is_none()).map(|e| (e.reason.clone(), e.message.clone())).collect()
    }
}

impl EventRecorder for RecordingEvents {
    fn event(&self, pod: &Pod, kind: EventType, reason: &str, message: &str) {
        let name =
            format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or("default"), pod.metadata.name.as_deref().unwrap_or_default());
        self.0.lock().unwrap().push(RecordedEvent { pod: Some(name), kind, reason: reason.into(), message: message.into() });
    }

    fn node_event(&self, kind: EventType, reason: &str, message: &str) {
        self.0.lock().unwrap().push(RecordedEvent { pod: None, kind, reason: reason.into(), message: message.into() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_pod_and_node_events_apart() {
        let events = RecordingEvents::default();
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        events.event(&pod, EventType::Warning, "BackOff", "back-off restarting");
        events.node_event(EventType::Warning, "ImageGCFailed", "no space");
        assert_eq!(events.with_reason("BackOff"), ["back-off restarting"]);
        assert_eq!(events.with_reason("ImageGCFailed"), Vec::<String>::new());
        assert_eq!(events.node_events(), [("ImageGCFailed".to_string(), "no space".to_string())]);
        assert_eq!(events.all()[0].pod.as_deref(), Some("default/web"));
    }
}
