//! Reading a `KubeletConfiguration` file: upstream defaults, YAML and JSON,
//! warnings for unknown, deprecated and removed fields, and error messages
//! that name the file and the field (including validation's).

use std::time::Duration;

use crate::*;

const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

fn parse(body: &str) -> Result<(KubeletConfiguration, Vec<ConfigWarning>), ConfigError> {
    parse_config_bytes("/etc/kubernetes/kubelet.yaml", format!("{HEAD}{body}").as_bytes())
}

fn err(body: &str) -> String {
    parse(body).unwrap_err().to_string()
}

#[test]
fn empty_config_gets_upstream_defaults() {
    let (c, w) = parse("").unwrap();
    assert!(w.is_empty(), "{w:?}");
    // The gate-dependent default: KubeletEnsureSecretPulledImages is on.
    let want = KubeletConfiguration {
        image_pull_credentials_verification_policy: "NeverVerifyPreloadedImages".into(),
        ..KubeletConfiguration::default()
    };
    assert_eq!(c, want);
    assert_eq!(c.sync_frequency, Duration::from_secs(60));
    assert_eq!(c.file_check_frequency, Duration::from_secs(20));
    assert_eq!(c.node_status_report_frequency, Duration::from_secs(300));
    assert_eq!(c.port, 10250);
    assert_eq!(c.read_only_port, 0);
    assert_eq!(c.healthz_port, 10248);
    assert_eq!(c.container_runtime_endpoint, "unix:///run/containerd/containerd.sock");
    assert_eq!(c.eviction_hard["memory.available"], "100Mi");
    assert_eq!(c.eviction_hard["imagefs.available"], "15%");
    assert!(c.authentication.webhook.enabled && !c.authentication.anonymous.enabled);
    assert_eq!(c.authorization.mode, "Webhook");
    assert_eq!(c.authorization.webhook.cache_unauthorized_ttl, Duration::from_secs(30));
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
    assert!(err("maxParallelImagePulls: 5\nserializeImagePulls: true\n").contains("invalid configuration: maxParallelImagePulls"));
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
    assert!(fields.contains(&("fooBar", WarningKind::UnknownField)), "{fields:?}");
    assert!(fields.contains(&("authentication.webhook.colour", WarningKind::UnknownField)), "{fields:?}");
    assert!(fields.contains(&("iptablesDropBit", WarningKind::DeprecatedField)), "{fields:?}");
    assert!(fields.contains(&("cAdvisorPort", WarningKind::RemovedField)), "{fields:?}");
    assert!(fields.contains(&("featureGates.RotateKubeletClientCertificate", WarningKind::RemovedFeatureGate)));
    assert_eq!(c.feature_gates.get("Foo"), Some(&true));
    assert!(!c.feature_gates.contains_key("RotateKubeletClientCertificate"));
    assert!(w[0].to_string().starts_with("/etc/kubernetes/kubelet.yaml: "));
}

