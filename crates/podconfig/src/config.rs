//! `PodConfig`: merges the pod sets of all sources into one published desired state.
//!
//! Upstream `pkg/kubelet/config/config.go` (`PodConfig` + `podStorage`). Each source sends
//! its complete set ([`PodUpdate`], SET semantics); PodConfig keeps the latest set per
//! source and publishes [`DesiredPods`] on a `watch` channel — the only writer of it.
//! Within a source, a second pod with the same `name_namespace` is rejected (upstream
//! `filterInvalidPods`); across sources, a UID is owned by the first source in the
//! configured order and duplicates are logged. Every pod gets `kubernetes.io/config.source`
//! and, when first seen, `kubernetes.io/config.seen` (kept for as long as the UID stays).
//! A new state is published only when pods (ignoring `config.seen`), readiness or errors
//! changed. This module does no I/O besides reading the wall clock for `config.seen`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::{mpsc, watch};

use crate::{CONFIG_SEEN_ANNOTATION, CONFIG_SOURCE_ANNOTATION, PodSource, PodUpdate, SourceError, pod_full_name, pod_uid};

/// The merged desired state the kubelet works towards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredPods {
    /// Every desired pod, by UID.
    pub pods: BTreeMap<String, Arc<Pod>>,
    /// True once every configured source has delivered its first update (`SourcesReady`).
    pub sources_ready: bool,
    /// The latest manifest errors of every source, in source order.
    pub errors: Vec<SourceError>,
}

/// The merger of pod sources; run it with [`PodConfig::run`].
pub struct PodConfig {
    configured: Vec<PodSource>,
    sets: BTreeMap<PodSource, (Vec<Arc<Pod>>, Vec<SourceError>)>,
    seen_sources: BTreeSet<PodSource>,
    tx: watch::Sender<DesiredPods>,
    clock: fn() -> SystemTime,
}

impl PodConfig {
    /// A merger expecting updates from `sources`; their order decides who owns a UID.
    pub fn new(sources: &[PodSource]) -> (PodConfig, watch::Receiver<DesiredPods>) {
        let mut configured = Vec::new();
        for source in sources {
            if !configured.contains(source) {
                configured.push(*source);
            }
        }
        let ready = configured.is_empty();
        let (tx, rx) = watch::channel(DesiredPods { sources_ready: ready, ..DesiredPods::default() });
        let config = PodConfig { configured, sets: BTreeMap::new(), seen_sources: BTreeSet::new(), tx, clock: SystemTime::now };
        (config, rx)
    }

    /// Replaces the wall clock used for `kubernetes.io/config.seen` (for tests).
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    /// Applies updates until every sender is dropped.
    pub async fn run(mut self, mut rx: mpsc::Receiver<PodUpdate>) {
        while let Some(update) = rx.recv().await {
            self.apply(update);
        }
        tracing::debug!("all pod sources closed; pod config stops");
    }

    /// Applies one update and publishes the merged state if it changed.
    pub fn apply(&mut self, update: PodUpdate) {
        let source = update.source;
        if !self.configured.contains(&source) {
            tracing::warn!(%source, "update from a source that was not configured; accepting it last in order");
            self.configured.push(source);
        }
        let previous: BTreeMap<String, Arc<Pod>> = self.tx.borrow().pods.clone();
        let mut errors = update.errors;
        let mut names = HashSet::new();
        let mut pods = Vec::with_capacity(update.pods.len());
        for incoming in update.pods {
            let full_name = pod_full_name(&incoming);
            if pod_uid(&incoming).is_empty() {
                errors.push(rejected(source, format!("pod {full_name:?} has no UID, ignoring")));
                continue;
            }
            if !names.insert(full_name.clone()) {
                errors.push(rejected(source, format!("duplicate pod name {full_name:?}, ignoring")));
                continue;
            }
            // An unchanged pod keeps its published object, which the pod workers and the
            // status manager share: no copy is made. Only a new or changed pod is copied, to
            // carry the config annotations.
            let earlier = previous.get(pod_uid(&incoming)).cloned();
            match earlier {
                Some(earlier) if Arc::ptr_eq(&earlier, &incoming) || unchanged(&earlier, &incoming, source) => pods.push(earlier),
                // A source that annotates its pods itself (the API source) shares them: no copy.
                _ if annotated_from(&incoming, source, earlier.as_deref()) => pods.push(incoming),
                _ => {
                    let mut pod = Arc::unwrap_or_clone(incoming);
                    self.annotate(&mut pod, source, earlier.as_deref());
                    pods.push(Arc::new(pod));
                }
            }
        }
        for error in &errors {
            tracing::error!(%source, path = %error.path, "{}", error.message);
        }
        self.sets.insert(source, (pods, errors));
        self.seen_sources.insert(source);
        self.publish();
    }

    fn annotate(&self, pod: &mut Pod, source: PodSource, previous: Option<&Pod>) {
        annotate_from_source(pod, source, previous, self.clock);
    }

