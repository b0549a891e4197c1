//! AppArmor admission (upstream's AppArmor admit handler and validator): a pod that asks for an
//! AppArmor profile (in a security context field, or the deprecated per-container annotation)
//! cannot run on a host without AppArmor, and a `Localhost` profile needs a name.
//!
//! [`host_enabled`] reads the host once at start-up, as upstream; the rest is pure.

use std::path::Path;

use k8s_openapi::api::core::v1::{AppArmorProfile, Pod};

/// The deprecated per-container annotation prefix.
const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// Whether the kernel enforces AppArmor: `<sys>/kernel/security/apparmor` exists and
/// `<sys>/module/apparmor/parameters/enabled` says `Y`.
pub fn host_enabled(sys: &Path) -> bool {
    sys.join("kernel/security/apparmor").exists()
        && std::fs::read(sys.join("module/apparmor/parameters/enabled")).is_ok_and(|b| b.len() > 1 && b[0] == b'Y')
}

fn confining(p: Option<&AppArmorProfile>) -> bool {
    p.is_some_and(|p| p.type_ != "Unconfined")
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = (&str, Option<&AppArmorProfile>)> {
    let spec = pod.spec.iter();
    let regular = spec.clone().flat_map(|s| s.init_containers.iter().flatten().chain(s.containers.iter()));
    let regular = regular.map(|c| (c.name.as_str(), c.security_context.as_ref().and_then(|sc| sc.app_armor_profile.as_ref())));
    let ephemeral = spec.flat_map(|s| s.ephemeral_containers.iter().flatten());
    regular.chain(ephemeral.map(|c| (c.name.as_str(), c.security_context.as_ref().and_then(|sc| sc.app_armor_profile.as_ref()))))
}

/// Whether `pod` asks for AppArmor confinement anywhere (upstream `isRequired`).
pub fn required(pod: &Pod) -> bool {
    let pod_level = pod.spec.as_ref().and_then(|s| s.security_context.as_ref()).and_then(|sc| sc.app_armor_profile.as_ref());
    if confining(pod_level) || all_containers(pod).any(|(_, p)| confining(p)) {
        return true;
    }
    let annotations = pod.metadata.annotations.iter().flatten();
    annotations.filter(|(k, _)| k.starts_with(ANNOTATION_PREFIX)).any(|(_, v)| v != "unconfined")
}

/// Why a pod that asks for AppArmor cannot run here (the message after upstream's
/// `Cannot enforce AppArmor: `).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppArmorError {
    /// The pod asks for confinement and the host does not enforce AppArmor.
    #[error("AppArmor is not enabled on the host")]
    NotEnabled,
    /// A container's `Localhost` profile has no name (the container's name).
    #[error("invalid empty AppArmor profile name for container {0:?}")]
    EmptyLocalhostProfile(String),
}

/// Admits `pod` on a host where AppArmor is `enabled` or says why not.
pub fn admit(pod: &Pod, enabled: bool) -> Result<(), AppArmorError> {
    if !required(pod) {
        return Ok(());
    }
    if !enabled {
        return Err(AppArmorError::NotEnabled);
    }
    for (name, profile) in all_containers(pod) {
        if let Some(p) = profile.filter(|p| p.type_ == "Localhost")
            && p.localhost_profile.as_deref().is_none_or(|n| n.trim().is_empty())
        {
            return Err(AppArmorError::EmptyLocalhostProfile(name.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext};

    fn pod_with(profile: Option<AppArmorProfile>, annotation: Option<&str>) -> Pod {
        let mut pod = Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    security_context: Some(SecurityContext { app_armor_profile: profile, ..Default::default() }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        if let Some(v) = annotation {
            pod.metadata.annotations = Some([(format!("{ANNOTATION_PREFIX}c"), v.to_string())].into());
        }
        pod
    }

    fn profile(type_: &str, name: Option<&str>) -> Option<AppArmorProfile> {
        Some(AppArmorProfile { type_: type_.into(), localhost_profile: name.map(Into::into) })
    }

    #[test]
    fn confinement_is_refused_without_apparmor_on_the_host() {
        for pod in [pod_with(profile("RuntimeDefault", None), None), pod_with(None, Some("runtime/default"))] {
            assert_eq!(admit(&pod, false).unwrap_err().to_string(), "AppArmor is not enabled on the host");
            assert_eq!(admit(&pod, false), Err(AppArmorError::NotEnabled));
            assert_eq!(admit(&pod, true), Ok(()));
        }
        for pod in [pod_with(None, None), pod_with(profile("Unconfined", None), None), pod_with(None, Some("unconfined"))] {
            assert!(!required(&pod));
            assert_eq!(admit(&pod, false), Ok(()));
        }
    }

    #[test]
    fn localhost_profiles_need_a_name() {
        let err = admit(&pod_with(profile("Localhost", Some(" ")), None), true).unwrap_err();
        assert!(err.to_string().contains("invalid empty AppArmor profile name"), "{err}");
        assert_eq!(err, AppArmorError::EmptyLocalhostProfile("c".into()));
        assert_eq!(err.to_string(), "invalid empty AppArmor profile name for container \"c\"");
        assert_eq!(admit(&pod_with(profile("Localhost", Some("k8s-nginx")), None), true), Ok(()));
    }

    #[test]
    fn the_host_is_read_from_sysfs() {
        let sys = tempfile::tempdir().unwrap();
        assert!(!host_enabled(sys.path()));
        std::fs::create_dir_all(sys.path().join("kernel/security/apparmor")).unwrap();
        std::fs::create_dir_all(sys.path().join("module/apparmor/parameters")).unwrap();
        std::fs::write(sys.path().join("module/apparmor/parameters/enabled"), "Y\n").unwrap();
        assert!(host_enabled(sys.path()));
        std::fs::write(sys.path().join("module/apparmor/parameters/enabled"), "N\n").unwrap();
        assert!(!host_enabled(sys.path()));
    }
}
