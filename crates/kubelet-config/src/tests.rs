//! Unit tests across modules: file loading (YAML/JSON, warnings, error
//! messages naming file and field), flag syntax, and flags overriding the file.

use std::io::Write;
use std::time::Duration;

use super::*;

const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

fn parse(body: &str) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    parse_config_bytes(
        "/etc/kubernetes/kubelet.yaml",
        format!("{HEAD}{body}").as_bytes(),
    )
}

fn err(body: &str) -> String {
    parse(body).unwrap_err().to_string()
}

fn args(list: &[&str]) -> Vec<String> {
    std::iter::once("kubelet")
        .chain(list.iter().copied())
        .map(String::from)
        .collect()
}

fn temp_config(body: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    write!(f, "{HEAD}{body}").unwrap();
    f
}

#[test]
fn empty_config_gets_upstream_defaults() {
    let (c, w) = parse("").unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c, KubeletConfiguration::default());
    assert_eq!(c.sync_frequency, Duration::from_secs(60));
    assert_eq!(c.file_check_frequency, Duration::from_secs(20));
    assert_eq!(c.node_status_report_frequency, Duration::from_secs(300));
    assert_eq!(c.port, 10250);
    assert_eq!(c.read_only_port, 0);
    assert_eq!(c.healthz_port, 10248);
    assert_eq!(
        c.container_runtime_endpoint,
        "unix:///run/containerd/containerd.sock"
    );
    assert_eq!(c.eviction_hard["memory.available"], "100Mi");
    assert_eq!(c.eviction_hard["imagefs.available"], "15%");
    assert!(c.authentication.webhook.enabled && !c.authentication.anonymous.enabled);
    assert_eq!(c.authorization.mode, "Webhook");
    assert_eq!(
        c.authorization.webhook.cache_unauthorized_ttl,
        Duration::from_secs(30)
    );
}

#[test]
fn zero_values_of_non_pointer_fields_are_defaulted() {
    let (c, _) = parse("port: 0\nsyncFrequency: 0s\naddress: \"\"\nmaxPods: 0\neventRecordQPS: 0\nfailSwapOn: false\n").unwrap();
    assert_eq!(c.port, 10250);
    assert_eq!(c.sync_frequency, Duration::from_secs(60));
    assert_eq!(c.address, "0.0.0.0");
    assert_eq!(c.max_pods, 110);
    // Pointer fields in Go keep explicit zero values.
    assert_eq!(c.event_record_qps, 0);
    assert!(!c.fail_swap_on);
}

#[test]
fn report_frequency_follows_explicit_update_frequency() {
    let (c, _) = parse("nodeStatusUpdateFrequency: 20s\n").unwrap();
    assert_eq!(c.node_status_report_frequency, Duration::from_secs(20));
    let (c, _) = parse("nodeStatusUpdateFrequency: 20s\nnodeStatusReportFrequency: 1m\n").unwrap();
    assert_eq!(c.node_status_report_frequency, Duration::from_secs(60));
}

#[test]
fn parallel_pulls_turn_off_serialized_pulls() {
    let (c, _) = parse("maxParallelImagePulls: 5\n").unwrap();
    assert!(!c.serialize_image_pulls);
    assert!(
        err("maxParallelImagePulls: 5\nserializeImagePulls: true\n")
            .contains("invalid configuration: maxParallelImagePulls")
    );
}

#[test]
fn json_is_accepted_and_nulls_mean_unset() {
    let json = r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","port":10251,"clusterDNS":["10.0.0.10"],"staticPodPath":null}"#;
    let (c, _) = parse_config_bytes("k.json", json.as_bytes()).unwrap();
    assert_eq!(c.port, 10251);
    assert_eq!(c.cluster_dns, vec!["10.0.0.10"]);
}

