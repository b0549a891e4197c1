//! `/metrics/cadvisor`: cAdvisor's container metrics as the kubelet exposes them (the families,
//! help texts and labels of the kinds upstream enables: cpu, memory, disk I/O, root disk use,
//! network, processes, OOM events, pressure on cgroup v2, and the machine figures), from the
//! latest snapshot. Every container sample carries `container`, `id`, `image`, `name`,
//! `namespace` and `pod`; labels are sorted by name, families by name, samples in sampling order.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::collector::{CgroupRecord, StatsSnapshot};
use crate::prober::metrics::escape;

struct Family {
    help: &'static str,
    kind: &'static str,
    /// (rendered labels, value, timestamp ms), in the order the cgroups were sampled (the text
    /// format asks for no order within a family).
    samples: Vec<(Labels, f64, Option<u128>)>,
}

/// A rendered label set, shared by the many families of one cgroup.
type Labels = Rc<str>;

#[derive(Default)]
struct Families(BTreeMap<&'static str, Family>);

impl Families {
    fn add(&mut self, name: &'static str, help: &'static str, kind: &'static str, labels: impl Into<Labels>, value: f64, ts: Option<u128>) {
        self.0.entry(name).or_insert_with(|| Family { help, kind, samples: Vec::new() }).samples.push((labels.into(), value, ts));
    }

    fn render(self) -> String {
        let samples: usize = self.0.values().map(|f| f.samples.len()).sum();
        let mut out = String::with_capacity(samples * 256);
        for (name, f) in &self.0 {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {}", f.help, f.kind);
            for (labels, value, ts) in &f.samples {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    out.push_str(labels);
                    out.push('}');
                }
                out.push(' ');
                push_number(&mut out, *value);
                if let Some(ts) = ts {
                    let _ = write!(out, " {ts}");
                }
                out.push('\n');
            }
        }
        out
    }
}

