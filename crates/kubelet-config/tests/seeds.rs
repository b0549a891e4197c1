//! Loads every KubeletConfiguration and every kubelet.service flag list quoted
//! in the seed documents (/work/shared/seeds), kept as fixtures under
//! tests/fixtures/seeds. They must load, with warnings for what upstream
//! removed, except where upstream refuses a value for security reasons.

use std::path::{Path, PathBuf};

use kubelet_config::{ConfigError, KubeletOptions, WarningKind, load_config_file, load_from_args};

/// This crate's directory, read at run time (cargo and nextest set it): a
/// test binary that cargo reuses from another checkout sharing the target
/// directory (CI's clone) must still read this checkout's files.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("tests/fixtures/seeds").join(name)
}

/// The words of a unit file's `ExecStart=`, split as a shell would: `\`
/// line continuations joined, quotes removed, `$VAR`/`${VAR}` references dropped.
fn exec_start_words(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let line = joined.lines().find_map(|l| l.trim().strip_prefix("ExecStart=")).expect("unit has an ExecStart line");
    shell_words(line)
}

fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
            }
            '"' | '\'' => {
                let w = cur.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    w.push(q);
                }
            }
            '$' => {
                // An environment reference: drop it (it expands to nothing here).
                let braced = chars.peek() == Some(&'{');
                while let Some(&n) = chars.peek() {
                    if braced && n == '}' {
                        chars.next();
                        break;
                    }
                    if !(braced || n.is_ascii_alphanumeric() || n == '_') {
                        break;
                    }
                    chars.next();
                }
            }
            other => cur.get_or_insert_with(String::new).push(other),
        }
    }
    words.extend(cur);
    words
}

/// ExecStart of `unit`, with `--config` pointed at the seed's own config
/// fixture (or dropped when the seed does not quote that file).
fn unit_args(unit: &str, config: Option<&str>) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(unit)).unwrap();
    exec_start_words(&text)
        .into_iter()
        .filter_map(|w| match (w.starts_with("--config="), config) {
            (true, Some(c)) => Some(format!("--config={}", fixture(c).display())),
            (true, None) => None,
            _ => Some(w),
        })
        .collect()
}

fn warned(o: &KubeletOptions, field: &str, kind: WarningKind) -> bool {
    o.warnings.iter().any(|w| w.field == field && w.kind == kind)
}

#[test]
fn splitter_handles_continuations_quotes_and_env() {
    let unit = "[Service]\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS \\\n  --a=\"x y\" ${KUBELET_EXTRA_ARGS} \\\n  --b='z'\n";
    assert_eq!(exec_start_words(unit), vec!["/usr/bin/kubelet", "--a=x y", "--b=z"]);
}

#[test]
fn seed_000_config_loads_cleanly() {
    let (c, w) = load_config_file(&fixture("000-kubelet-config.yaml")).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.authentication.x509.client_ca_file, "/var/lib/kubernetes/ca.pem");
    assert!(!c.authentication.anonymous.enabled && c.authentication.webhook.enabled);
    assert_eq!(c.cluster_dns, vec!["10.32.0.10"]);
    assert_eq!(c.pod_cidr, "10.20.0.0/16");
    assert_eq!(c.resolv_conf, "/run/systemd/resolve/resolv.conf");
    assert_eq!(c.runtime_request_timeout, std::time::Duration::from_secs(600));
    assert_eq!(c.tls_private_key_file, "/var/lib/kubelet/worker-0-key.pem");
}

#[test]
fn seed_000_unit_loads_with_removed_flag_warnings() {
    let o = load_from_args(unit_args("000-kubelet.service", Some("000-kubelet-config.yaml"))).unwrap();
    for flag in ["--container-runtime", "--image-pull-progress-deadline", "--network-plugin"] {
        assert!(warned(&o, flag, WarningKind::RemovedFlag), "{flag}: {:?}", o.warnings);
    }
    assert_eq!(o.config.container_runtime_endpoint, "unix:///var/run/crio/crio.sock");
    assert_eq!(o.config.image_service_endpoint, "unix:///var/run/crio/crio.sock");
    assert_eq!(o.flags.kubeconfig.as_deref(), Some(Path::new("/var/lib/kubelet/kubeconfig")));
    assert_eq!(o.flags.verbosity, 2);
    assert!(o.config.register_node);
    assert_eq!(o.config.cluster_dns, vec!["10.32.0.10"]);
}