#[test]
fn errors_name_file_and_field() {
    assert_eq!(
        err("syncFrequency: 10 seconds\n"),
        "/etc/kubernetes/kubelet.yaml: field syncFrequency: invalid duration \"10 seconds\": unknown unit in duration (valid units are ns, us, ms, s, m, h) (expected a Go duration such as \"1m0s\", \"10s\", \"2h45m\" or \"300ms\")"
    );
    let cases = [
        ("authentication:\n  webhook:\n    cacheTTL: forever\n", "field authentication.webhook.cacheTTL: invalid duration"),
        ("port: http\n", "field port: invalid type"),
        (
            "evictionHard:\n  memory.available: 100 megs\n",
            "invalid configuration: evictionHard.memory.available: invalid quantity \"100 megs\"",
        ),
        ("evictionHard:\n  memory.free: 1Gi\n", "evictionHard.memory.free: unsupported eviction signal"),
        (
            "evictionHard:\n  nodefs.available: 120%\n",
            "evictionHard.nodefs.available: eviction percentage threshold nodefs.available must be <= 100%",
        ),
        ("kubeReserved:\n  memory: lots\n", "kubeReserved.memory: invalid quantity"),
        ("port: 70000\n", "invalid configuration: port: port (--port) 70000 must be between 1 and 65535"),
        (
            "imageGCLowThresholdPercent: 90\n",
            "imageGCLowThresholdPercent: imageGCLowThresholdPercent (--image-gc-low-threshold) 90 must be less than",
        ),
        (
            "imageGCHighThresholdPercent: 101\n",
            "imageGCHighThresholdPercent: imageGCHighThresholdPercent (--image-gc-high-threshold) 101 must be between 0 and 100",
        ),
        ("maxPods: -1\n", "maxPods: maxPods (--max-pods) -1 must not be a negative number"),
        ("hairpinMode: sometimes\n", "hairpinMode: \"sometimes\" specified for hairpinMode"),
        ("containerLogMaxSize: big\n", "containerLogMaxSize: invalid quantity"),
        ("clusterDNS: [\"dns.local\"]\n", "clusterDNS[0]: \"dns.local\" is not a valid IP address"),
        ("registerWithTaints:\n- key: a\n  effect: Sometimes\n", "registerWithTaints[0].effect: invalid taint effect"),
        ("evictionSoft:\n  memory.available: 1Gi\n", "evictionSoft.memory.available: grace period must be specified"),
        ("featureGates:\n  Foo: maybe\n", "field featureGates.Foo: invalid type"),
        ("shutdownGracePeriod: -1s\n", "field shutdownGracePeriod: invalid duration \"-1s\""),
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
    let e = parse_config_bytes("k.yaml", b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeProxyConfiguration\n").unwrap_err();
    assert_eq!(e.to_string(), "k.yaml: field kind: expected \"KubeletConfiguration\", got \"KubeProxyConfiguration\"");
    let e = parse_config_bytes("k.yaml", b"apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n").unwrap_err();
    assert!(e.to_string().starts_with("k.yaml: field apiVersion: unsupported version"), "{e}");
    let e = parse_config_bytes("k.yaml", b"port: 1\n").unwrap_err();
    assert_eq!(e.to_string(), "k.yaml: field kind: missing (expected \"KubeletConfiguration\")");
    for junk in [&b""[..], b"- a\n- b\n", b"{", b"\xff\xfe", b"a: [", b"kind: [1, {]"] {
        assert!(parse_config_bytes("junk", junk).unwrap_err().to_string().starts_with("junk: "));
    }
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

#[test]
fn drop_ins_merge_in_order_over_the_file_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("config.yaml");
    std::fs::write(&main, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 50\nsyncFrequency: 20s\nevictionHard: {memory.available: 200Mi, nodefs.available: 10%}\n").unwrap();
    let drop = dir.path().join("conf.d");
    std::fs::create_dir(&drop).unwrap();
    let tm = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
    std::fs::write(drop.join("20-pods.conf"), format!("{tm}maxPods: 70\nevictionHard: {{memory.available: 300Mi}}\n")).unwrap();
    std::fs::write(drop.join("10-pods.conf"), format!("{tm}maxPods: 60\nserializeImagePulls: false\n")).unwrap();
    std::fs::write(drop.join("ignored.yaml"), "maxPods: 1\n").unwrap();
    std::fs::create_dir(drop.join("15-sub")).unwrap();
    std::fs::write(drop.join("15-sub/a.conf"), format!("{tm}syncFrequency: 30s\n")).unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec!["kubelet".to_string(), format!("--config={}", main.display()), format!("--config-dir={}", drop.display())];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let o = crate::load_from_args(args(&[])).unwrap();
    assert_eq!(o.config.max_pods, 70, "the later drop-in wins");
    assert!(!o.config.serialize_image_pulls);
    assert_eq!(o.config.sync_frequency, std::time::Duration::from_secs(30), "a subdirectory's drop-in applies, after 10- and before 20-");
    assert_eq!(o.config.eviction_hard.get("memory.available").map(String::as_str), Some("300Mi"));
    assert_eq!(o.config.eviction_hard.get("nodefs.available").map(String::as_str), Some("10%"), "maps merge");
    let o = crate::load_from_args(args(&["--max-pods=80"])).unwrap();
    assert_eq!(o.config.max_pods, 80, "flags win over drop-ins");

    std::fs::write(drop.join("30-bad.conf"), format!("{tm}maxPods: many\n")).unwrap();
    let err = crate::load_from_args(args(&[])).unwrap_err().to_string();
    assert!(err.contains("30-bad.conf") && err.contains("maxPods"), "{err}");
    std::fs::write(drop.join("30-bad.conf"), "maxPods: 5\n").unwrap();
    let err = crate::load_from_args(args(&[])).unwrap_err().to_string();
    assert!(err.contains("30-bad.conf"), "a drop-in needs apiVersion and kind: {err}");
}
