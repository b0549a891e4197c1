//! The kubelet's own metrics on `/metrics` (upstream `pkg/kubelet/metrics`), under upstream's
//! names, help texts, buckets and stability levels: pod start and pod worker durations, PLEG
//! relist duration and interval, CRI operations ([`instrumented`]), evictions by signal, and
//! the process's `process_*` figures. One [`KubeletMetrics`] is made at start and handed to the parts that
//! record into it; `/metrics` renders it.

pub mod certificates;
pub mod families;
pub mod instrumented;

use std::fmt::Write as _;
use std::path::PathBuf;

use families::{CounterVec, DEF_BUCKETS, HistogramVec, exponential_buckets};

/// Upstream's `podStartupDurationBuckets`.
const POD_START_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 480.0, 600.0, 900.0, 1200.0,
    1800.0, 2700.0, 3600.0,
];

/// Upstream's `rest_client_request_duration_seconds` buckets.
const REST_CLIENT_BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];

/// Every metric the kubelet records as it works.
pub struct KubeletMetrics {
    /// `kubelet_pod_start_duration_seconds`: from the kubelet first seeing a pod to the
    /// end of the first sync that finds it running.
    pub pod_start_duration: HistogramVec,
    /// The pod startup latency SLI ([`crate::pod_startup_latency`]): from creation to all
    /// containers running as the watch shows it, less image pulls and init containers; and
    /// the same without the deductions.
    pub pod_start_sli_duration: HistogramVec,
    /// `kubelet_pod_start_total_duration_seconds`: the SLI duration without the deductions.
    pub pod_start_total_duration: HistogramVec,
    /// The SLI duration of the first pod off the host network, once one has started.
    pub first_network_pod_start_sli_duration: std::sync::Mutex<f64>,
    /// `kubelet_pod_worker_duration_seconds`: one pod sync, by `operation_type` (`create`,
    /// `update`, `sync`, `terminated`).
    pub pod_worker_duration: HistogramVec,
    /// `kubelet_pleg_relist_duration_seconds`: how long one PLEG relist takes.
    pub pleg_relist_duration: HistogramVec,
    /// `kubelet_pleg_relist_interval_seconds`: the time between the starts of PLEG relists.
    pub pleg_relist_interval: HistogramVec,
    /// `kubelet_runtime_operations_total`: CRI calls, by `operation_type`.
    pub runtime_operations: CounterVec,
    /// `kubelet_runtime_operations_errors_total`: failed CRI calls, by `operation_type`.
    pub runtime_operations_errors: CounterVec,
    /// `kubelet_runtime_operations_duration_seconds`: CRI call latency, by `operation_type`.
    pub runtime_operations_duration: HistogramVec,
    /// `kubelet_evictions`: pods evicted, by `eviction_signal`.
    pub evictions: CounterVec,
    /// Images removed by image GC, by reason (`age`, `space`).
    pub image_garbage_collected: CounterVec,
    /// Checks whether a pod may use a present image, by result (`credentialPolicyAllowed`,
    /// `credentialRecordFound`, `mustAuthenticate`, `error`).
    pub image_mustpull_checks: CounterVec,
    /// Credential provider plugin runs, by plugin (`plugin_name`).
    pub credential_provider_plugin_duration: HistogramVec,
    /// `kubelet_credential_provider_plugin_errors_total`: failed plugin runs, by `plugin_name`.
    pub credential_provider_plugin_errors: CounterVec,
    /// The credential provider configuration's hash, when plugins are configured.
    pub credential_provider_config_hash: std::sync::OnceLock<String>,
    /// `<root-dir>/image_manager` when pull records are kept: its files are counted on render.
    pub image_manager_dir: std::sync::OnceLock<PathBuf>,
    /// The API client's requests (`rest_client_*`), by status code, method and host.
    pub rest_client_requests: CounterVec,
    /// `rest_client_request_duration_seconds`: API request latency, by `verb` and `host`.
    pub rest_client_request_duration: HistogramVec,
    /// The client and serving certificates' TTL, renewal errors and rotations.
    pub certificates: certificates::CertificateMetrics,
    /// `/proc` of this process, for the `process_*` figures.
    proc_self: PathBuf,
}

