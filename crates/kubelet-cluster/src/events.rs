//! Pod and node events to the API server (upstream's event broadcaster and recorder):
//! `v1.Event`s naming the pod (or this node, e.g. `FreeDiskSpaceFailed`), from `kubelet` on this node, created at most eventRecordQPS per second
//! with bursts of eventBurst (0 QPS: no limit).
//!
//! [`EventSink::record`] never blocks: events queue on a bounded channel and are dropped (and
//! logged) when it is full, as upstream drops them. [`event_for`] is the pure builder;
//! [`EventSender::run`] is the I/O loop. Identical events are not yet aggregated into counts.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::EventApi;
use kubelet_types::events::{EventRecorder, EventType, LogEventRecorder};
use kubelet_types::rate_limit::RateLimiter;

/// Events waiting to be sent before new ones are dropped (upstream's queue length).
pub const QUEUE_LENGTH: usize = 1000;

/// What an event needs of its object: a pod, or the node.
#[derive(Debug, Clone, PartialEq)]
struct Subject {
    kind: &'static str,
    namespace: Option<String>,
    name: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
}

impl Subject {
    fn of(pod: &Pod) -> Self {
        let m = &pod.metadata;
        Self {
            kind: "Pod",
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
        }
    }

    /// The node, as upstream's `nodeRef`: no namespace, its name as UID; the event itself goes
    /// in `default`.
    fn node(name: &str) -> Self {
        Self { kind: "Node", namespace: None, name: Some(name.into()), uid: Some(name.into()), resource_version: None }
    }
}

/// An event as it waits in the queue: its pod's identity and its words, not the `v1.Event`
/// (several times larger; up to [`QUEUE_LENGTH`] of them wait at eventRecordQPS, e.g. three
/// per pod for a minute when 100 pods start at 5 QPS).
#[derive(Debug)]
struct Queued {
    subject: Subject,
    type_: String,
    reason: String,
    message: String,
    at: Time,
}

/// The event about `pod`, at `now` (nanoseconds since the epoch name it, as upstream).
pub fn event_for(pod: &Pod, type_: &str, reason: &str, message: &str, node: &str, now: Time) -> Event {
    event_about(Subject::of(pod), type_, reason, message, node, now)
}

fn event_about(subject: Subject, type_: &str, reason: &str, message: &str, node: &str, now: Time) -> Event {
    let namespace = subject.namespace.clone().unwrap_or_else(|| "default".into());
    let name = subject.name.unwrap_or_default();
    let nanos = now.0.as_nanosecond();
    Event {
        metadata: ObjectMeta { name: Some(format!("{name}.{nanos:x}")), namespace: Some(namespace.clone()), ..ObjectMeta::default() },
        involved_object: ObjectReference {
            api_version: (subject.kind == "Pod").then(|| "v1".into()),
            kind: Some(subject.kind.into()),
            name: Some(name),
            namespace: subject.namespace.map(|_| namespace),
            uid: subject.uid,
            resource_version: subject.resource_version,
            ..ObjectReference::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(type_.into()),
        source: Some(EventSource { component: Some("kubelet".into()), host: Some(node.into()) }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(node.into()),
        ..Event::default()
    }
}

/// Queues events for the API server; cheap to clone.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Queued>,
}

/// The sending side of an [`EventSink`].
pub struct EventSender {
    rx: mpsc::Receiver<Queued>,
    api: Arc<dyn EventApi>,
    limiter: RateLimiter,
    node: String,
}

impl EventSink {
    /// A sink for node `node` and its sender, limited to `qps` / `burst`.
    pub fn new(api: Arc<dyn EventApi>, node: &str, qps: i32, burst: i32) -> (EventSink, EventSender) {
        let (tx, rx) = mpsc::channel(QUEUE_LENGTH);
        let limiter = if qps > 0 { RateLimiter::new(f64::from(qps), burst) } else { RateLimiter::unlimited() };
        (EventSink { tx }, EventSender { rx, api, limiter, node: node.into() })
    }

    /// Queues an event about `pod`; drops it when the queue is full.
    pub fn record(&self, pod: &Pod, type_: &str, reason: &str, message: &str) {
        self.queue(Subject::of(pod), type_, reason, message);
    }

    /// Queues an event about node `node` (e.g. `ImageGCFailed`); drops it when the queue is full.
    pub fn record_node(&self, node: &str, type_: &str, reason: &str, message: &str) {
        self.queue(Subject::node(node), type_, reason, message);
    }

    fn queue(&self, subject: Subject, type_: &str, reason: &str, message: &str) {
        let at = Time(k8s_openapi::jiff::Timestamp::now());
        let queued = Queued { subject, type_: type_.into(), reason: reason.into(), message: message.into(), at };
        if self.tx.try_send(queued).is_err() {
            tracing::debug!(reason, "event queue full or closed; dropping event");
        }
    }
}

impl EventSender {
    /// Sends queued events until `shutdown` or until every sink is dropped.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let q = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = self.rx.recv() => match e { Some(e) => e, None => return },
            };
            let event = event_about(q.subject, &q.type_, &q.reason, &q.message, &self.node, q.at);
            self.limiter.acquire().await;
            if let Err(e) = self.api.create_event(&event).await {
                tracing::debug!(reason = event.reason.as_deref().unwrap_or_default(), "failed to post event: {e}");
            }
        }
    }
}

