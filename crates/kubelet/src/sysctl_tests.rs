//! Tests of the sysctl allowlist against upstream's rules and messages.

use super::*;
use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, Sysctl};

fn pod(sysctls: &[&str], host_network: bool, host_ipc: bool, host_users: Option<bool>) -> Pod {
    Pod {
        spec: Some(PodSpec {
            host_network: Some(host_network),
            host_ipc: Some(host_ipc),
            host_users,
            security_context: Some(PodSecurityContext {
                sysctls: Some(sysctls.iter().map(|n| Sysctl { name: n.to_string(), value: "1".into() }).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(allowed_unsafe: &[&str]) -> SysctlAllowlist {
    SysctlAllowlist::for_node(Some("6.1.0-18-amd64\n"), allowed_unsafe).unwrap()
}

#[test]
fn safe_sysctls_depend_on_the_kernel_version() {
    assert_eq!(safe_sysctls(Some((6, 1))).len(), 14);
    let old = safe_sysctls(Some((4, 5)));
    assert!(old.contains(&"net.ipv4.tcp_keepalive_time") && old.contains(&"net.ipv4.ip_local_reserved_ports"));
    assert!(!old.contains(&"net.ipv4.tcp_fin_timeout") && !old.contains(&"net.ipv4.tcp_rmem"));
    assert_eq!(
        safe_sysctls(None),
        vec![
            "kernel.shm_rmid_forced",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_syncookies",
            "net.ipv4.ping_group_range",
            "net.ipv4.ip_unprivileged_port_start",
        ]
    );
    assert_eq!(SysctlAllowlist::default(), SysctlAllowlist::for_node(None, &[] as &[&str]).unwrap());
    assert_eq!(parse_kernel_version("6.1.0-18-amd64\n"), Some((6, 1)));
    assert_eq!(parse_kernel_version("4.15"), Some((4, 15)));
    assert_eq!(parse_kernel_version("v5.10.2"), Some((5, 10)));
    assert_eq!(parse_kernel_version("6"), None);
    assert_eq!(parse_kernel_version("6.x"), None);
    assert_eq!(parse_kernel_version(""), None);
}

#[test]
fn safe_sysctls_are_admitted_and_unsafe_ones_rejected() {
    let list = node(&[]);
    assert_eq!(list.admit(&pod(&["kernel.shm_rmid_forced", "net.ipv4.tcp_rmem"], false, false, None)), Ok(()));
    assert_eq!(
        list.admit(&pod(&["kernel.shm_rmid_forced", "kernel.msgmax"], false, false, None)).unwrap_err().to_string(),
        "forbidden sysctl: \"kernel.msgmax\" not allowlisted"
    );
    assert_eq!(
        list.admit(&pod(&["kernel.msgmax"], false, false, None)),
        Err(PodSysctlError(ForbiddenSysctl::NotAllowlisted("kernel.msgmax".into())))
    );
    assert_eq!(list.admit(&pod(&[], false, false, None)), Ok(()));
    assert_eq!(list.admit(&Pod::default()), Ok(()));
    // Too new for an old kernel.
    let old = SysctlAllowlist::for_node(Some("4.4.0"), &[] as &[&str]).unwrap();
    assert!(old.admit(&pod(&["net.ipv4.tcp_rmem"], false, false, None)).is_err());
}

#[test]
fn allowed_unsafe_sysctls_admit_names_and_glob_patterns() {
    let list = node(&["kernel.msg*", "net.core.somaxconn", "fs.mqueue.*"]);
    assert_eq!(
        list.admit(&pod(&["kernel.msgmax", "kernel.msgmnb", "net.core.somaxconn", "fs.mqueue.msg_max"], false, false, None)),
        Ok(())
    );
    assert!(list.admit(&pod(&["kernel.sem"], false, false, None)).is_err());
    assert!(list.admit(&pod(&["net.core.rmem_max"], false, false, None)).is_err());
    let all_net = node(&["net.*"]);
    assert_eq!(all_net.admit(&pod(&["net.core.rmem_max"], false, false, None)), Ok(()));
}

#[test]
fn namespaced_sysctls_are_refused_when_the_pod_shares_the_host_namespace() {
    let list = node(&["kernel.msg*", "user.max_user_namespaces", "kernel.domainname"]);
    assert_eq!(
        list.admit(&pod(&["net.ipv4.ip_local_port_range"], true, false, None)).unwrap_err().to_string(),
        "forbidden sysctl: \"net.ipv4.ip_local_port_range\" not allowed with host Net enabled"
    );
    assert_eq!(
        list.admit(&pod(&["kernel.msgmax"], false, true, None)).unwrap_err().to_string(),
        "forbidden sysctl: \"kernel.msgmax\" not allowed with host IPC enabled"
    );
    assert_eq!(
        list.validate("kernel/msgmax", false, true, false),
        Err(ForbiddenSysctl::HostNamespace { name: "kernel.msgmax".into(), namespace: SysctlNamespace::Ipc })
    );
    assert_eq!(list.admit(&pod(&["kernel.msgmax"], true, false, None)), Ok(()));
    // hostUsers defaults to true.
    assert_eq!(
        list.admit(&pod(&["user.max_user_namespaces"], false, false, None)).unwrap_err().to_string(),
        "forbidden sysctl: \"user.max_user_namespaces\" not allowed with host User enabled"
    );
    assert_eq!(list.admit(&pod(&["user.max_user_namespaces"], false, false, Some(false))), Ok(()));
    // UTS is never shared by a pod.
    assert_eq!(list.admit(&pod(&["kernel.domainname"], true, true, None)), Ok(()));
}

#[test]
fn slash_separated_names_are_normalized() {
    assert_eq!(normalize_name("kernel/shm_rmid_forced"), "kernel.shm_rmid_forced");
    assert_eq!(normalize_name("net/ipv4/conf/eno2.100/rp_filter"), "net.ipv4.conf.eno2/100.rp_filter");
    assert_eq!(normalize_name("net.ipv4.conf.eno2/100.rp_filter"), "net.ipv4.conf.eno2/100.rp_filter");
    assert_eq!(normalize_name("nodots"), "nodots");
    assert_eq!(node(&[]).admit(&pod(&["kernel/shm_rmid_forced"], false, false, None)), Ok(()));
}

#[test]
fn invalid_or_node_level_patterns_are_refused() {
    assert_eq!(SysctlAllowlist::new(["kernel.*"]).unwrap_err().to_string(), "the sysctls \"kernel.\" are not known to be namespaced");
    assert_eq!(SysctlAllowlist::new(["vm.swappiness"]).unwrap_err(), SysctlError::NotNamespaced("vm.swappiness".into()));
    assert_eq!(
        SysctlAllowlist::new(["Kernel.Msg*"]).unwrap_err().to_string(),
        r"sysctl ${q}Kernel.Msg*${q} must have at most 253 characters and match regex ([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]".replace("${q}", "\"")
    );
    for ok in ["net.*", "kernel.msg*", "a", "*", "net/ipv4/tcp_rmem", "fs.mqueue.queues_max", "net.ipv4.conf.eth0-1.rp_filter"] {
        assert!(is_valid_pattern(ok), "{ok}");
    }
    for bad in ["", "net.", ".net", "net..ipv4", "net.*.x", "a*b", "-a", "net.a-", "é", "net.-", &"a".repeat(254)] {
        assert!(!is_valid_pattern(bad), "{bad}");
    }
    assert_eq!(namespace_of("net.ipv4.tcp_rmem"), Some(SysctlNamespace::Net));
    assert_eq!(namespace_of("network"), None);
    assert_eq!(namespace_of("kernel.shm"), Some(SysctlNamespace::Ipc));
}
