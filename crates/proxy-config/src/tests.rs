//! Unit tests of how flags, the file and defaults combine (`load_from_args`)
//! and of decoding errors and warnings.

use std::io::Write;

use crate::*;

fn args(list: &[&str]) -> Vec<String> {
    std::iter::once("kube-proxy").chain(list.iter().copied()).map(String::from).collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

const HEADER: &str = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n";

#[test]
fn flags_apply_without_config() {
    let o = load_from_args(args(&[
        "--proxy-mode=nftables",
        "--masquerade-all",
        "--iptables-sync-period=10s",
        "--ipvs-sync-period=5s",
        "--nodeport-addresses=10.0.0.0/8,primary",
        "--conntrack-max-per-core=0",
        "--healthz-bind-address=10.1.1.1",
        "--hostname-override= Node-A ",
        "--feature-gates=Foo=true",
        "-v=4",
    ]))
    .unwrap();
    let c = &o.config;
    assert_eq!(c.mode, ProxyMode::NFTables);
    assert!(c.nftables.masquerade_all && c.iptables.masquerade_all);
    assert_eq!(c.nftables.sync_period.as_secs(), 10);
    assert_eq!(c.ipvs.sync_period.as_secs(), 30, "--ipvs-* only applies in ipvs mode");
    assert_eq!(c.node_port_addresses, ["10.0.0.0/8", "primary"]);
    assert_eq!(c.conntrack.max_per_core, 0);
    assert_eq!(c.healthz_bind_address, "10.1.1.1:10256");
    assert_eq!(c.hostname_override, "node-a");
    assert_eq!(c.feature_gates.get("Foo"), Some(&true));
    assert_eq!(c.logging.verbosity, 4);
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
}

#[test]
fn config_file_replaces_flags_except_logging_and_hostname() {
    let f = file(&format!("{HEADER}mode: ipvs\nclusterCIDR: 10.0.0.0/8\nhostnameOverride: file-node\n"));
    let o = load_from_args(args(&[
        &format!("--config={}", f.path().display()),
        "--proxy-mode=iptables",
        "--cluster-cidr=192.168.0.0/16",
        "--hostname-override=flag-node",
        "--v=3",
    ]))
    .unwrap();
    assert_eq!(o.config.mode, ProxyMode::IPVS);
    assert_eq!(o.config.cluster_cidr, "10.0.0.0/8");
    assert_eq!(o.config.hostname_override, "flag-node");
    assert_eq!(o.config.logging.verbosity, 3);
    let ignored: Vec<&str> = o.warnings.iter().filter(|w| w.kind == WarningKind::IgnoredFlag).map(|w| w.field.as_str()).collect();
    assert_eq!(ignored, ["--cluster-cidr", "--proxy-mode"]);
}

#[test]
fn deprecated_port_flags() {
    let o = load_from_args(args(&["--healthz-port=0", "--metrics-port=9999", "--metrics-bind-address=127.0.0.2"])).unwrap();
    assert_eq!(o.config.healthz_bind_address, "");
    assert_eq!(o.config.metrics_bind_address, "127.0.0.2:9999");
    assert_eq!(o.warnings.len(), 2);
    assert!(o.warnings.iter().all(|w| w.kind == WarningKind::DeprecatedFlag));
}

#[test]
fn flag_errors_are_one_line() {
    let e = load_from_args(args(&["--proxy-mode=userspace"])).unwrap_err();
    assert!(e.to_string().starts_with("invalid argument \"userspace\" for \"--proxy-mode\" flag"), "{e}");
    let e = load_from_args(args(&["--no-such-flag"])).unwrap_err();
    assert_eq!(e.to_string(), "unknown flag: --no-such-flag");
    let e = load_from_args(args(&["--hostname-override=  "])).unwrap_err();
    assert!(e.to_string().contains("empty hostname-override is invalid"));
    let e = load_from_args(args(&["--iptables-masquerade-bit=40"])).unwrap_err();
    assert_eq!(e.to_string(), "command line: invalid configuration: iptables.masqueradeBit: must be within the range [0, 31]");
    assert_eq!(load_from_args(args(&["--help"])).unwrap_err().exit_code(), 0);
}

#[test]
fn file_errors_name_file_and_field() {
    let f = file(&format!("{HEADER}conntrack:\n  tcpEstablishedTimeout: forever\n"));
    let e = load_config_file(f.path()).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: field conntrack.tcpEstablishedTimeout: invalid duration", f.path().display())), "{e}");
    assert!(!e.contains('\n'));
    let (_, e) =
        parse_config_bytes("kp.yaml", format!("{HEADER}mode: fast\n").as_bytes()).map(|_| ()).map_err(|e| ((), e.to_string())).unwrap_err();
    assert!(e.starts_with("kp.yaml: field mode: unknown variant `fast`"), "{e}");
    let e = parse_config_bytes("kp.yaml", b"apiVersion: v1\nkind: KubeProxyConfiguration\n").unwrap_err();
    assert!(e.to_string().contains("field apiVersion: unsupported version"));
    let e = parse_config_bytes("kp.yaml", format!("{HEADER}iptables:\n  masqueradeBit: x\n").as_bytes()).unwrap_err();
    assert!(e.to_string().starts_with("kp.yaml: field iptables.masqueradeBit:"), "{e}");
}

#[test]
fn unknown_and_deprecated_fields_warn() {
    let (c, w) = parse_config_bytes(
        "kp.yaml",
        format!("{HEADER}mode: nftables\nportRange: 30000-32767\nnftables:\n  masqueradeBits: 3\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(c.node_port_addresses, ["primary"], "nftables defaults nodePortAddresses");
    let kinds: Vec<(WarningKind, &str)> = w.iter().map(|w| (w.kind, w.field.as_str())).collect();
    assert_eq!(kinds, [(WarningKind::DeprecatedField, "portRange"), (WarningKind::UnknownField, "nftables.masqueradeBits")]);
}
