use super::*;

fn healthy() -> Facts {
    Facts {
        is_root: true,
        swap_kib: Some(0),
        fail_swap_on: true,
        ip_forward: Some("1".into()),
        bridge_nf_call_iptables: Some("1".into()),
        cri_socket: "unix:///run/containerd/containerd.sock".into(),
        runtime: Some(Ok(RuntimeFacts { version: "containerd 2.1".into(), cgroup_driver: Some("systemd".into()) })),
        kubelet_cgroup_driver: None,
        ports: vec![PortFact { port: 10250, address: "0.0.0.0".into(), in_use: false }],
        clock_skew_secs: Some(Ok(1)),
        client_cert: None,
        rotate_certificates: true,
        cni_conf: Some(("/etc/cni/net.d".into(), true)),
        node_name: "n1".into(),
        kubelet_binary: Some(Ok("/usr/bin/kubelet".into())),
        now_unix: 1_000_000_000,
        ..Facts::default()
    }
}

fn worst(findings: &[Finding]) -> Severity {
    findings.iter().map(|f| f.severity).max().unwrap()
}

fn find<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    findings.iter().find(|f| f.check == check).unwrap_or_else(|| panic!("no {check} in {findings:#?}"))
}

#[test]
fn a_healthy_machine_passes() {
    let findings = check(&healthy(), Mode::Join, &[]);
    assert_eq!(worst(&findings), Severity::Ok, "{findings:#?}");
}

#[test]
fn each_problem_is_an_error_or_warning_with_its_fix() {
    type Provoke = Box<dyn Fn(&mut Facts)>;
    let cases: Vec<(&str, Severity, Provoke)> = vec![
        ("IsPrivilegedUser", Severity::Error, Box::new(|f| f.is_root = false)),
        ("Swap", Severity::Error, Box::new(|f| f.swap_kib = Some(2048))),
        ("FileContent--proc-sys-net-ipv4-ip_forward", Severity::Error, Box::new(|f| f.ip_forward = Some("0".into()))),
        ("FileContent--proc-sys-net-bridge-bridge-nf-call-iptables", Severity::Warning, Box::new(|f| f.bridge_nf_call_iptables = None)),
        ("CRI", Severity::Error, Box::new(|f| f.runtime = Some(Err("connection refused".into())))),
        ("CgroupDriver", Severity::Warning, Box::new(|f| f.kubelet_cgroup_driver = Some("cgroupfs".into()))),
        (
            "FileAvailable--etc-kubernetes-kubelet.conf",
            Severity::Error,
            Box::new(|f| f.leftover_files = vec!["/etc/kubernetes/kubelet.conf".into()]),
        ),
        ("Port-10250", Severity::Error, Box::new(|f| f.ports[0].in_use = true)),
        ("ClockSkew", Severity::Error, Box::new(|f| f.clock_skew_secs = Some(Ok(-90)))),
        ("ClockSkew", Severity::Warning, Box::new(|f| f.clock_skew_secs = Some(Ok(10)))),
        (
            "ClientCertificate",
            Severity::Error,
            Box::new(|f| f.client_cert = Some(Ok(CertFact { path: "c.pem".into(), not_after_unix: f.now_unix - 7200 }))),
        ),
        (
            "ClientCertificate",
            Severity::Warning,
            Box::new(|f| {
                f.rotate_certificates = false;
                f.client_cert = Some(Ok(CertFact { path: "c.pem".into(), not_after_unix: f.now_unix + 3600 }));
            }),
        ),
        ("CNIConfig", Severity::Warning, Box::new(|f| f.cni_conf = Some(("/etc/cni/net.d".into(), false)))),
        ("NodeName", Severity::Error, Box::new(|f| f.existing_node_ready = Some(true))),
        ("KubeletBinary", Severity::Error, Box::new(|f| f.kubelet_binary = Some(Err("/usr/bin/kubelet does not exist".into())))),
    ];
    for (name, severity, provoke) in cases {
        let mut facts = healthy();
        provoke(&mut facts);
        let findings = check(&facts, Mode::Join, &[]);
        let f = find(&findings, name);
        assert_eq!(f.severity, severity, "{name}: {f}");
        assert!(f.fix.as_deref().is_some_and(|s| !s.is_empty()), "{name} has a fix");
        assert_eq!(worst(&findings), severity, "only {name} is wrong: {findings:#?}");
    }
}

#[test]
fn doctor_accepts_the_kubelet_s_own_ports_and_node_and_ignore_downgrades() {
    let mut facts = healthy();
    facts.ports[0].in_use = true;
    facts.existing_node_ready = Some(true);
    assert_eq!(find(&check(&facts, Mode::Join, &[]), "Port-10250").severity, Severity::Error);
    facts.kubelet_healthy = true;
    let findings = check(&facts, Mode::Doctor, &[]);
    assert_eq!(worst(&findings), Severity::Ok, "{findings:#?}");
    facts.is_root = false;
    let findings = check(&facts, Mode::Join, &["Port-10250".into(), "isprivilegeduser".into()]);
    assert!(find(&findings, "Port-10250").message.ends_with("(ignored)"));
    assert_eq!(find(&findings, "NodeName").severity, Severity::Error);
    assert_eq!(worst(&check(&facts, Mode::Join, &["all".into()])), Severity::Warning);
}
