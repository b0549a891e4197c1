//! Pod spec → CRI `PodSandboxConfig` (upstream `generatePodSandboxConfig`).
//!
//! Pure: decides the sandbox's metadata, hostname, log directory, DNS, host port mappings,
//! namespaces, security context, sysctls (names normalized to dots), labels and annotations.
//! Creating it is the runtime manager's job.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, SecurityContext};
use kubelet_cri::api;

use super::dns::{ClusterDns, pod_dns_config};
use super::labels::{pod_name, pod_namespace, pod_uid, sandbox_annotations, sandbox_labels};
use super::security_context::{pod_security_context, pod_supplemental_groups, selinux_option, supplemental_groups_policy};

/// The longest hostname the kernel takes (its nodename).
const FQDN_MAX: usize = 64;

/// Why a pod's sandbox cannot be configured (upstream's message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// With `setHostnameAsFQDN`, the pod's FQDN is longer than the kernel's nodename allows.
    #[error(
        "failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long ({FQDN_MAX} characters is the max, {} characters requested)",
        fqdn.len()
    )]
    FqdnTooLong {
        /// The FQDN, `<hostname>.<subdomain>.<namespace>.svc.<clusterDomain>`.
        fqdn: String,
    },
}

/// Node-level settings that shape every sandbox.
#[derive(Clone, Debug)]
pub struct SandboxContext {
    /// Root of pod log directories (`podLogsDir`, `/var/log/pods`).
    pub pod_logs_dir: PathBuf,
    /// Cluster DNS settings and the host's `resolv.conf`, for the sandbox's DNS config and hostname.
    pub dns: ClusterDns,
    /// Cgroup parent for pod sandboxes; empty lets the runtime choose.
    pub cgroup_parent: String,
}

/// `<podLogsDir>/<namespace>_<name>_<uid>`, where the runtime writes container logs.
pub fn pod_log_dir(logs_root: &Path, pod: &Pod) -> PathBuf {
    logs_root.join(format!("{}_{}_{}", pod_namespace(pod), pod_name(pod), pod_uid(pod)))
}

/// The protocol of a container port as CRI's enum value.
pub fn protocol(p: Option<&str>) -> i32 {
    match p {
        Some("UDP") => api::Protocol::Udp as i32,
        Some("SCTP") => api::Protocol::Sctp as i32,
        _ => api::Protocol::Tcp as i32,
    }
}

/// The pod's hostname: `spec.hostnameOverride` (GA 1.37), else `spec.hostname`, else its name,
/// cut to 63 characters as upstream.
pub fn pod_hostname(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    let name = spec
        .and_then(|s| s.hostname_override.clone())
        .or_else(|| spec.and_then(|s| s.hostname.clone()).filter(|h| !h.is_empty()))
        .unwrap_or_else(|| pod_name(pod).to_string());
    let mut cut: String = name.chars().take(63).collect();
    while cut.ends_with(['-', '.']) {
        cut.pop();
    }
    cut
}

/// The pod's `subdomain`, which makes its FQDN; none with a `hostnameOverride`, whose name
/// stands alone (upstream `GeneratePodHostNameAndDomain`).
pub fn pod_subdomain(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if spec.hostname_override.is_some() {
        return None;
    }
    spec.subdomain.as_deref().filter(|s| !s.is_empty())
}

/// The hostname the sandbox's kernel gets: the pod's hostname, or with `setHostnameAsFQDN` and a
/// `subdomain` its FQDN `<hostname>.<subdomain>.<namespace>.svc.<clusterDomain>`, which must fit
/// the kernel's 64-character nodename (upstream's error otherwise).
pub fn kernel_hostname(pod: &Pod, cluster_domain: &str) -> Result<String, SandboxError> {
    let hostname = pod_hostname(pod);
    let spec = pod.spec.as_ref();
    let subdomain = pod_subdomain(pod);
    let (Some(subdomain), Some(true)) = (subdomain, spec.and_then(|s| s.set_hostname_as_fqdn)) else {
        return Ok(hostname);
    };
    let fqdn = format!("{hostname}.{subdomain}.{}.svc.{cluster_domain}", pod_namespace(pod));
    if fqdn.len() > FQDN_MAX {
        return Err(SandboxError::FqdnTooLong { fqdn });
    }
    Ok(fqdn)
}

/// Namespace sharing of the pod (network, PID, IPC).
pub fn namespace_options(pod: &Pod) -> api::NamespaceOption {
    let spec = pod.spec.as_ref();
    let flag = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| spec.and_then(f).unwrap_or(false);
    let mode = |node: bool, otherwise: api::NamespaceMode| {
        if node { api::NamespaceMode::Node as i32 } else { otherwise as i32 }
    };
    let pid = if flag(|s| s.host_pid) {
        api::NamespaceMode::Node as i32
    } else if flag(|s| s.share_process_namespace) {
        api::NamespaceMode::Pod as i32
    } else {
        api::NamespaceMode::Container as i32
    };
    api::NamespaceOption {
        network: mode(flag(|s| s.host_network), api::NamespaceMode::Pod),
        pid,
        ipc: mode(flag(|s| s.host_ipc), api::NamespaceMode::Pod),
        ..Default::default()
    }
}

