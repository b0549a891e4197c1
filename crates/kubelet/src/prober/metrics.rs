//! `prober_probe_total`: probe runs by container, probe type and result, and
//! `prober_probe_duration_seconds`: how long successful (and unknown) probes took, served at
//! `/metrics/probes` in the Prometheus text format as upstream names them. A pod's series go
//! away when its probes stop.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::ProbeKind;
use crate::kuberuntime::labels::PodRef;
use crate::metrics::families::{DEF_BUCKETS, HistogramVec};

/// `result` label values, as upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeRunResult {
    /// `successful`: the check passed (a warning included).
    Successful,
    /// `failed`: the check failed.
    Failed,
    /// `unknown`: the check could not be made.
    Unknown,
}

impl ProbeRunResult {
    fn as_str(self) -> &'static str {
        match self {
            ProbeRunResult::Successful => "successful",
            ProbeRunResult::Failed => "failed",
            ProbeRunResult::Unknown => "unknown",
        }
    }
}

/// (namespace, pod, pod UID, container, probe, result).
type Key = (String, String, String, String, ProbeKind, ProbeRunResult);

/// Counters and durations of probe runs.
pub struct ProbeCounters(Mutex<BTreeMap<Key, u64>>, HistogramVec);

impl Default for ProbeCounters {
    fn default() -> Self {
        let durations = HistogramVec::new(
            "prober_probe_duration_seconds",
            "Duration in seconds for a probe response.",
            "ALPHA",
            &["probe_type", "container", "pod", "namespace"],
            DEF_BUCKETS.to_vec(),
        );
        ProbeCounters(Mutex::default(), durations)
    }
}

impl ProbeCounters {
    /// Records how long a probe took; upstream keeps durations of successful and unknown
    /// results only.
    pub fn observe_duration(&self, pod: &PodRef, container: &str, kind: ProbeKind, result: ProbeRunResult, seconds: f64) {
        if result != ProbeRunResult::Failed {
            self.1.observe(&[kind.title(), container, &pod.name, &pod.namespace], seconds);
        }
    }

    /// Counts one probe run in `prober_probe_total`.
    pub fn inc(&self, pod: &PodRef, container: &str, kind: ProbeKind, result: ProbeRunResult) {
        let key = (pod.namespace.clone(), pod.name.clone(), pod.uid.clone(), container.to_owned(), kind, result);
        *self.0.lock().expect("probe counters lock").entry(key).or_default() += 1;
    }

    /// Drops the series of pod `uid`.
    pub fn remove_pod(&self, uid: &str) {
        let mut counters = self.0.lock().expect("probe counters lock");
        let names: Vec<(String, String)> = counters.keys().filter(|k| k.2 == uid).map(|k| (k.0.clone(), k.1.clone())).collect();
        counters.retain(|k, _| k.2 != uid);
        self.1.retain(|v| !names.iter().any(|(ns, pod)| v[2] == *pod && v[3] == *ns));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP prober_probe_total [BETA] Cumulative number of a liveness, readiness or startup probe for a container by result.\n# TYPE prober_probe_total counter\n",
        );
        for ((ns, pod, uid, container, kind, result), n) in self.0.lock().expect("probe counters lock").iter() {
            let _ = writeln!(
                out,
                "prober_probe_total{{container=\"{}\",namespace=\"{}\",pod=\"{}\",pod_uid=\"{}\",probe_type=\"{}\",result=\"{}\"}} {n}",
                escape(container),
                escape(ns),
                escape(pod),
                escape(uid),
                kind.title(),
                result.as_str()
            );
        }
        self.1.render(&mut out);
        out
    }
}

/// Label value escaping of the text format.
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_forgets_removed_pods() {
        let c = ProbeCounters::default();
        let web = PodRef { uid: "u1".into(), name: "web".into(), namespace: "default".into() };
        c.inc(&web, "app", ProbeKind::Liveness, ProbeRunResult::Successful);
        c.inc(&web, "app", ProbeKind::Liveness, ProbeRunResult::Successful);
        c.inc(&web, "app", ProbeKind::Readiness, ProbeRunResult::Failed);
        let text = c.render();
        assert!(text.starts_with("# HELP prober_probe_total"));
        assert!(text.contains("prober_probe_total{container=\"app\",namespace=\"default\",pod=\"web\",pod_uid=\"u1\",probe_type=\"Liveness\",result=\"successful\"} 2\n"), "{text}");
        assert!(text.contains("probe_type=\"Readiness\",result=\"failed\"} 1\n"), "{text}");
        c.observe_duration(&web, "app", ProbeKind::Liveness, ProbeRunResult::Successful, 0.02);
        c.observe_duration(&web, "app", ProbeKind::Readiness, ProbeRunResult::Failed, 0.02);
        let text = c.render();
        assert!(text.contains("prober_probe_duration_seconds_bucket{probe_type=\"Liveness\",container=\"app\",pod=\"web\",namespace=\"default\",le=\"0.025\"} 1\n"), "{text}");
        assert!(
            !text.contains("probe_type=\"Readiness\",container=\"app\",pod=\"web\",namespace=\"default\",le="),
            "failed probes have no duration: {text}"
        );
        c.remove_pod("u1");
        assert!(!c.render().contains("prober_probe_total{"));
        assert!(!c.render().contains("prober_probe_duration_seconds_bucket{"));
    }
}
