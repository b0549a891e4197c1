//! Tests of the container security context against upstream's rules.

// The deprecated `apparmor_profile` string is asserted on: upstream still sends it.
#![allow(deprecated)]

use std::collections::BTreeMap;

use super::*;
use k8s_openapi::api::core::v1::{Capabilities, PodSpec, SeccompProfile};

fn pod(pod_sc: Option<PodSecurityContext>) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some("web".into());
    pod.metadata.namespace = Some("prod".into());
    pod.metadata.uid = Some("u1".into());
    pod.spec = Some(PodSpec { security_context: pod_sc, ..Default::default() });
    pod
}

fn container(sc: Option<SecurityContext>) -> Container {
    Container { name: "app".into(), security_context: sc, ..Default::default() }
}

fn node() -> NodeSecurity {
    NodeSecurity::new(Path::new("/var/lib/kubelet"), false)
}

fn build(pod: &Pod, c: &Container) -> api::LinuxContainerSecurityContext {
    container_security_context(pod, c, &node(), &ImageUser::default()).unwrap()
}

fn seccomp(type_: &str, localhost: Option<&str>) -> Option<SeccompProfile> {
    Some(SeccompProfile { type_: type_.into(), localhost_profile: localhost.map(Into::into) })
}

fn apparmor(type_: &str, localhost: Option<&str>) -> Option<AppArmorProfile> {
    Some(AppArmorProfile { type_: type_.into(), localhost_profile: localhost.map(Into::into) })
}

fn selinux(level: &str) -> Option<SELinuxOptions> {
    Some(SELinuxOptions { level: Some(level.into()), type_: Some("spc_t".into()), ..Default::default() })
}

fn kind(p: &Option<api::SecurityProfile>) -> Option<(ProfileType, &str)> {
    p.as_ref().map(|p| (ProfileType::try_from(p.profile_type).unwrap(), p.localhost_ref.as_str()))
}