#[test]
fn unknown_and_deprecated_fields_warn() {
    let (c, w) = parse("maxPods: 50\nfooBar: 1\nauthentication:\n  webhook:\n    cacheTTL: 1m\n    colour: red\niptablesDropBit: 15\ncAdvisorPort: 0\nfeatureGates:\n  RotateKubeletClientCertificate: true\n  Foo: true\n").unwrap();
    assert_eq!(c.max_pods, 50);
    assert_eq!(c.authentication.webhook.cache_ttl, Duration::from_secs(60));
    let fields: Vec<(&str, WarningKind)> = w.iter().map(|w| (w.field.as_str(), w.kind)).collect();
    assert!(
        fields.contains(&("fooBar", WarningKind::UnknownField)),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("authentication.webhook.colour", WarningKind::UnknownField)),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("iptablesDropBit", WarningKind::DeprecatedField)),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("cAdvisorPort", WarningKind::RemovedField)),
        "{fields:?}"
    );
    assert!(fields.contains(&(
        "featureGates.RotateKubeletClientCertificate",
        WarningKind::RemovedFeatureGate
    )));
    assert_eq!(c.feature_gates.get("Foo"), Some(&true));
    assert!(
        !c.feature_gates
            .contains_key("RotateKubeletClientCertificate")
    );
    assert!(
        w[0].to_string()
            .starts_with("/etc/kubernetes/kubelet.yaml: ")
    );
}

#[test]
fn errors_name_file_and_field() {
    assert_eq!(
        err("syncFrequency: 10 seconds\n"),
        "/etc/kubernetes/kubelet.yaml: field syncFrequency: invalid duration \"10 seconds\": unknown unit in duration (valid units are ns, us, ms, s, m, h) (expected a Go duration such as \"1m0s\", \"10s\", \"2h45m\" or \"300ms\")"
    );
    let cases = [
        (
            "authentication:\n  webhook:\n    cacheTTL: forever\n",
            "field authentication.webhook.cacheTTL: invalid duration",
        ),
        ("port: http\n", "field port: invalid type"),
        (
            "evictionHard:\n  memory.available: 100 megs\n",
            "invalid configuration: evictionHard.memory.available: invalid quantity \"100 megs\"",
        ),
        (
            "evictionHard:\n  memory.free: 1Gi\n",
            "evictionHard.memory.free: unsupported eviction signal",
        ),
        (
            "evictionHard:\n  nodefs.available: 120%\n",
            "evictionHard.nodefs.available: eviction percentage threshold nodefs.available must be <= 100%",
        ),
        (
            "kubeReserved:\n  memory: lots\n",
            "kubeReserved.memory: invalid quantity",
        ),
        (
            "port: 70000\n",
            "invalid configuration: port: port (--port) 70000 must be between 1 and 65535",
        ),
        (
            "imageGCLowThresholdPercent: 90\n",
            "imageGCLowThresholdPercent: imageGCLowThresholdPercent (--image-gc-low-threshold) 90 must be less than",
        ),
        (
            "imageGCHighThresholdPercent: 101\n",
            "imageGCHighThresholdPercent: imageGCHighThresholdPercent (--image-gc-high-threshold) 101 must be between 0 and 100",
        ),
        (
            "maxPods: -1\n",
            "maxPods: maxPods (--max-pods) -1 must not be a negative number",
        ),
        (
            "hairpinMode: sometimes\n",
            "hairpinMode: \"sometimes\" specified for hairpinMode",
        ),
        (
            "containerLogMaxSize: big\n",
            "containerLogMaxSize: invalid quantity",
        ),
        (
            "clusterDNS: [\"dns.local\"]\n",
            "clusterDNS[0]: \"dns.local\" is not a valid IP address",
        ),
        (
            "registerWithTaints:\n- key: a\n  effect: Sometimes\n",
            "registerWithTaints[0].effect: invalid taint effect",
        ),
        (
            "evictionSoft:\n  memory.available: 1Gi\n",
            "evictionSoft.memory.available: grace period must be specified",
        ),
        (
            "featureGates:\n  Foo: maybe\n",
            "field featureGates.Foo: invalid type",
        ),
        (
            "shutdownGracePeriod: -1s\n",
            "field shutdownGracePeriod: invalid duration \"-1s\"",
        ),
    ];
    for (body, want) in cases {
        let got = err(body);
        assert!(got.starts_with("/etc/kubernetes/kubelet.yaml: "), "{got}");
        assert!(got.contains(want), "{body:?}: got {got:?}, want {want:?}");
        assert!(!got.contains('\n'), "{got}");
    }
}