    fn publish(&self) {
        let mut desired =
            DesiredPods { sources_ready: self.configured.iter().all(|s| self.seen_sources.contains(s)), ..DesiredPods::default() };
        for source in &self.configured {
            let Some((pods, errors)) = self.sets.get(source) else {
                continue;
            };
            desired.errors.extend(errors.iter().cloned());
            for pod in pods {
                let uid = pod_uid(pod).to_owned();
                if let Some(owner) = desired.pods.get(&uid) {
                    tracing::warn!(%source, uid, pod = pod_full_name(pod), owner = pod_full_name(owner),
                        "pod with this UID already comes from an earlier source, ignoring");
                    continue;
                }
                desired.pods.insert(uid, Arc::clone(pod));
            }
        }
        self.tx.send_if_modified(|current| {
            if same_state(current, &desired) {
                return false;
            }
            *current = desired;
            true
        });
    }
}

/// Adds the annotations the config gives every pod: `kubernetes.io/config.source`, and
/// `kubernetes.io/config.seen` (kept from `previous`, the same pod as published before, else the
/// clock's time). A source that calls this on its pods before it sends them has them published
/// as they are, without a copy.
pub fn annotate_from_source(pod: &mut Pod, source: PodSource, previous: Option<&Pod>, clock: fn() -> SystemTime) {
    let annotations = pod.metadata.annotations.get_or_insert_default();
    annotations.insert(CONFIG_SOURCE_ANNOTATION.to_owned(), source.as_str().to_owned());
    let earlier = previous.and_then(|p| p.metadata.annotations.as_ref()).and_then(|a| a.get(CONFIG_SEEN_ANNOTATION)).cloned();
    match earlier {
        Some(seen) => {
            annotations.insert(CONFIG_SEEN_ANNOTATION.to_owned(), seen);
        }
        None => {
            annotations.entry(CONFIG_SEEN_ANNOTATION.to_owned()).or_insert_with(|| format_rfc3339_nano(clock()));
        }
    }
}

/// Whether `pod` already carries what [`annotate_from_source`] would give it after `earlier`.
fn annotated_from(pod: &Pod, source: PodSource, earlier: Option<&Pod>) -> bool {
    fn get<'a>(p: &'a Pod, key: &str) -> Option<&'a str> {
        p.metadata.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
    }
    let seen = get(pod, CONFIG_SEEN_ANNOTATION);
    get(pod, CONFIG_SOURCE_ANNOTATION) == Some(source.as_str())
        && seen.is_some()
        && earlier.and_then(|e| get(e, CONFIG_SEEN_ANNOTATION)).is_none_or(|e| Some(e) == seen)
}

fn rejected(source: PodSource, message: String) -> SourceError {
    SourceError { path: source.as_str().to_owned(), message }
}

fn same_state(a: &DesiredPods, b: &DesiredPods) -> bool {
    a.sources_ready == b.sources_ready
        && a.errors == b.errors
        && a.pods.len() == b.pods.len()
        && a.pods.iter().zip(&b.pods).all(|((ka, pa), (kb, pb))| ka == kb && same_ignoring_seen(pa, pb))
}

/// Whether `incoming` is `earlier` (published from `source`) but for the annotations the
/// config adds: compared in place, without copying either pod.
fn unchanged(earlier: &Pod, incoming: &Pod, source: PodSource) -> bool {
    fn others(pod: &Pod) -> Vec<(&String, &String)> {
        let added = |k: &str| k == CONFIG_SOURCE_ANNOTATION || k == CONFIG_SEEN_ANNOTATION;
        pod.metadata.annotations.iter().flatten().filter(|(k, _)| !added(k)).collect()
    }
    let annotation = |pod: &Pod, key: &str| pod.metadata.annotations.as_ref().and_then(|a| a.get(key)).cloned();
    // Destructured in full, so a new metadata field cannot be silently left out.
    let ObjectMeta {
        annotations: _,
        creation_timestamp,
        deletion_grace_period_seconds,
        deletion_timestamp,
        finalizers,
        generate_name,
        generation,
        labels,
        managed_fields,
        name,
        namespace,
        owner_references,
        resource_version,
        self_link,
        uid,
    } = &incoming.metadata;
    let a = &earlier.metadata;
    annotation(earlier, CONFIG_SOURCE_ANNOTATION).as_deref() == Some(source.as_str())
        && annotation(earlier, CONFIG_SEEN_ANNOTATION).is_some()
        && earlier.spec == incoming.spec
        && earlier.status == incoming.status
        && (&a.name, &a.namespace, &a.uid, &a.resource_version, &a.generation) == (name, namespace, uid, resource_version, generation)
        && (&a.labels, &a.owner_references, &a.finalizers, &a.managed_fields) == (labels, owner_references, finalizers, managed_fields)
        && (&a.deletion_timestamp, &a.deletion_grace_period_seconds) == (deletion_timestamp, deletion_grace_period_seconds)
        && (&a.creation_timestamp, &a.generate_name, &a.self_link) == (creation_timestamp, generate_name, self_link)
        && others(earlier) == others(incoming)
}

/// Pods are equal when they differ at most in `kubernetes.io/config.seen`.
fn same_ignoring_seen(a: &Pod, b: &Pod) -> bool {
    if a == b {
        return true;
    }
    let strip = |pod: &Pod| {
        let mut pod = pod.clone();
        if let Some(annotations) = pod.metadata.annotations.as_mut() {
            annotations.remove(CONFIG_SEEN_ANNOTATION);
        }
        pod
    };
    strip(a) == strip(b)
}

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction are dropped (jiff's
/// default precision does the same).
pub(crate) fn format_rfc3339_nano(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    k8s_openapi::jiff::Timestamp::from_nanosecond(since.as_nanos() as i128)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