/// Whether any container of the pod (init, regular or ephemeral) is privileged.
fn has_privileged_container(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    let privileged = |sc: Option<&SecurityContext>| sc.and_then(|sc| sc.privileged) == Some(true);
    spec.init_containers.iter().flatten().chain(&spec.containers).any(|c| privileged(c.security_context.as_ref()))
        || spec.ephemeral_containers.iter().flatten().any(|c| privileged(c.security_context.as_ref()))
}

/// The sandbox's security context (upstream `generatePodSandboxLinuxConfig`): privileged when any
/// container is, always the runtime's default seccomp profile (pod-level profiles apply to the
/// containers), and the pod's users, groups, group policy and SELinux options; no AppArmor
/// profile and a writable root filesystem. An unknown `supplementalGroupsPolicy` counts as
/// `Merge` here: the runtime manager refuses such a pod before creating its sandbox.
pub fn sandbox_security_context(pod: &Pod) -> api::LinuxSandboxSecurityContext {
    let pod_sc = pod_security_context(pod);
    api::LinuxSandboxSecurityContext {
        namespace_options: Some(namespace_options(pod)),
        privileged: has_privileged_container(pod),
        seccomp: Some(api::SecurityProfile {
            profile_type: api::security_profile::ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        }),
        run_as_user: pod_sc.and_then(|sc| sc.run_as_user).map(|value| api::Int64Value { value }),
        run_as_group: pod_sc.and_then(|sc| sc.run_as_group).map(|value| api::Int64Value { value }),
        supplemental_groups: pod_supplemental_groups(pod_sc),
        supplemental_groups_policy: supplemental_groups_policy(pod_sc).unwrap_or(api::SupplementalGroupsPolicy::Merge as i32),
        selinux_options: pod_sc.and_then(|sc| sc.se_linux_options.as_ref()).map(selinux_option),
        readonly_rootfs: false,
        ..Default::default()
    }
}