#[test]
fn seed_001_unit_loads() {
    let o = load_from_args(unit_args("001-kubelet.service", None)).unwrap();
    assert_eq!(o.flags.hostname_override, "192.168.0.160");
    assert_eq!(o.flags.root_dir, PathBuf::from("/var/lib/kubelet"));
    assert_eq!(o.flags.kubeconfig.as_deref(), Some(Path::new("/etc/kubernetes/kubelet.kubeconfig")));
    assert_eq!(o.config.container_runtime_endpoint, "unix:///run/containerd/containerd.sock");
    assert!(o.warnings.iter().all(|w| w.kind == WarningKind::DeprecatedFlag), "{:?}", o.warnings);
}

#[test]
fn seed_003_cri_flags_load() {
    let o = load_from_args(unit_args("003-cri-flags.service", None)).unwrap();
    assert!(warned(&o, "--container-runtime", WarningKind::RemovedFlag));
    assert_eq!(o.config.container_runtime_endpoint, "unix:///run/containerd/containerd.sock");
    // Seed 003 also mentions --feature-gates=RotateKubeletServerCertificate=true: still a gate.
    let o = load_from_args(["kubelet", "--feature-gates=RotateKubeletServerCertificate=true"]).unwrap();
    assert_eq!(o.config.feature_gates.get("RotateKubeletServerCertificate"), Some(&true));
}

#[test]
fn seed_004_config_loads_with_deprecation_warnings() {
    let (c, w) = load_config_file(&fixture("004-kubelet-conf.yaml")).unwrap();
    let mut fields: Vec<&str> = w.iter().map(|w| w.field.as_str()).collect();
    fields.sort();
    assert_eq!(fields, ["iptablesDropBit", "iptablesMasqueradeBit", "streamingConnectionIdleTimeout"]);
    assert!(w.iter().all(|w| w.kind == WarningKind::DeprecatedField));
    assert_eq!(c.read_only_port, 10255);
    assert_eq!(c.cluster_domain, "cluster.local.");
    assert_eq!((c.event_record_qps, c.event_burst, c.kube_api_qps, c.kube_api_burst), (5, 10, 5, 10));
    assert_eq!(c.eviction_hard["nodefs.inodesFree"], "5%");
    assert_eq!(c.static_pod_path, "/opt/kubernetes/manifests");
    assert!(c.rotate_certificates && c.serialize_image_pulls);
    assert_eq!(c.authorization.webhook.cache_authorized_ttl, std::time::Duration::from_secs(300));
}

#[test]
fn seed_004_unit_is_refused_for_its_node_role_label() {
    let args = unit_args("004-kubelet.service", Some("004-kubelet-conf.yaml"));
    let err = load_from_args(args.clone()).unwrap_err();
    assert!(matches!(err, ConfigError::NodeLabels { .. }));
    assert_eq!(err.exit_code(), 1);
    let text = err.to_string();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [node-role.kubernetes.io/master]")
    );
    assert_eq!(
        lines.next(),
        Some(
            "--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix (kubelet.kubernetes.io, node.kubernetes.io) or be in the specifically allowed set (beta.kubernetes.io/arch, beta.kubernetes.io/instance-type, beta.kubernetes.io/os, failure-domain.beta.kubernetes.io/region, failure-domain.beta.kubernetes.io/zone, kubernetes.io/arch, kubernetes.io/hostname, kubernetes.io/os, node.kubernetes.io/instance-type, topology.kubernetes.io/region, topology.kubernetes.io/zone)"
        )
    );

    // Everything else in that unit is accepted, with warnings for the removed flags.
    let rest: Vec<String> = args.into_iter().filter(|a| !a.starts_with("--node-labels=")).collect();
    let o = load_from_args(rest).unwrap();
    for flag in [
        "--network-plugin",
        "--cni-conf-dir",
        "--cni-bin-dir",
        "--pod-infra-container-image",
        "--allow-privileged",
        "--alsologtostderr",
        "--logtostderr",
        "--log-dir",
    ] {
        assert!(warned(&o, flag, WarningKind::RemovedFlag), "{flag}: {:?}", o.warnings);
    }
    assert!(warned(&o, "iptablesDropBit", WarningKind::DeprecatedField));
    assert_eq!(o.flags.cert_dir, PathBuf::from("/opt/kubernetes/ssl"));
    assert_eq!(o.flags.bootstrap_kubeconfig.as_deref(), Some(Path::new("/opt/kubernetes/cfg/kubelet-bootstrap.kubeconfig")));
    assert_eq!(o.config.allowed_unsafe_sysctls, vec!["net.*"]);
    assert!(!o.config.fail_swap_on, "--fail-swap-on=false overrides failSwapOn: true from the file");
    assert_eq!(o.config.read_only_port, 10255);
}