/// The kubelet's event recorder in cluster mode: each event is logged and posted.
pub struct ClusterEventRecorder {
    /// Where events are queued for posting as `v1.Event`s.
    pub sink: EventSink,
    /// This node's name, the subject of node events.
    pub node: String,
}

impl EventRecorder for ClusterEventRecorder {
    fn event(&self, pod: &Pod, kind: EventType, reason: &str, message: &str) {
        LogEventRecorder.event(pod, kind, reason, message);
        self.sink.record(pod, kind.as_str(), reason, message);
    }

    fn node_event(&self, kind: EventType, reason: &str, message: &str) {
        LogEventRecorder.node_event(kind, reason, message);
        self.sink.record_node(&self.node, kind.as_str(), reason, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use k8s_openapi::jiff::Timestamp;

    use crate::error::ApiError;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<Event>>);

    #[async_trait]
    impl EventApi for Recorded {
        async fn create_event(&self, event: &Event) -> Result<(), ApiError> {
            self.0.lock().unwrap().push(event.clone());
            Ok(())
        }
    }

    fn pod() -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("web".into());
        p.metadata.namespace = Some("prod".into());
        p.metadata.uid = Some("u1".into());
        p
    }

    #[test]
    fn event_names_the_pod_and_the_node() {
        let e = event_for(&pod(), "Normal", "Started", "Started container main", "n1", Time(Timestamp::from_second(1).unwrap()));
        assert_eq!(e.metadata.name.as_deref(), Some("web.3b9aca00"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("prod"));
        let o = &e.involved_object;
        assert_eq!((o.kind.as_deref(), o.name.as_deref(), o.uid.as_deref()), (Some("Pod"), Some("web"), Some("u1")));
        assert_eq!(e.source.unwrap().host.as_deref(), Some("n1"));
        assert_eq!((e.type_.as_deref(), e.count), (Some("Normal"), Some(1)));
    }

    #[test]
    fn node_event_names_the_node_without_a_namespace() {
        let e = event_about(Subject::node("n1"), "Warning", "FreeDiskSpaceFailed", "m", "n1", Time(Timestamp::from_second(1).unwrap()));
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
        let o = &e.involved_object;
        assert_eq!(
            (o.kind.as_deref(), o.name.as_deref(), o.uid.as_deref(), o.namespace.as_deref(), o.api_version.as_deref()),
            (Some("Node"), Some("n1"), Some("n1"), None, None)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sends_events_rate_limited() {
        let api = Arc::new(Recorded::default());
        let (sink, sender) = EventSink::new(api.clone(), "n1", 1, 2);
        for i in 0..4 {
            sink.record(&pod(), "Warning", "BackOff", &format!("m{i}"));
        }
        let stop = CancellationToken::new();
        let task = tokio::spawn(sender.run(stop.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(api.0.lock().unwrap().len(), 2, "burst of 2");
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert_eq!(api.0.lock().unwrap().len(), 4);
        let sent = api.0.lock().unwrap()[3].clone();
        assert_eq!(
            sent,
            event_for(&pod(), "Warning", "BackOff", "m3", "n1", sent.first_timestamp.clone().unwrap()),
            "built from the queued words, at record time"
        );
        stop.cancel();
        task.await.unwrap();
    }
}
