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
use tokio::sync::{mpsc, watch};

use crate::{
    CONFIG_SEEN_ANNOTATION, CONFIG_SOURCE_ANNOTATION, PodSource, PodUpdate, SourceError,
    pod_full_name, pod_uid,
};

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
        let (tx, rx) = watch::channel(DesiredPods {
            sources_ready: ready,
            ..DesiredPods::default()
        });
        let config = PodConfig {
            configured,
            sets: BTreeMap::new(),
            seen_sources: BTreeSet::new(),
            tx,
            clock: SystemTime::now,
        };
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
        for mut pod in update.pods {
            let full_name = pod_full_name(&pod);
            if pod_uid(&pod).is_empty() {
                errors.push(rejected(
                    source,
                    format!("pod {full_name:?} has no UID, ignoring"),
                ));
                continue;
            }
            if !names.insert(full_name.clone()) {
                errors.push(rejected(
                    source,
                    format!("duplicate pod name {full_name:?}, ignoring"),
                ));
                continue;
            }
            let earlier = previous.get(pod_uid(&pod)).cloned();
            self.annotate(&mut pod, source, earlier.as_deref());
            // An unchanged pod keeps its published object, which the pod workers and the
            // status manager share, instead of a second equal copy.
            match earlier {
                Some(earlier) if *earlier == pod => pods.push(earlier),
                _ => pods.push(Arc::new(pod)),
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
        let annotations = pod.metadata.annotations.get_or_insert_default();
        annotations.insert(
            CONFIG_SOURCE_ANNOTATION.to_owned(),
            source.as_str().to_owned(),
        );
        let earlier = previous
            .and_then(|p| p.metadata.annotations.as_ref())
            .and_then(|a| a.get(CONFIG_SEEN_ANNOTATION))
            .cloned();
        match earlier {
            Some(seen) => {
                annotations.insert(CONFIG_SEEN_ANNOTATION.to_owned(), seen);
            }
            None => {
                annotations
                    .entry(CONFIG_SEEN_ANNOTATION.to_owned())
                    .or_insert_with(|| format_rfc3339_nano((self.clock)()));
            }
        }
    }

    fn publish(&self) {
        let mut desired = DesiredPods {
            sources_ready: self
                .configured
                .iter()
                .all(|s| self.seen_sources.contains(s)),
            ..DesiredPods::default()
        };
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

fn rejected(source: PodSource, message: String) -> SourceError {
    SourceError {
        path: source.as_str().to_owned(),
        message,
    }
}

fn same_state(a: &DesiredPods, b: &DesiredPods) -> bool {
    a.sources_ready == b.sources_ready
        && a.errors == b.errors
        && a.pods.len() == b.pods.len()
        && a.pods
            .iter()
            .zip(&b.pods)
            .all(|((ka, pa), (kb, pb))| ka == kb && same_ignoring_seen(pa, pb))
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

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction are dropped.
pub(crate) fn format_rfc3339_nano(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = since.subsec_nanos();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