/// Builds the sandbox config for `pod` at sandbox `attempt`.
pub fn pod_sandbox_config(pod: &Pod, attempt: u32, ctx: &SandboxContext) -> api::PodSandboxConfig {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let port_mappings = spec
        .into_iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| api::PortMapping {
            protocol: protocol(p.protocol.as_deref()),
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let sysctls = pod_security_context(pod)
        .and_then(|sc| sc.sysctls.as_ref())
        .map(|s| s.iter().map(|s| (crate::sysctl::normalize_name(&s.name), s.value.clone())).collect())
        .unwrap_or_default();
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: pod_name(pod).into(),
            uid: pod_uid(pod).into(),
            namespace: pod_namespace(pod).into(),
            attempt,
        }),
        hostname: if host_network { String::new() } else { kernel_hostname(pod, &ctx.dns.domain).unwrap_or_else(|_| pod_hostname(pod)) },
        log_directory: pod_log_dir(&ctx.pod_logs_dir, pod).to_string_lossy().into_owned(),
        dns_config: pod_dns_config(pod, &ctx.dns),
        port_mappings,
        labels: sandbox_labels(pod),
        annotations: sandbox_annotations(pod),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: ctx.cgroup_parent.clone(),
            security_context: Some(sandbox_security_context(pod)),
            sysctls,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};

    #[test]
    fn sandbox_config_has_metadata_logs_ports_and_labels() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web-node1".into());
        pod.metadata.uid = Some("u1".into());
        pod.spec = Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                ports: Some(vec![ContainerPort {
                    container_port: 80,
                    host_port: Some(8080),
                    protocol: Some("UDP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        });
        let ctx = SandboxContext { pod_logs_dir: "/var/log/pods".into(), dns: ClusterDns::default(), cgroup_parent: String::new() };
        let c = pod_sandbox_config(&pod, 2, &ctx);
        let m = c.metadata.unwrap();
        assert_eq!((m.name.as_str(), m.namespace.as_str(), m.uid.as_str(), m.attempt), ("web-node1", "default", "u1", 2));
        assert_eq!(c.log_directory, "/var/log/pods/default_web-node1_u1");
        assert_eq!(c.hostname, "web-node1");
        assert_eq!(c.port_mappings.len(), 1);
        assert_eq!(c.port_mappings[0].protocol, api::Protocol::Udp as i32);
        assert_eq!(c.labels["io.kubernetes.pod.uid"], "u1");
        let ns = c.linux.unwrap().security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.network, api::NamespaceMode::Pod as i32);
        assert_eq!(ns.pid, api::NamespaceMode::Container as i32);
    }

    #[test]
    fn hostname_override_replaces_hostname_and_drops_the_subdomain() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web-0".into());
        pod.metadata.namespace = Some("prod".into());
        pod.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            hostname: Some("custom-host".into()),
            subdomain: Some("db".into()),
            set_hostname_as_fqdn: Some(true),
            ..Default::default()
        });
        assert_eq!(kernel_hostname(&pod, "cluster.local").unwrap(), "custom-host.db.prod.svc.cluster.local");
        pod.spec.as_mut().unwrap().hostname_override = Some("override-host".into());
        assert_eq!((pod_hostname(&pod).as_str(), pod_subdomain(&pod)), ("override-host", None));
        assert_eq!(kernel_hostname(&pod, "cluster.local").unwrap(), "override-host");
    }

    #[test]
    fn hostname_as_fqdn_needs_a_subdomain_and_fits_64_characters() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web-0".into());
        pod.metadata.namespace = Some("prod".into());
        pod.spec = Some(k8s_openapi::api::core::v1::PodSpec { set_hostname_as_fqdn: Some(true), ..Default::default() });
        assert_eq!(kernel_hostname(&pod, "cluster.local").unwrap(), "web-0");
        pod.spec.as_mut().unwrap().subdomain = Some("db".into());
        assert_eq!(kernel_hostname(&pod, "cluster.local").unwrap(), "web-0.db.prod.svc.cluster.local");
        pod.spec.as_mut().unwrap().set_hostname_as_fqdn = Some(false);
        assert_eq!(kernel_hostname(&pod, "cluster.local").unwrap(), "web-0");
        pod.spec.as_mut().unwrap().set_hostname_as_fqdn = Some(true);
        pod.spec.as_mut().unwrap().hostname = Some("h".repeat(40));
        let err = kernel_hostname(&pod, "cluster.local").unwrap_err();
        assert_eq!(err, SandboxError::FqdnTooLong { fqdn: format!("{}.db.prod.svc.cluster.local", "h".repeat(40)) });
        assert_eq!(
            err.to_string(),
            format!(
                "failed to construct FQDN from pod hostname and cluster domain, FQDN {}.db.prod.svc.cluster.local is too long (64 characters is the max, 66 characters requested)",
                "h".repeat(40)
            )
        );
    }

    #[test]
    fn sandbox_security_context_follows_the_pod() {
        use k8s_openapi::api::core::v1::{EphemeralContainer, PodSecurityContext, SELinuxOptions, SeccompProfile, SecurityContext, Sysctl};
        let privileged = Some(SecurityContext { privileged: Some(true), ..Default::default() });
        let spec = PodSpec {
            containers: vec![Container { name: "app".into(), ..Default::default() }],
            init_containers: Some(vec![Container { name: "init".into(), security_context: privileged.clone(), ..Default::default() }]),
            security_context: Some(PodSecurityContext {
                run_as_user: Some(1000),
                run_as_group: Some(3000),
                fs_group: Some(2000),
                supplemental_groups: Some(vec![4000]),
                supplemental_groups_policy: Some("Strict".into()),
                se_linux_options: Some(SELinuxOptions { level: Some("s0:c1".into()), ..Default::default() }),
                seccomp_profile: Some(SeccompProfile { type_: "Unconfined".into(), localhost_profile: None }),
                sysctls: Some(vec![Sysctl { name: "kernel/shm_rmid_forced".into(), value: "1".into() }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut pod = Pod { spec: Some(spec), ..Default::default() };
        let ctx = SandboxContext { pod_logs_dir: "/var/log/pods".into(), dns: ClusterDns::default(), cgroup_parent: String::new() };
        let linux = pod_sandbox_config(&pod, 0, &ctx).linux.unwrap();
        assert_eq!(linux.sysctls["kernel.shm_rmid_forced"], "1");
        let sc = linux.security_context.unwrap();
        assert!(sc.privileged, "a privileged init container makes the sandbox privileged");
        assert_eq!((sc.run_as_user.unwrap().value, sc.run_as_group.unwrap().value), (1000, 3000));
        assert_eq!(sc.supplemental_groups, vec![2000, 4000]);
        assert_eq!(sc.supplemental_groups_policy, api::SupplementalGroupsPolicy::Strict as i32);
        assert_eq!(sc.selinux_options.unwrap().level, "s0:c1");
        // The sandbox always runs with the runtime's default seccomp profile, and no AppArmor one.
        assert_eq!(sc.seccomp.unwrap().profile_type, api::security_profile::ProfileType::RuntimeDefault as i32);
        assert!(sc.apparmor.is_none() && !sc.readonly_rootfs);

        let spec = pod.spec.as_mut().unwrap();
        spec.init_containers = None;
        spec.security_context = None;
        let sc = sandbox_security_context(&pod);
        assert!(!sc.privileged && sc.run_as_user.is_none() && sc.supplemental_groups.is_empty() && sc.selinux_options.is_none());
        pod.spec.as_mut().unwrap().ephemeral_containers =
            Some(vec![EphemeralContainer { name: "debug".into(), security_context: privileged, ..Default::default() }]);
        assert!(sandbox_security_context(&pod).privileged, "so does a privileged ephemeral container");
    }

    #[test]
    fn hostname_is_cut_to_a_valid_label() {
        let mut pod = Pod::default();
        pod.metadata.name = Some(format!("{}-x", "a".repeat(62)));
        assert_eq!(pod_hostname(&pod), "a".repeat(62));
    }
}
