//! Loads the KubeProxyConfiguration and the kube-proxy.service flag lists
//! quoted in the seed documents (/work/shared/seeds 000 and 004), kept as
//! fixtures under tests/fixtures/seeds. They must load, with warnings for
//! what upstream removed.

use std::path::PathBuf;

use proxy_config::{LocalMode, ProxyMode, WarningKind, load_config_file, load_from_args};

/// This crate's directory, read at run time (cargo and nextest set it): a
/// test binary that cargo reuses from another checkout sharing the target
/// directory (CI's clone) must still read this checkout's files.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("tests/fixtures/seeds").join(name)
}

/// The words of a unit file's `ExecStart=` (`\` continuations joined; these
/// fixtures need no quoting rules).
fn exec_start_words(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let line = joined.lines().find_map(|l| l.trim().strip_prefix("ExecStart=")).expect("unit has an ExecStart line");
    line.split_whitespace().map(String::from).collect()
}

#[test]
fn seed_004_config_file_loads_with_warnings_for_removed_fields() {
    let (cfg, warnings) = load_config_file(&fixture("004-kube-proxy.config.yaml")).unwrap();
    assert_eq!(cfg.mode, ProxyMode::IPVS);
    assert_eq!(cfg.bind_address, "192.168.150.141");
    assert_eq!(cfg.healthz_bind_address, "192.168.150.141:10256");
    assert_eq!(cfg.metrics_bind_address, "192.168.150.141:10249");
    assert_eq!(cfg.cluster_cidr, "10.2.0.0/16");
    assert_eq!(cfg.hostname_override, "linux-node1");
    assert!(cfg.iptables.masquerade_all);
    assert_eq!(cfg.iptables.min_sync_period.as_secs(), 1, "0s is defaulted to 1s");
    assert_eq!(cfg.ipvs.sync_period.as_secs(), 30);
    assert_eq!(cfg.conntrack.max_per_core, 32768);
    assert_eq!(cfg.conntrack.tcp_established_timeout.as_secs(), 86400);
    assert_eq!(cfg.client_connection.kubeconfig, "/opt/kubernetes/cfg/kube-proxy.kubeconfig");
    assert_eq!(cfg.client_connection.qps, 5.0);
    assert_eq!(cfg.config_sync_period.as_secs(), 900);
    assert_eq!(cfg.oom_score_adj, -999);
    assert_eq!(cfg.detect_local_mode, LocalMode::ClusterCIDR);
    let removed: Vec<&str> = warnings.iter().filter(|w| w.kind == WarningKind::RemovedField).map(|w| w.field.as_str()).collect();
    assert_eq!(removed, ["resourceContainer", "udpIdleTimeout", "conntrack.max"]);
    assert!(warnings.iter().all(|w| w.kind != WarningKind::UnknownField), "{warnings:?}");
}

#[test]
fn seed_004_unit_loads_the_file_and_warns_about_klog_flags() {
    let unit = std::fs::read_to_string(fixture("004-kube-proxy.service")).unwrap();
    let mut args = exec_start_words(&unit);
    // The unit points at /opt/kubernetes/cfg; use the fixture instead.
    for a in &mut args {
        if a.starts_with("--config=") {
            *a = format!("--config={}", fixture("004-kube-proxy.config.yaml").display());
        }
    }
    let opts = load_from_args(&args).unwrap();
    assert_eq!(opts.config.mode, ProxyMode::IPVS);
    assert_eq!(opts.config.logging.verbosity, 2, "-v wins over the file");
    let removed: Vec<&str> = opts.warnings.iter().filter(|w| w.kind == WarningKind::RemovedFlag).map(|w| w.field.as_str()).collect();
    assert_eq!(removed, ["--alsologtostderr", "--logtostderr", "--log-dir"]);
}

#[test]
fn seed_000_unit_loads_from_flags() {
    let unit = std::fs::read_to_string(fixture("000-kube-proxy.service")).unwrap();
    let opts = load_from_args(exec_start_words(&unit)).unwrap();
    assert_eq!(opts.config.mode, ProxyMode::IPTables);
    assert_eq!(opts.config.cluster_cidr, "10.200.0.0/16");
    assert_eq!(opts.config.client_connection.kubeconfig, "/var/lib/kube-proxy/kubeconfig");
    assert_eq!(opts.config.logging.verbosity, 2);
    assert_eq!(opts.config.healthz_bind_address, "0.0.0.0:10256");
    assert!(opts.warnings.is_empty(), "{:?}", opts.warnings);
}
