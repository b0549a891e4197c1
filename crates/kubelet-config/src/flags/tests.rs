//! The command line as a kubelet sees it: pflag syntax, flag errors,
//! `--help` / `--version`, and removed flags accepted with warnings. Goes
//! through `load_from_args`, so verbosity and node labels land where the
//! binary reads them.

use std::time::Duration;

use crate::*;

fn args(list: &[&str]) -> Vec<String> {
    std::iter::once("kubelet").chain(list.iter().copied()).map(String::from).collect()
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
    assert_eq!((c.port, c.read_only_port, c.oom_score_adj), (10251, 10255, -900));
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
    assert_eq!(o.flags.root_dir, std::path::PathBuf::from("/var/lib/kubelet"));
    assert!(o.warnings.iter().any(|w| w.field == "--port" && w.kind == WarningKind::DeprecatedFlag));
    let o = load_from_args(args(&["-v", "4", "--fail-swap-on=true"])).unwrap();
    assert_eq!(o.flags.verbosity, 4);
}

#[test]
fn flag_errors() {
    let e = load_from_args(args(&["--foo=bar"])).unwrap_err();
    assert_eq!(e.to_string(), "unknown flag: --foo");
    assert_eq!(load_from_args(args(&["--foo"])).unwrap_err().to_string(), "unknown flag: --foo");
    let e = load_from_args(args(&["--port=abc"])).unwrap_err();
    assert_eq!(e.to_string(), "invalid argument \"abc\" for \"--port\" flag: expected a 32-bit integer");
    let e = load_from_args(args(&["--fail-swap-on=maybe"])).unwrap_err();
    assert!(e.to_string().contains("\"--fail-swap-on\" flag"), "{e}");
    // A Go bool flag does not take a separate value: "false" is a stray argument.
    let e = load_from_args(args(&["--fail-swap-on", "false"])).unwrap_err();
    assert_eq!(e.to_string(), "unknown command false");
    let e = load_from_args(args(&["--sync-frequency=10 seconds"])).unwrap_err();
    assert!(e.to_string().starts_with("invalid argument \"10 seconds\" for \"--sync-frequency\" flag: invalid duration"), "{e}");
    assert!(matches!(load_from_args(args(&["--port"])).unwrap_err(), ConfigError::Usage { .. }));
    let e = load_from_args(args(&["--node-labels=node-role.kubernetes.io/master=x"])).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [node-role.kubernetes.io/master]\n")
    );
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
    assert!(matches!(load_from_args(args(&["-h"])).unwrap_err(), ConfigError::Help { .. }));
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
    for flag in ["--network-plugin", "--allow-privileged", "--logtostderr", "--cni-bin-dir", "--container-runtime"] {
        let w = o.warnings.iter().find(|w| w.field == flag).unwrap_or_else(|| panic!("no warning for {flag}"));
        assert_eq!(w.kind, WarningKind::RemovedFlag);
        assert!(w.message.contains(flag));
    }
}
