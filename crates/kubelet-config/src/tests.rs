//! `load_from_args` end to end: the `--config` file read, then the flags
//! given on the command line applied over it, then validation.

use std::io::Write;

use super::*;

const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

fn args(list: &[&str]) -> Vec<String> {
    std::iter::once("kubelet").chain(list.iter().copied()).map(String::from).collect()
}

fn temp_config(body: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    write!(f, "{HEAD}{body}").unwrap();
    f
}

#[test]
fn missing_file_names_the_file() {
    let e = load_config_file(std::path::Path::new("/nonexistent/kubelet.yaml")).unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/kubelet.yaml: cannot read kubelet configuration file"), "{e}");
    let e = load_from_args(args(&["--config=/nonexistent/kubelet.yaml"])).unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/kubelet.yaml: "), "{e}");
}

#[test]
fn flags_override_the_file() {
    let f = temp_config(
        "port: 10260\nmaxPods: 50\nfeatureGates:\n  A: true\n  B: true\nclusterDNS: [10.0.0.1]\nevictionHard:\n  memory.available: 200Mi\n",
    );
    let path = f.path().to_str().unwrap();
    let o =
        load_from_args(args(&[&format!("--config={path}"), "--max-pods=20", "--feature-gates=B=false,C=true", "--cluster-dns=10.0.0.2"]))
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
    assert!(e.to_string().starts_with(&format!("{path}: invalid configuration: port:")), "{e}");
}

#[test]
fn server_auth_defaults_differ_between_flags_only_and_a_config_file() {
    // Upstream's legacy flag defaults: anonymous on, no token webhook, AlwaysAllow.
    let o = load_from_args(args(&[])).unwrap();
    let (a, z) = (&o.config.authentication, &o.config.authorization);
    assert!(a.anonymous.enabled && !a.webhook.enabled);
    assert_eq!(z.mode, "AlwaysAllow");
    let f = temp_config("");
    let o = load_from_args(args(&[&format!("--config={}", f.path().display())])).unwrap();
    let (a, z) = (&o.config.authentication, &o.config.authorization);
    assert!(!a.anonymous.enabled && a.webhook.enabled);
    assert_eq!(z.mode, "Webhook");
    let o = load_from_args(args(&["--anonymous-auth=false", "--authorization-mode=Webhook"])).unwrap();
    assert!(!o.config.authentication.anonymous.enabled);
    assert_eq!(o.config.authorization.mode, "Webhook");
}

#[test]
fn change_detection_strategy_is_one_of_upstreams() {
    let f = temp_config("configMapAndSecretChangeDetectionStrategy: Poll\n");
    let e = load_from_args(args(&[&format!("--config={}", f.path().display())])).unwrap_err();
    assert!(
        e.to_string().contains(
            "\"Poll\" specified for configMapAndSecretChangeDetectionStrategy; valid options are [\"Get\", \"Cache\", \"Watch\"]"
        ),
        "{e}"
    );
    let f = temp_config("configMapAndSecretChangeDetectionStrategy: Get\n");
    assert_eq!(
        load_from_args(args(&[&format!("--config={}", f.path().display())]))
            .unwrap()
            .config
            .config_map_and_secret_change_detection_strategy,
        "Get"
    );
}