#[test]
fn container_fields_override_pod_fields() {
    let pod = pod(Some(PodSecurityContext {
        run_as_user: Some(1000),
        run_as_group: Some(2000),
        run_as_non_root: Some(true),
        se_linux_options: selinux("s0:c1,c2"),
        ..Default::default()
    }));
    let from_pod = build(&pod, &container(None));
    assert_eq!(from_pod.run_as_user, Some(api::Int64Value { value: 1000 }));
    assert_eq!(from_pod.run_as_group, Some(api::Int64Value { value: 2000 }));
    assert_eq!(from_pod.selinux_options.as_ref().unwrap().level, "s0:c1,c2");
    assert_eq!(from_pod.selinux_options.as_ref().unwrap().r#type, "spc_t");

    let own = container(Some(SecurityContext {
        run_as_user: Some(1),
        run_as_group: Some(2),
        run_as_non_root: Some(false),
        se_linux_options: selinux("s0:c3"),
        ..Default::default()
    }));
    let sc = build(&pod, &own);
    assert_eq!(sc.run_as_user, Some(api::Int64Value { value: 1 }));
    assert_eq!(sc.run_as_group, Some(api::Int64Value { value: 2 }));
    assert_eq!(sc.selinux_options.unwrap().level, "s0:c3");
    assert_eq!(effective_security_context(&pod, &own).run_as_non_root, Some(false));
    // A container security context without those fields keeps the pod's.
    let partial = container(Some(SecurityContext { privileged: Some(false), ..Default::default() }));
    assert_eq!(effective_security_context(&pod, &partial).run_as_user, Some(1000));
    assert_eq!(effective_security_context(&pod, &partial).run_as_non_root, Some(true));
}

#[test]
fn capabilities_privileged_readonly_rootfs_and_no_new_privs() {
    let c = container(Some(SecurityContext {
        capabilities: Some(Capabilities { add: Some(vec!["NET_ADMIN".into()]), drop: Some(vec!["ALL".into()]) }),
        privileged: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        ..Default::default()
    }));
    let sc = build(&pod(None), &c);
    let caps = sc.capabilities.unwrap();
    assert_eq!((caps.add_capabilities, caps.drop_capabilities), (vec!["NET_ADMIN".to_string()], vec!["ALL".to_string()]));
    assert!(sc.privileged && sc.readonly_rootfs && sc.no_new_privs);
    // Privileged containers still get the default paths, as upstream sends them.
    assert_eq!(sc.masked_paths.len(), DEFAULT_MASKED_PATHS.len());

    let plain = build(&pod(None), &container(None));
    assert!(plain.capabilities.is_none() && !plain.privileged && !plain.readonly_rootfs && !plain.no_new_privs);
    let allowed = container(Some(SecurityContext { allow_privilege_escalation: Some(true), ..Default::default() }));
    assert!(!build(&pod(None), &allowed).no_new_privs);
}

#[test]
fn proc_mount_default_masks_paths_and_unmasked_masks_none() {
    let sc = build(&pod(None), &container(None));
    assert_eq!(sc.masked_paths, DEFAULT_MASKED_PATHS.map(String::from).to_vec());
    assert_eq!(sc.readonly_paths, vec!["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
    let default = container(Some(SecurityContext { proc_mount: Some("Default".into()), ..Default::default() }));
    assert_eq!(build(&pod(None), &default).readonly_paths.len(), 5);
    let unmasked = container(Some(SecurityContext { proc_mount: Some("Unmasked".into()), ..Default::default() }));
    let sc = build(&pod(None), &unmasked);
    assert!(sc.masked_paths.is_empty() && sc.readonly_paths.is_empty());
}

#[test]
fn thermal_throttle_paths_of_present_cpus_are_masked() {
    let sys = tempfile::tempdir().unwrap();
    let cpu = sys.path().join("devices/system/cpu");
    std::fs::create_dir_all(cpu.join("cpu1/thermal_throttle")).unwrap();
    std::fs::create_dir_all(cpu.join("cpu5/thermal_throttle")).unwrap();
    std::fs::write(cpu.join("possible"), "0-1,3\n").unwrap();
    let node = NodeSecurity::detect(Path::new("/k"), true, sys.path());
    assert_eq!(&node.masked_paths[12..], ["/sys/devices/system/cpu/cpu1/thermal_throttle"]);
    assert_eq!(node.seccomp_profile_root, Path::new("/k/seccomp"));
    assert!(node.seccomp_default);
    assert_eq!(parse_cpu_list("0-2,7\n"), Some(vec![0, 1, 2, 7]));
    assert_eq!(parse_cpu_list("x"), None);
}

#[test]
fn seccomp_container_then_pod_then_node_default() {
    let n = node();
    let pod_sc = PodSecurityContext { seccomp_profile: seccomp("RuntimeDefault", None), ..Default::default() };
    let own = SecurityContext { seccomp_profile: seccomp("Unconfined", None), ..Default::default() };
    let type_of = |p: api::SecurityProfile| ProfileType::try_from(p.profile_type).unwrap();
    assert_eq!(type_of(seccomp_profile(Some(&pod_sc), Some(&own), &n).unwrap()), ProfileType::Unconfined);
    assert_eq!(type_of(seccomp_profile(Some(&pod_sc), None, &n).unwrap()), ProfileType::RuntimeDefault);
    assert_eq!(type_of(seccomp_profile(Some(&pod_sc), Some(&SecurityContext::default()), &n).unwrap()), ProfileType::RuntimeDefault);
    // Nothing set: Unconfined, or RuntimeDefault with seccompDefault.
    assert_eq!(type_of(seccomp_profile(None, None, &n).unwrap()), ProfileType::Unconfined);
    let with_default = NodeSecurity { seccomp_default: true, ..node() };
    assert_eq!(type_of(seccomp_profile(None, None, &with_default).unwrap()), ProfileType::RuntimeDefault);
    // An explicit Unconfined wins over seccompDefault; an unknown type is Unconfined.
    assert_eq!(type_of(seccomp_profile(None, Some(&own), &with_default).unwrap()), ProfileType::Unconfined);
    let odd = SecurityContext { seccomp_profile: seccomp("Odd", None), ..Default::default() };
    assert_eq!(type_of(seccomp_profile(None, Some(&odd), &with_default).unwrap()), ProfileType::Unconfined);
    // The built context carries it.
    assert_eq!(kind(&build(&pod(Some(pod_sc)), &container(None)).seccomp), Some((ProfileType::RuntimeDefault, "")));
}

#[test]
fn seccomp_localhost_names_a_file_under_the_seccomp_root() {
    let pod_sc = PodSecurityContext { seccomp_profile: seccomp("Localhost", Some("profiles/audit.json")), ..Default::default() };
    let sc = build(&pod(Some(pod_sc)), &container(None));
    assert_eq!(kind(&sc.seccomp), Some((ProfileType::Localhost, "/var/lib/kubelet/seccomp/profiles/audit.json")));
    let odd = SecurityContext { seccomp_profile: seccomp("Localhost", Some("./a//b.json")), ..Default::default() };
    let p = seccomp_profile(None, Some(&odd), &node()).unwrap();
    assert_eq!(p.localhost_ref, "/var/lib/kubelet/seccomp/a/b.json");
    let missing = container(Some(SecurityContext { seccomp_profile: seccomp("Localhost", None), ..Default::default() }));
    let err = container_security_context(&pod(None), &missing, &node(), &ImageUser::default()).unwrap_err();
    assert_eq!(err.to_string(), "localhostProfile must be set if seccompProfile type is Localhost.");
}

#[test]
fn apparmor_field_then_annotation_then_pod_field() {
    let mut p = pod(Some(PodSecurityContext { app_armor_profile: apparmor("Unconfined", None), ..Default::default() }));
    let c = container(None);
    let (profile, deprecated) = apparmor_profile(&p, &c).unwrap();
    assert_eq!((kind(&profile), deprecated.as_str()), (Some((ProfileType::Unconfined, "")), "unconfined"));

    p.metadata.annotations = Some(BTreeMap::from([(format!("{APPARMOR_ANNOTATION_PREFIX}app"), "localhost/k8s-deny-write".to_string())]));
    let (profile, deprecated) = apparmor_profile(&p, &c).unwrap();
    assert_eq!((kind(&profile), deprecated.as_str()), (Some((ProfileType::Localhost, "k8s-deny-write")), "localhost/k8s-deny-write"));

    let own = container(Some(SecurityContext { app_armor_profile: apparmor("RuntimeDefault", None), ..Default::default() }));
    let sc = build(&p, &own);
    assert_eq!((kind(&sc.apparmor), sc.apparmor_profile.as_str()), (Some((ProfileType::RuntimeDefault, "")), "runtime/default"));

    // The annotation of another container, or an unknown value, does not apply.
    p.metadata.annotations = Some(BTreeMap::from([
        (format!("{APPARMOR_ANNOTATION_PREFIX}other"), "runtime/default".to_string()),
        (format!("{APPARMOR_ANNOTATION_PREFIX}app"), "bogus".to_string()),
    ]));
    assert_eq!(kind(&apparmor_profile(&p, &c).unwrap().0), Some((ProfileType::Unconfined, "")));
}

#[test]
fn apparmor_unset_is_left_to_the_runtime_and_bad_profiles_fail() {
    let sc = build(&pod(None), &container(None));
    assert!(sc.apparmor.is_none());
    assert_eq!(sc.apparmor_profile, "");
    let no_name = container(Some(SecurityContext { app_armor_profile: apparmor("Localhost", None), ..Default::default() }));
    assert_eq!(apparmor_profile(&pod(None), &no_name).unwrap_err().to_string(), "missing localhost apparmor profile name");
    let odd = container(Some(SecurityContext { app_armor_profile: apparmor("Odd", None), ..Default::default() }));
    assert_eq!(apparmor_profile(&pod(None), &odd).unwrap_err().to_string(), "unknown apparmor profile type: \"Odd\"");
}

#[test]
fn supplemental_groups_are_fs_group_then_groups_with_their_policy() {
    let pod_sc = PodSecurityContext {
        fs_group: Some(3000),
        supplemental_groups: Some(vec![10, 3000]),
        supplemental_groups_policy: Some("Strict".into()),
        ..Default::default()
    };
    let sc = build(&pod(Some(pod_sc.clone())), &container(None));
    assert_eq!(sc.supplemental_groups, vec![3000, 10, 3000]);
    assert_eq!(sc.supplemental_groups_policy, api::SupplementalGroupsPolicy::Strict as i32);
    assert_eq!(supplemental_groups_policy(None), Ok(api::SupplementalGroupsPolicy::Merge as i32));
    let merge = PodSecurityContext { supplemental_groups_policy: Some("Merge".into()), ..Default::default() };
    assert_eq!(supplemental_groups_policy(Some(&merge)), Ok(api::SupplementalGroupsPolicy::Merge as i32));
    let bad = PodSecurityContext { supplemental_groups_policy: Some("Loose".into()), ..pod_sc };
    let err = container_security_context(&pod(Some(bad)), &container(None), &node(), &ImageUser::default()).unwrap_err();
    assert_eq!(err.to_string(), "unsupported supplementalGroupsPolicy: Loose");
}

#[test]
fn image_user_fills_in_when_no_run_as_user_is_set() {
    let image = |uid: Option<i64>, username: &str| api::Image {
        uid: uid.map(|value| api::Int64Value { value }),
        username: username.into(),
        ..Default::default()
    };
    assert_eq!(ImageUser::of(Some(&image(Some(1000), ""))), ImageUser { uid: Some(1000), username: String::new() });
    assert_eq!(ImageUser::of(Some(&image(None, "nobody"))), ImageUser { uid: None, username: "nobody".into() });
    assert_eq!(ImageUser::of(Some(&image(None, ""))), ImageUser { uid: Some(0), username: String::new() });
    assert_eq!(ImageUser::of(None), ImageUser { uid: Some(0), username: String::new() });

    let named = ImageUser { uid: None, username: "nobody".into() };
    let sc = container_security_context(&pod(None), &container(None), &node(), &named).unwrap();
    assert_eq!((sc.run_as_user, sc.run_as_username.as_str()), (None, "nobody"));
    let numeric = ImageUser { uid: Some(1000), username: String::new() };
    let sc = container_security_context(&pod(None), &container(None), &node(), &numeric).unwrap();
    assert_eq!(sc.run_as_user, Some(api::Int64Value { value: 1000 }));
    // An explicit runAsUser wins over the image's user, named or numeric.
    let p = pod(Some(PodSecurityContext { run_as_user: Some(7), ..Default::default() }));
    let sc = container_security_context(&p, &container(None), &node(), &named).unwrap();
    assert_eq!((sc.run_as_user, sc.run_as_username.as_str()), (Some(api::Int64Value { value: 7 }), ""));
}

#[test]
fn run_as_non_root_refuses_root_and_unverifiable_users() {
    let non_root = pod(Some(PodSecurityContext { run_as_non_root: Some(true), ..Default::default() }));
    let root_image = ImageUser { uid: Some(0), username: String::new() };
    let c = container(None);
    assert_eq!(
        verify_run_as_non_root(&non_root, &c, &root_image).unwrap_err().to_string(),
        "container has runAsNonRoot and image will run as root (pod: \"web_prod(u1)\", container: app)"
    );
    let explicit_root = container(Some(SecurityContext { run_as_user: Some(0), ..Default::default() }));
    assert_eq!(
        verify_run_as_non_root(&non_root, &explicit_root, &ImageUser { uid: Some(1000), username: String::new() }).unwrap_err().to_string(),
        "container's runAsUser breaks non-root policy (pod: \"web_prod(u1)\", container: app)"
    );
    let named = ImageUser { uid: None, username: "nobody".into() };
    assert_eq!(
        verify_run_as_non_root(&non_root, &c, &named).unwrap_err().to_string(),
        "container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root (pod: \"web_prod(u1)\", container: app)"
    );
    let huge = ImageUser { uid: Some(1 << 40), username: String::new() };
    assert_eq!(
        verify_run_as_non_root(&non_root, &c, &huge).unwrap_err().to_string(),
        "container has runAsNonRoot and image has an invalid user id (1099511627776). (Must be 1-(2147483647)): must be between 0 and 2147483647, inclusive (pod: \"web_prod(u1)\", container: app)"
    );
    // A numeric non-root image user passes, and so does a runAsUser overriding a root image.
    assert_eq!(verify_run_as_non_root(&non_root, &c, &ImageUser { uid: Some(1000), username: String::new() }), Ok(()));
    let as_1000 = container(Some(SecurityContext { run_as_user: Some(1000), ..Default::default() }));
    assert_eq!(verify_run_as_non_root(&non_root, &as_1000, &root_image), Ok(()));
    // Without runAsNonRoot (or with the container turning it off) anything goes.
    assert_eq!(verify_run_as_non_root(&pod(None), &c, &root_image), Ok(()));
    let off = container(Some(SecurityContext { run_as_non_root: Some(false), ..Default::default() }));
    assert_eq!(verify_run_as_non_root(&non_root, &off, &root_image), Ok(()));
    // The container's runAsNonRoot applies without a pod-level one.
    let on = container(Some(SecurityContext { run_as_non_root: Some(true), ..Default::default() }));
    assert!(verify_run_as_non_root(&pod(None), &on, &root_image).is_err());
}