#[test]
fn type_meta_is_checked() {
    let e = parse_config_bytes(
        "k.yaml",
        b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeProxyConfiguration\n",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "k.yaml: field kind: expected \"KubeletConfiguration\", got \"KubeProxyConfiguration\""
    );
    let e = parse_config_bytes(
        "k.yaml",
        b"apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("k.yaml: field apiVersion: unsupported version"),
        "{e}"
    );
    let e = parse_config_bytes("k.yaml", b"port: 1\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "k.yaml: field kind: missing (expected \"KubeletConfiguration\")"
    );
    for junk in [
        &b""[..],
        b"- a\n- b\n",
        b"{",
        b"\xff\xfe",
        b"a: [",
        b"kind: [1, {]",
    ] {
        assert!(
            parse_config_bytes("junk", junk)
                .unwrap_err()
                .to_string()
                .starts_with("junk: ")
        );
    }
}

#[test]
fn missing_file_names_the_file() {
    let e = load_config_file(std::path::Path::new("/nonexistent/kubelet.yaml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/kubelet.yaml: cannot read kubelet configuration file"),
        "{e}"
    );
    let e = load_from_args(args(&["--config=/nonexistent/kubelet.yaml"])).unwrap_err();
    assert!(
        e.to_string().starts_with("/nonexistent/kubelet.yaml: "),
        "{e}"
    );
}

#[test]
fn flag_syntax_follows_pflag() {
    let o = load_from_args(args(&[
        "--port=10251",
        "--read-only-port",
        "10255",
        "--fail-swap-on=false",
        "--register-node",
        "-v=3",
        "--feature-gates=A=true,B=false",
        "--node-labels=a=b,c=d",
        "--register-with-taints=k=v:NoSchedule",
        "--cluster-dns=10.0.0.10,10.0.0.11",
        "--cluster-dns",
        "10.0.0.12",
        "--oom-score-adj",
        "-900",
        "--eviction-hard=memory.available<1Gi",
        "--sync-frequency=30s",
        "--hostname-override=n1",
    ]))
    .unwrap();
    let c = &o.config;
    assert_eq!(
        (c.port, c.read_only_port, c.oom_score_adj),
        (10251, 10255, -900)
    );
    assert!(!c.fail_swap_on && c.register_node);
    assert_eq!(o.flags.verbosity, 3);
    assert_eq!(c.logging.verbosity, 3);
    assert_eq!(c.feature_gates.get("B"), Some(&false));
    assert_eq!(o.flags.node_labels["c"], "d");
    assert_eq!(c.node_labels, o.flags.node_labels);
    assert_eq!(c.register_with_taints[0].effect, "NoSchedule");
    assert_eq!(c.cluster_dns, vec!["10.0.0.10", "10.0.0.11", "10.0.0.12"]);
    assert_eq!(c.eviction_hard.len(), 1);
    assert_eq!(c.sync_frequency, Duration::from_secs(30));
    assert_eq!(o.flags.hostname_override, "n1");
    assert_eq!(
        o.flags.root_dir,
        std::path::PathBuf::from("/var/lib/kubelet")
    );
    assert!(
        o.warnings
            .iter()
            .any(|w| w.field == "--port" && w.kind == WarningKind::DeprecatedFlag)
    );
    let o = load_from_args(args(&["-v", "4", "--fail-swap-on=true"])).unwrap();
    assert_eq!(o.flags.verbosity, 4);
}

#[test]
fn flag_errors() {
    let e = load_from_args(args(&["--foo=bar"])).unwrap_err();
    assert_eq!(e.to_string(), "unknown flag: --foo");
    assert_eq!(
        load_from_args(args(&["--foo"])).unwrap_err().to_string(),
        "unknown flag: --foo"
    );
    let e = load_from_args(args(&["--port=abc"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid argument \"abc\" for \"--port\" flag: expected a 32-bit integer"
    );
    let e = load_from_args(args(&["--fail-swap-on=maybe"])).unwrap_err();
    assert!(e.to_string().contains("\"--fail-swap-on\" flag"), "{e}");
    // A Go bool flag does not take a separate value: "false" is a stray argument.
    let e = load_from_args(args(&["--fail-swap-on", "false"])).unwrap_err();
    assert_eq!(e.to_string(), "unknown command false");
    let e = load_from_args(args(&["--sync-frequency=10 seconds"])).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "invalid argument \"10 seconds\" for \"--sync-frequency\" flag: invalid duration"
        ),
        "{e}"
    );
    assert!(matches!(
        load_from_args(args(&["--port"])).unwrap_err(),
        ConfigError::Usage { .. }
    ));
    let e = load_from_args(args(&["--node-labels=node-role.kubernetes.io/master=x"])).unwrap_err();
    assert!(e.to_string().starts_with("unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [node-role.kubernetes.io/master]\n"));
}

#[test]
fn help_and_version_exit_zero() {
    let e = load_from_args(args(&["--help"])).unwrap_err();
    assert_eq!(e.exit_code(), 0);
    assert!(e.to_string().contains("--pod-manifest-path"), "{e}");
    assert!(!e.to_string().contains("--network-plugin"));
    let e = load_from_args(args(&["--version"])).unwrap_err();
    assert_eq!(e.exit_code(), 0);
    assert!(e.to_string().starts_with("Kubernetes v1."), "{e}");
    assert!(matches!(
        load_from_args(args(&["-h"])).unwrap_err(),
        ConfigError::Help { .. }
    ));
}

#[test]
fn removed_flags_are_accepted_with_warnings() {
    let o = load_from_args(args(&[
        "--network-plugin=cni",
        "--allow-privileged=true",
        "--logtostderr",
        "--cni-bin-dir",
        "/opt/cni/bin",
        "--container-runtime=remote",
    ]))
    .unwrap();
    for flag in [
        "--network-plugin",
        "--allow-privileged",
        "--logtostderr",
        "--cni-bin-dir",
        "--container-runtime",
    ] {
        let w = o
            .warnings
            .iter()
            .find(|w| w.field == flag)
            .unwrap_or_else(|| panic!("no warning for {flag}"));
        assert_eq!(w.kind, WarningKind::RemovedFlag);
        assert!(w.message.contains(flag));
    }
}

#[test]
fn flags_override_the_file() {
    let f = temp_config(
        "port: 10260\nmaxPods: 50\nfeatureGates:\n  A: true\n  B: true\nclusterDNS: [10.0.0.1]\nevictionHard:\n  memory.available: 200Mi\n",
    );
    let path = f.path().to_str().unwrap();
    let o = load_from_args(args(&[
        &format!("--config={path}"),
        "--max-pods=20",
        "--feature-gates=B=false,C=true",
        "--cluster-dns=10.0.0.2",
    ]))
    .unwrap();
    assert_eq!(o.config.port, 10260);
    assert_eq!(o.config.max_pods, 20);
    assert_eq!(o.config.feature_gates.get("A"), Some(&true));
    assert_eq!(o.config.feature_gates.get("B"), Some(&false));
    assert_eq!(o.config.feature_gates.get("C"), Some(&true));
    assert_eq!(o.config.cluster_dns, vec!["10.0.0.2"]);
    assert_eq!(o.config.eviction_hard.len(), 1);
    assert_eq!(o.flags.config.as_deref(), Some(f.path()));
    // Validation runs after the flags: a flag can make a file value invalid.
    let e = load_from_args(args(&[&format!("--config={path}"), "--port=0"])).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{path}: invalid configuration: port:")),
        "{e}"
    );
}

#[test]
fn parse_config_bytes_never_panics_on_garbage() {
    let mut seed: u32 = 12345;
    let alphabet = b"apiVersion:kind KubeletConfiguration\n -[]{}\"'0123456789.%sMi:#&*!|>";
    for len in 0..300 {
        let mut bytes = HEAD.as_bytes().to_vec();
        for _ in 0..len {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            bytes.push(alphabet[(seed >> 16) as usize % alphabet.len()]);
        }
        let _ = parse_config_bytes("fuzz", &bytes);
        let _ = parse_config_bytes("fuzz", &bytes[HEAD.len()..]);
    }
}