impl Default for KubeletMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl KubeletMetrics {
    /// Every family, empty, with the `process_*` figures read from `/proc/self`.
    pub fn new() -> Self {
        KubeletMetrics {
            pod_start_duration: HistogramVec::new(
                "kubelet_pod_start_duration_seconds",
                "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
                "ALPHA",
                &[],
                POD_START_BUCKETS.to_vec(),
            ),
            pod_start_sli_duration: HistogramVec::new(
                "kubelet_pod_start_sli_duration_seconds",
                "Duration in seconds to start a pod, excluding time to pull images and run init containers, measured from pod creation timestamp to when all its containers are reported as started and observed via watch",
                "ALPHA",
                &[],
                POD_START_BUCKETS.to_vec(),
            ),
            pod_start_total_duration: HistogramVec::new(
                "kubelet_pod_start_total_duration_seconds",
                "Duration in seconds to start a pod since creation, including time to pull images and run init containers, measured from pod creation timestamp to when all its containers are reported as started and observed via watch",
                "ALPHA",
                &[],
                POD_START_BUCKETS.to_vec(),
            ),
            first_network_pod_start_sli_duration: std::sync::Mutex::new(0.0),
            pod_worker_duration: HistogramVec::new(
                "kubelet_pod_worker_duration_seconds",
                "Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync",
                "ALPHA",
                &["operation_type"],
                DEF_BUCKETS.to_vec(),
            ),
            pleg_relist_duration: HistogramVec::new(
                "kubelet_pleg_relist_duration_seconds",
                "Duration in seconds for relisting pods in PLEG.",
                "ALPHA",
                &[],
                DEF_BUCKETS.to_vec(),
            ),
            pleg_relist_interval: HistogramVec::new(
                "kubelet_pleg_relist_interval_seconds",
                "Interval in seconds between relisting in PLEG.",
                "ALPHA",
                &[],
                DEF_BUCKETS.to_vec(),
            ),
            runtime_operations: CounterVec::new(
                "kubelet_runtime_operations_total",
                "Cumulative number of runtime operations by operation type.",
                "ALPHA",
                &["operation_type"],
            ),
            runtime_operations_errors: CounterVec::new(
                "kubelet_runtime_operations_errors_total",
                "Cumulative number of runtime operation errors by operation type.",
                "ALPHA",
                &["operation_type"],
            ),
            runtime_operations_duration: HistogramVec::new(
                "kubelet_runtime_operations_duration_seconds",
                "Duration in seconds of runtime operations. Broken down by operation type.",
                "ALPHA",
                &["operation_type"],
                exponential_buckets(0.005, 2.5, 14),
            ),
            evictions: CounterVec::new(
                "kubelet_evictions",
                "Cumulative number of pod evictions by eviction signal",
                "ALPHA",
                &["eviction_signal"],
            ),
            image_garbage_collected: CounterVec::new(
                "kubelet_image_garbage_collected_total",
                "Total number of images garbage collected by the kubelet, whether through disk usage or image age.",
                "ALPHA",
                &["reason"],
            ),
            image_mustpull_checks: CounterVec::new(
                "kubelet_imagemanager_image_mustpull_checks_total",
                "Counter for how many times kubelet checked whether credentials need to be re-verified to access an image",
                "ALPHA",
                &["result"],
            ),
            credential_provider_plugin_duration: HistogramVec::new(
                "kubelet_credential_provider_plugin_duration",
                "Duration of execution in seconds for credential provider plugin",
                "ALPHA",
                &["plugin_name"],
                DEF_BUCKETS.to_vec(),
            ),
            credential_provider_plugin_errors: CounterVec::new(
                "kubelet_credential_provider_plugin_errors_total",
                "Number of errors from credential provider plugin",
                "ALPHA",
                &["plugin_name"],
            ),
            rest_client_requests: CounterVec::new(
                "rest_client_requests_total",
                "Number of HTTP requests, partitioned by status code, method, and host.",
                "ALPHA",
                &["code", "method", "host"],
            ),
            rest_client_request_duration: HistogramVec::new(
                "rest_client_request_duration_seconds",
                "Request latency in seconds. Broken down by verb, and host.",
                "ALPHA",
                &["verb", "host"],
                REST_CLIENT_BUCKETS.to_vec(),
            ),
            credential_provider_config_hash: std::sync::OnceLock::new(),
            image_manager_dir: std::sync::OnceLock::new(),
            certificates: certificates::CertificateMetrics::default(),
            proc_self: PathBuf::from("/proc/self"),
        }
    }

    /// Appends every family to `out`.
    pub fn render(&self, out: &mut String) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        self.certificates.render_client(now, out);
        self.certificates.render_serving(now, out);
        if let Some(hash) = self.credential_provider_config_hash.get() {
            let _ = writeln!(
                out,
                "# HELP kubelet_credential_provider_config_info [ALPHA] Information about the last applied credential provider configuration with hash as label\n# TYPE kubelet_credential_provider_config_info gauge\nkubelet_credential_provider_config_info{{hash=\"{hash}\"}} 1"
            );
        }
        self.credential_provider_plugin_duration.render(out);
        self.credential_provider_plugin_errors.render(out);
        self.evictions.render(out);
        let first = *self.first_network_pod_start_sli_duration.lock().expect("metrics lock");
        let _ = writeln!(
            out,
            "# HELP kubelet_first_network_pod_start_sli_duration_seconds [INTERNAL] Duration in seconds to start the first network pod, excluding time to pull images and run init containers, measured from pod creation timestamp to when all its containers are reported as started and observed via watch\n# TYPE kubelet_first_network_pod_start_sli_duration_seconds gauge\nkubelet_first_network_pod_start_sli_duration_seconds {first}"
        );
        self.image_garbage_collected.render(out);
        if let Some(dir) = self.image_manager_dir.get() {
            self.image_mustpull_checks.render(out);
            let count = |sub: &str| {
                std::fs::read_dir(dir.join(sub))
                    .map(|d| {
                        d.flatten()
                            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("sha256-") && !n.ends_with(".tmp")))
                            .count()
                    })
                    .unwrap_or(0)
            };
            let _ = writeln!(
                out,
                "# HELP kubelet_imagemanager_ondisk_pullintents [ALPHA] Number of ImagePullIntents stored on disk.\n# TYPE kubelet_imagemanager_ondisk_pullintents gauge\nkubelet_imagemanager_ondisk_pullintents {}",
                count("pulling")
            );
            let _ = writeln!(
                out,
                "# HELP kubelet_imagemanager_ondisk_pulledrecords [ALPHA] Number of ImagePulledRecords stored on disk.\n# TYPE kubelet_imagemanager_ondisk_pulledrecords gauge\nkubelet_imagemanager_ondisk_pulledrecords {}",
                count("pulled")
            );
        }
        self.pleg_relist_duration.render(out);
        self.pleg_relist_interval.render(out);
        self.pod_start_duration.render(out);
        self.pod_start_sli_duration.render(out);
        self.pod_start_total_duration.render(out);
        self.pod_worker_duration.render(out);
        self.rest_client_request_duration.render(out);
        self.rest_client_requests.render(out);
        self.runtime_operations.render(out);
        self.runtime_operations_duration.render(out);
        self.runtime_operations_errors.render(out);
        self.certificates.render_server_errors(out);
        process_metrics(&self.proc_self, out);
    }
}