/// A value as Prometheus text: integers without a fraction.
fn push_number(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `name="value"` pairs sorted by name.
fn label_text(mut pairs: Vec<(&str, String)>) -> String {
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect::<Vec<_>>().join(",")
}

fn base(r: &CgroupRecord) -> Vec<(&'static str, String)> {
    vec![
        ("container", r.container.clone()),
        ("id", r.id.clone()),
        ("image", r.image.clone()),
        ("name", r.name.clone()),
        ("namespace", r.namespace.clone()),
        ("pod", r.pod.clone()),
    ]
}

fn with(r: &CgroupRecord, extra: &[(&'static str, String)]) -> String {
    let mut l = base(r);
    l.extend(extra.iter().cloned());
    label_text(l)
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// The body for `snapshot`, scraped at `now`.
pub fn render(snapshot: Option<&StatsSnapshot>) -> String {
    render_at(snapshot, SystemTime::now())
}

/// [`render`] with the scrape time given (`container_last_seen` and its timestamps); without
/// a snapshot, only `container_scrape_error 1`.
pub fn render_at(snapshot: Option<&StatsSnapshot>, now: SystemTime) -> String {
    let mut f = Families::default();
    let Some(s) = snapshot else {
        f.add(
            "container_scrape_error",
            "1 if there was an error while getting container metrics, 0 otherwise",
            "gauge",
            String::new(),
            1.0,
            None,
        );
        return f.render();
    };
    f.add(
        "container_scrape_error",
        "1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
        String::new(),
        0.0,
        None,
    );
    f.add("machine_scrape_error", "1 if there was an error while getting machine metrics, 0 otherwise.", "gauge", String::new(), 0.0, None);
    let m = &s.machine;
    let machine =
        label_text(vec![("boot_id", m.boot_id.clone()), ("machine_id", m.machine_id.clone()), ("system_uuid", m.system_uuid.clone())]);
    f.add("machine_cpu_cores", "Number of logical CPU cores.", "gauge", machine.clone(), s.num_cores as f64, None);
    f.add("machine_memory_bytes", "Amount of memory installed on the machine.", "gauge", machine.clone(), s.memory_capacity as f64, None);
    f.add("machine_swap_bytes", "Amount of swap memory available on the machine.", "gauge", machine, m.swap_total as f64, None);
    let version = label_text(vec![
        ("cadvisorRevision", String::new()),
        ("cadvisorVersion", String::new()),
        ("dockerVersion", String::new()),
        ("kernelVersion", m.kernel_version.clone()),
        ("osVersion", m.os_image.clone()),
    ]);
    f.add(
        "cadvisor_version_info",
        "A metric with a constant '1' value labeled by kernel version, OS version, docker version, cadvisor version & cadvisor revision.",
        "gauge",
        version,
        1.0,
        None,
    );
    let ts = Some(millis(s.taken));
    for r in &s.cgroups {
        container_families(&mut f, s, r, ts, now);
    }
    root_disk_families(&mut f, s, ts);
    f.render()
}

fn container_families(f: &mut Families, s: &StatsSnapshot, r: &CgroupRecord, ts: Option<u128>, now: SystemTime) {
    let x = &r.sample;
    let l: Labels = with(r, &[]).into();
    let root = r.id == "/";
    if let Some(start) = r.start {
        let secs = start.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as f64;
        f.add("container_creation_time_seconds", "Container creation time since unix epoch in seconds.", "gauge", l.clone(), secs, None);
        f.add("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", "gauge", l.clone(), secs, None);
    }
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as f64;
    f.add("container_last_seen", "Last time a container was seen by the exporter", "gauge", l.clone(), now_secs, Some(millis(now)));
    f.add("container_health_state", "The result of the container's health check", "gauge", l.clone(), -1.0, Some(millis(now)));
    if let Some(p) = x.cpu_period_us {
        f.add("container_spec_cpu_period", "CPU period of the container.", "gauge", l.clone(), p as f64, None);
    }
    if let Some(q) = x.cpu_quota_us.filter(|q| *q > 0) {
        f.add("container_spec_cpu_quota", "CPU quota of the container.", "gauge", l.clone(), q as f64, None);
    }
    if let Some(sh) = x.cpu_shares {
        f.add("container_spec_cpu_shares", "CPU share of the container.", "gauge", l.clone(), sh as f64, None);
    }
    if let Some(mem) = &x.memory {
        let limit = if root { s.memory_capacity } else { mem.limit.unwrap_or(0) };
        let swap_limit = if root { s.machine.swap_total } else { mem.swap_limit.unwrap_or(0) };
        f.add("container_spec_memory_limit_bytes", "Memory limit for the container.", "gauge", l.clone(), limit as f64, None);
        f.add(
            "container_spec_memory_swap_limit_bytes",
            "Memory swap limit for the container.",
            "gauge",
            l.clone(),
            swap_limit as f64,
            None,
        );
        f.add(
            "container_spec_memory_reservation_limit_bytes",
            "Memory reservation limit for the container.",
            "gauge",
            l.clone(),
            mem.reservation as f64,
            None,
        );
    }
    // CPU.
    if let Some(u) = x.cpu_user_ns {
        f.add(
            "container_cpu_user_seconds_total",
            "Cumulative user cpu time consumed in seconds.",
            "counter",
            l.clone(),
            u as f64 / 1e9,
            ts,
        );
    }
    if let Some(u) = x.cpu_system_ns {
        f.add(
            "container_cpu_system_seconds_total",
            "Cumulative system cpu time consumed in seconds.",
            "counter",
            l.clone(),
            u as f64 / 1e9,
            ts,
        );
    }
    if let Some(u) = x.cpu_usage_ns.filter(|u| *u > 0) {
        f.add(
            "container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed in seconds.",
            "counter",
            with(r, &[("cpu", "total".into())]),
            u as f64 / 1e9,
            ts,
        );
    }
    if x.cpu_quota_us.is_some_and(|q| q > 0) {
        f.add(
            "container_cpu_cfs_periods_total",
            "Number of elapsed enforcement period intervals.",
            "counter",
            l.clone(),
            x.cpu_periods.unwrap_or(0) as f64,
            ts,
        );
        f.add(
            "container_cpu_cfs_throttled_periods_total",
            "Number of throttled period intervals.",
            "counter",
            l.clone(),
            x.cpu_throttled_periods.unwrap_or(0) as f64,
            ts,
        );
        f.add(
            "container_cpu_cfs_throttled_seconds_total",
            "Total time duration the container has been throttled.",
            "counter",
            l.clone(),
            x.cpu_throttled_ns.unwrap_or(0) as f64 / 1e9,
            ts,
        );
    }
    // Memory.
    if let Some(mem) = &x.memory {
        let g = |f: &mut Families, name, help, v: u64| f.add(name, help, "gauge", l.clone(), v as f64, ts);
        g(f, "container_memory_cache", "Number of bytes of page cache memory.", mem.cache);
        g(f, "container_memory_rss", "Size of RSS in bytes.", mem.rss);
        g(f, "container_memory_mapped_file", "Size of memory mapped files in bytes.", mem.mapped_file);
        g(f, "container_memory_swap", "Container swap usage in bytes.", mem.swap.unwrap_or(0));
        g(
            f,
            "container_memory_usage_bytes",
            "Current memory usage in bytes, including all memory regardless of when it was accessed",
            mem.usage,
        );
        g(f, "container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", mem.max_usage.unwrap_or(0));
        g(f, "container_memory_working_set_bytes", "Current working set in bytes.", mem.working_set());
        g(f, "container_memory_total_inactive_file_bytes", "Current total inactive file in bytes.", mem.inactive_file);
        f.add("container_memory_failcnt", "Number of memory usage hits limits", "counter", l.clone(), mem.failcnt.unwrap_or(0) as f64, ts);
        f.add(
            "container_memory_events_high_total",
            "Cumulative count of memory.high throttle events for the container",
            "counter",
            l.clone(),
            mem.events_high as f64,
            ts,
        );
        f.add(
            "container_memory_events_max_total",
            "Cumulative count of memory.max limit hit events for the container",
            "counter",
            l.clone(),
            mem.events_max as f64,
            ts,
        );
        for scope in ["container", "hierarchy"] {
            for (kind, v) in [("pgfault", mem.page_faults), ("pgmajfault", mem.major_page_faults)] {
                let labels = with(r, &[("failure_type", kind.into()), ("scope", scope.into())]);
                f.add(
                    "container_memory_failures_total",
                    "Cumulative count of memory allocation failures.",
                    "counter",
                    labels,
                    v as f64,
                    ts,
                );
            }
        }
        f.add(
            "container_oom_events_total",
            "Count of out of memory events observed for the container",
            "counter",
            l.clone(),
            mem.oom_kills as f64,
            ts,
        );
    }
    // Disk I/O per device.
    for b in &x.blkio {
        let dev = super::host::block_device_name(b.major, b.minor);
        let d = [("device", dev.clone())];
        let c = |f: &mut Families, name, help, v: u64| f.add(name, help, "counter", with(r, &d), v as f64, ts);
        c(f, "container_fs_reads_bytes_total", "Cumulative count of bytes read", b.read_bytes);
        c(f, "container_fs_reads_total", "Cumulative count of reads completed", b.reads);
        c(f, "container_fs_writes_bytes_total", "Cumulative count of bytes written", b.write_bytes);
        c(f, "container_fs_writes_total", "Cumulative count of writes completed", b.writes);
        for (op, v) in [("Read", b.read_bytes), ("Write", b.write_bytes)] {
            let labels = with(
                r,
                &[("device", dev.clone()), ("major", b.major.to_string()), ("minor", b.minor.to_string()), ("operation", op.into())],
            );
            f.add("container_blkio_device_usage_total", "Blkio Device bytes usage", "counter", labels, v as f64, ts);
        }
    }
    // Network (the node and sandboxes).
    for i in &r.network {
        let labels = with(r, &[("interface", i.name.clone())]);
        let c = |f: &mut Families, name, help, v: u64| f.add(name, help, "counter", labels.clone(), v as f64, ts);
        c(f, "container_network_receive_bytes_total", "Cumulative count of bytes received", i.rx_bytes);
        c(f, "container_network_receive_packets_total", "Cumulative count of packets received", i.rx_packets);
        c(f, "container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving", i.rx_dropped);
        c(f, "container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", i.rx_errors);
        c(f, "container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", i.tx_bytes);
        c(f, "container_network_transmit_packets_total", "Cumulative count of packets transmitted", i.tx_packets);
        c(f, "container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting", i.tx_dropped);
        c(f, "container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", i.tx_errors);
    }
    // Processes.
    let p = &r.processes;
    let g = |f: &mut Families, name, help, v: u64| f.add(name, help, "gauge", l.clone(), v as f64, ts);
    g(f, "container_processes", "Number of processes running inside the container.", p.processes);
    g(f, "container_file_descriptors", "Number of open file descriptors for the container.", p.file_descriptors);
    g(f, "container_sockets", "Number of open sockets for the container.", p.sockets);
    g(
        f,
        "container_threads_max",
        "Maximum number of threads allowed inside the container, infinity if value is zero",
        x.pids_max.unwrap_or(0),
    );
    g(f, "container_threads", "Number of threads running inside the container", if root { 0 } else { x.pids.unwrap_or(p.threads) });
    if let Some(n) = p.max_open_files_soft {
        let labels = with(r, &[("ulimit", "max_open_files".into())]);
        f.add(
            "container_ulimits_soft",
            "Soft ulimit values for the container root process. Unlimited if -1, except priority and nice",
            "gauge",
            labels,
            n as f64,
            ts,
        );
    }
    // Pressure (cgroup v2).
    let psi = [
        (
            &x.cpu_psi,
            "container_pressure_cpu_stalled_seconds_total",
            "Total time duration no tasks in the container could make progress due to CPU congestion.",
            "container_pressure_cpu_waiting_seconds_total",
            "Total time duration tasks in the container have waited due to CPU congestion.",
        ),
        (
            &x.memory_psi,
            "container_pressure_memory_stalled_seconds_total",
            "Total time duration no tasks in the container could make progress due to memory congestion.",
            "container_pressure_memory_waiting_seconds_total",
            "Total time duration tasks in the container have waited due to memory congestion.",
        ),
        (
            &x.io_psi,
            "container_pressure_io_stalled_seconds_total",
            "Total time duration no tasks in the container could make progress due to IO congestion.",
            "container_pressure_io_waiting_seconds_total",
            "Total time duration tasks in the container have waited due to IO congestion.",
        ),
    ];
    for (v, full, full_help, some, some_help) in psi {
        if let Some(v) = v {
            f.add(full, full_help, "counter", l.clone(), v.full.total as f64 / 1e6, ts);
            f.add(some, some_help, "counter", l.clone(), v.some.total as f64 / 1e6, ts);
        }
    }
}

/// The root cgroup's filesystem figures: the node filesystem's size and its disk's counters.
fn root_disk_families(f: &mut Families, s: &StatsSnapshot, ts: Option<u128>) {
    let Some(d) = &s.root_disk else { return };
    let root = CgroupRecord { id: "/".into(), ..Default::default() };
    let l: Labels = with(&root, &[("device", d.device.clone())]).into();
    let g = |f: &mut Families, name, help, kind, v: f64| f.add(name, help, kind, l.clone(), v, ts);
    g(f, "container_fs_inodes_free", "Number of available Inodes", "gauge", d.fs.inodes_free as f64);
    g(f, "container_fs_inodes_total", "Number of Inodes", "gauge", d.fs.inodes as f64);
    g(
        f,
        "container_fs_limit_bytes",
        "Number of bytes that can be consumed by the container on this filesystem.",
        "gauge",
        d.fs.capacity as f64,
    );
    g(f, "container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", "gauge", d.fs.used as f64);
    if let Some(io) = &d.io {
        // Completed reads and writes come from the root cgroup's block I/O where it has this
        // device (one sample per device and family).
        let root_blkio = s.cgroups.iter().find(|r| r.id == "/").is_some_and(|r| !r.sample.blkio.is_empty());
        if !root_blkio {
            g(f, "container_fs_reads_total", "Cumulative count of reads completed", "counter", io.reads as f64);
            g(f, "container_fs_writes_total", "Cumulative count of writes completed", "counter", io.writes as f64);
        }
        // Times in milliseconds divided by 1e9, as cAdvisor reports them.
        g(f, "container_fs_reads_merged_total", "Cumulative count of reads merged", "counter", io.reads_merged as f64);
        g(f, "container_fs_sector_reads_total", "Cumulative count of sector reads completed", "counter", io.sectors_read as f64);
        g(f, "container_fs_read_seconds_total", "Cumulative count of seconds spent reading", "counter", io.read_ms as f64 / 1e9);
        g(f, "container_fs_writes_merged_total", "Cumulative count of writes merged", "counter", io.writes_merged as f64);
        g(f, "container_fs_sector_writes_total", "Cumulative count of sector writes completed", "counter", io.sectors_written as f64);
        g(f, "container_fs_write_seconds_total", "Cumulative count of seconds spent writing", "counter", io.write_ms as f64 / 1e9);
        g(f, "container_fs_io_current", "Number of I/Os currently in progress", "gauge", io.in_progress as f64);
        g(f, "container_fs_io_time_seconds_total", "Cumulative count of seconds spent doing I/Os", "counter", io.io_ms as f64 / 1e9);
        g(
            f,
            "container_fs_io_time_weighted_seconds_total",
            "Cumulative weighted I/O time in seconds",
            "counter",
            io.weighted_io_ms as f64 / 1e9,
        );
    }
}

#[cfg(test)]
#[path = "cadvisor_metrics_tests.rs"]
mod tests;