/// The API client's requests, recorded as upstream's `restclient` metrics.
impl kubelet_types::client_metrics::RequestObserver for KubeletMetrics {
    fn observe(&self, method: &str, host: &str, code: &str, elapsed: std::time::Duration) {
        self.rest_client_requests.inc(&[code, method, host]);
        self.rest_client_request_duration.observe(&[method, host], elapsed.as_secs_f64());
    }
}

/// Certificate rotation's reports, recorded as upstream's certificate manager metrics.
impl kubelet_types::certificate_metrics::CertificateObserver for KubeletMetrics {
    fn rotating(&self, kind: kubelet_types::certificate_metrics::CertificateKind) {
        self.certificates.rotating(kind);
    }

    fn current(&self, kind: kubelet_types::certificate_metrics::CertificateKind, not_after: i64) {
        self.certificates.current(kind, not_after);
    }

    fn renewal_failed(&self, kind: kubelet_types::certificate_metrics::CertificateKind) {
        self.certificates.renewal_failed(kind);
    }

    fn rotated(&self, kind: kubelet_types::certificate_metrics::CertificateKind, lived_seconds: f64) {
        self.certificates.rotated(kind, lived_seconds);
    }
}

impl crate::server::MetricsSource for KubeletMetrics {
    fn render(&self) -> String {
        let mut out = String::new();
        KubeletMetrics::render(self, &mut out);
        out
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
const CLK_TCK: f64 = 100.0;

/// The `process_*` figures of the Prometheus client (cpu, memory, fds, start time).
fn process_metrics(proc_self: &std::path::Path, out: &mut String) {
    let stat = std::fs::read_to_string(proc_self.join("stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: state is field 3.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    };
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        gauge(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", (utime + stime) / CLK_TCK);
    }
    let fds = std::fs::read_dir(proc_self.join("fd")).map(|d| d.count()).unwrap_or(0);
    gauge(out, "process_open_fds", "Number of open file descriptors.", "gauge", fds as f64);
    let limits = std::fs::read_to_string(proc_self.join("limits")).unwrap_or_default();
    if let Some(max) = crate::stats::host::max_open_files_soft(&limits) {
        gauge(out, "process_max_fds", "Maximum number of open file descriptors.", "gauge", max as f64);
    }
    let status = std::fs::read_to_string(proc_self.join("status")).unwrap_or_default();
    let kib = |key: &str| {
        status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<f64>().ok())
    };
    if let Some(rss) = kib("VmRSS:") {
        gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", rss * 1024.0);
    }
    if let Some(vm) = kib("VmSize:") {
        gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", vm * 1024.0);
    }
    let boot = crate::stats::host::boot_time(std::path::Path::new("/proc")).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    if let (Some(start_ticks), Some(boot)) = (field(22), boot) {
        gauge(
            out,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
            boot.as_secs() as f64 + start_ticks / CLK_TCK,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_families_and_this_process() {
        let m = KubeletMetrics::new();
        m.pod_worker_duration.observe(&["create"], 0.2);
        m.evictions.inc(&["emptydirfs.limit"]);
        let mut out = String::new();
        m.render(&mut out);
        for want in [
            "# HELP kubelet_pod_start_duration_seconds [ALPHA] Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run\n",
            "kubelet_pod_worker_duration_seconds_bucket{operation_type=\"create\",le=\"0.25\"} 1\n",
            "kubelet_pleg_relist_duration_seconds_count 0\n",
            "kubelet_evictions{eviction_signal=\"emptydirfs.limit\"} 1\n",
            "# TYPE process_cpu_seconds_total counter\n",
            "process_resident_memory_bytes ",
            "process_start_time_seconds ",
        ] {
            assert!(out.contains(want), "{want:?} in {out}");
        }
    }
}
