//! Pod and container security settings → the container's CRI Linux security context (upstream
//! `kuberuntime/security_context.go`, `pkg/securitycontext`, the seccomp and AppArmor helpers of
//! `kuberuntime/helpers.go`, and `verifyRunAsNonRoot`).
//!
//! Pure: the effective security context (container fields over the pod's), capabilities, SELinux,
//! masked and read-only `/proc` paths, seccomp and AppArmor profiles, users and groups, and the
//! `runAsNonRoot` check against the image's user. It owns none of the I/O: the runtime manager
//! asks the runtime for the image's user, and [`NodeSecurity::detect`] reads the host once at
//! start-up. The sandbox's security context is built by [`super::sandbox`] from the helpers here.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{AppArmorProfile, Container, Pod, PodSecurityContext, SELinuxOptions, SecurityContext};
use kubelet_cri::api;
use kubelet_cri::api::security_profile::ProfileType;

use super::labels::{pod_name, pod_namespace, pod_uid};
use super::sandbox::namespace_options;

/// Pod annotation prefix of the deprecated per-container AppArmor profile, still honoured.
pub const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const APPARMOR_RUNTIME_DEFAULT: &str = "runtime/default";
const APPARMOR_UNCONFINED: &str = "unconfined";
const APPARMOR_LOCALHOST_PREFIX: &str = "localhost/";

/// Paths masked in every container whose `procMount` is `Default` (upstream keeps them in sync
/// with moby's defaults). [`NodeSecurity::detect`] adds the host's CPU thermal-throttle entries.
pub const DEFAULT_MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths mounted read-only in every container whose `procMount` is `Default`.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Node-level settings every container's security context depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSecurity {
    /// KubeletConfiguration `seccompDefault`: `RuntimeDefault` instead of `Unconfined` when a pod
    /// names no seccomp profile.
    pub seccomp_default: bool,
    /// Where `Localhost` seccomp profiles live: `<root-dir>/seccomp`.
    pub seccomp_profile_root: PathBuf,
    /// Masked paths for `procMount: Default`.
    pub masked_paths: Vec<String>,
}

impl NodeSecurity {
    /// The settings of a kubelet rooted at `root_dir`, with the fixed default masked paths.
    pub fn new(root_dir: &Path, seccomp_default: bool) -> Self {
        Self {
            seccomp_default,
            seccomp_profile_root: root_dir.join("seccomp"),
            masked_paths: DEFAULT_MASKED_PATHS.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// As [`NodeSecurity::new`], also masking `/sys/devices/system/cpu/cpuN/thermal_throttle` of
    /// every possible CPU where it exists under `sys_root` (the host's `/sys`), as upstream.
    pub fn detect(root_dir: &Path, seccomp_default: bool, sys_root: &Path) -> Self {
        let mut node = Self::new(root_dir, seccomp_default);
        let cpu_dir = sys_root.join("devices/system/cpu");
        let cpus = std::fs::read_to_string(cpu_dir.join("possible"))
            .ok()
            .and_then(|s| parse_cpu_list(&s))
            .unwrap_or_else(|| (0..std::thread::available_parallelism().map_or(1, |n| n.get() as u32)).collect());
        for cpu in cpus {
            if cpu_dir.join(format!("cpu{cpu}/thermal_throttle")).exists() {
                node.masked_paths.push(format!("/sys/devices/system/cpu/cpu{cpu}/thermal_throttle"));
            }
        }
        node
    }
}

/// A kernel CPU list (`0-3,8,10-11`), `None` when malformed.
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for range in s.trim().split(',') {
        match range.split_once('-') {
            Some((start, end)) => cpus.extend(start.parse::<u32>().ok()?..=end.parse::<u32>().ok()?),
            None => cpus.push(range.parse().ok()?),
        }
    }
    Some(cpus)
}

/// The user an image runs as, from the runtime's image status: a uid or, failing that, a name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageUser {
    /// The image's numeric user (CRI `Image.uid`), if it gives one.
    pub uid: Option<i64>,
    /// The image's user name when it gives no uid; empty otherwise.
    pub username: String,
}

impl ImageUser {
    /// As upstream's `getImageUser`: the image's uid, else its user name; an unknown image or one
    /// that names no user runs as root (uid 0).
    pub fn of(image: Option<&api::Image>) -> Self {
        match image {
            Some(api::Image { uid: Some(uid), .. }) => Self { uid: Some(uid.value), username: String::new() },
            Some(i) if !i.username.is_empty() => Self { uid: None, username: i.username.clone() },
            _ => Self { uid: Some(0), username: String::new() },
        }
    }
}

/// Why a container's security context cannot be built or breaks its pod's policy (each becomes
/// the message of a `CreateContainerConfigError`, in upstream's words).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecurityContextError {
    /// A `seccompProfile` of type `Localhost` without `localhostProfile`.
    #[error("localhostProfile must be set if seccompProfile type is Localhost.")]
    SeccompLocalhostWithoutProfile,
    /// An `appArmorProfile` of type `Localhost` without `localhostProfile`.
    #[error("missing localhost apparmor profile name")]
    AppArmorLocalhostWithoutProfile,
    /// An `appArmorProfile` type other than `RuntimeDefault`, `Unconfined` or `Localhost` (given).
    #[error("unknown apparmor profile type: {0:?}")]
    UnknownAppArmorType(String),
    /// A pod `supplementalGroupsPolicy` CRI does not know (given).
    #[error("unsupported supplementalGroupsPolicy: {0}")]
    UnsupportedSupplementalGroupsPolicy(String),
    /// `runAsNonRoot` with an effective `runAsUser` of 0.
    #[error("container's runAsUser breaks non-root policy (pod: {pod:?}, container: {container})")]
    RunAsUserIsRoot {
        /// The pod as `<name>_<namespace>(<uid>)`.
        pod: String,
        /// The container's name in the pod spec.
        container: String,
    },
    /// `runAsNonRoot` without `runAsUser`, and the image runs as uid 0.
    #[error("container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})")]
    ImageRunsAsRoot {
        /// The pod as `<name>_<namespace>(<uid>)`.
        pod: String,
        /// The container's name in the pod spec.
        container: String,
    },
    /// `runAsNonRoot` without `runAsUser`, and the image names its user only by name, which
    /// cannot be checked.
    #[error(
        "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: {pod:?}, container: {container})"
    )]
    NonNumericImageUser {
        /// The image's user name.
        user: String,
        /// The pod as `<name>_<namespace>(<uid>)`.
        pod: String,
        /// The container's name in the pod spec.
        container: String,
    },
    /// `runAsNonRoot` without `runAsUser`, and the image's uid is outside 0 to `i32::MAX`.
    #[error("container has runAsNonRoot and image has an invalid user id ({uid}). (Must be 1-({max})): must be between 0 and {max}, inclusive (pod: {pod:?}, container: {container})", max = i32::MAX)]
    InvalidImageUid {
        /// The image's uid.
        uid: i64,
        /// The pod as `<name>_<namespace>(<uid>)`.
        pod: String,
        /// The container's name in the pod spec.
        container: String,
    },
}

/// The pod-level security context, if any.
pub fn pod_security_context(pod: &Pod) -> Option<&PodSecurityContext> {
    pod.spec.as_ref().and_then(|s| s.security_context.as_ref())
}

/// Upstream `DetermineEffectiveSecurityContext`: the container's security context with the
/// pod-level `seLinuxOptions`, `runAsUser`, `runAsGroup` and `runAsNonRoot` where the container
/// sets none. (Seccomp and AppArmor have their own precedence: [`seccomp_profile`],
/// [`apparmor_profile`].)
pub fn effective_security_context(pod: &Pod, c: &Container) -> SecurityContext {
    let mut sc = c.security_context.clone().unwrap_or_default();
    if let Some(p) = pod_security_context(pod) {
        sc.se_linux_options = sc.se_linux_options.or_else(|| p.se_linux_options.clone());
        sc.run_as_user = sc.run_as_user.or(p.run_as_user);
        sc.run_as_group = sc.run_as_group.or(p.run_as_group);
        sc.run_as_non_root = sc.run_as_non_root.or(p.run_as_non_root);
    }
    sc
}

/// `name_namespace(uid)`, upstream's `format.Pod`.
fn pod_desc(pod: &Pod) -> String {
    format!("{}_{}({})", pod_name(pod), pod_namespace(pod), pod_uid(pod))
}

/// Upstream `verifyRunAsNonRoot`: with an effective `runAsNonRoot: true`, the container must not
/// run as uid 0, whether it says so itself (`runAsUser`) or its image does; an image user given
/// by name cannot be checked and is refused too.
pub fn verify_run_as_non_root(pod: &Pod, c: &Container, image: &ImageUser) -> Result<(), SecurityContextError> {
    let sc = effective_security_context(pod, c);
    if sc.run_as_non_root != Some(true) {
        return Ok(());
    }
    let (pod, container) = (pod_desc(pod), c.name.clone());
    if let Some(uid) = sc.run_as_user {
        return if uid == 0 { Err(SecurityContextError::RunAsUserIsRoot { pod, container }) } else { Ok(()) };
    }
    match image.uid {
        None if !image.username.is_empty() => {
            Err(SecurityContextError::NonNumericImageUser { user: image.username.clone(), pod, container })
        }
        Some(0) => Err(SecurityContextError::ImageRunsAsRoot { pod, container }),
        Some(uid) if !(0..=i64::from(i32::MAX)).contains(&uid) => Err(SecurityContextError::InvalidImageUid { uid, pod, container }),
        _ => Ok(()),
    }
}

fn profile(kind: ProfileType, localhost_ref: String) -> api::SecurityProfile {
    api::SecurityProfile { profile_type: kind as i32, localhost_ref }
}

/// Go's `filepath.Join`: `root` and `rel` joined and lexically cleaned (`rel` may not escape
/// being relative, even when it starts with `/`).
fn join_clean(root: &Path, rel: &str) -> String {
    let joined = format!("{}/{rel}", root.display());
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The container's seccomp profile (upstream `getSeccompProfile`): its own `seccompProfile`, else
/// the pod's, else `RuntimeDefault` with `seccompDefault`, else `Unconfined`. `Localhost` names a
/// file under the node's seccomp root; an unknown type is `Unconfined`.
pub fn seccomp_profile(
    pod_sc: Option<&PodSecurityContext>,
    container_sc: Option<&SecurityContext>,
    node: &NodeSecurity,
) -> Result<api::SecurityProfile, SecurityContextError> {
    let field = container_sc.and_then(|s| s.seccomp_profile.as_ref()).or_else(|| pod_sc.and_then(|s| s.seccomp_profile.as_ref()));
    let Some(field) = field else {
        let kind = if node.seccomp_default { ProfileType::RuntimeDefault } else { ProfileType::Unconfined };
        return Ok(profile(kind, String::new()));
    };
    Ok(match field.type_.as_str() {
        "RuntimeDefault" => profile(ProfileType::RuntimeDefault, String::new()),
        "Localhost" => match field.localhost_profile.as_deref().filter(|p| !p.is_empty()) {
            Some(rel) => profile(ProfileType::Localhost, join_clean(&node.seccomp_profile_root, rel)),
            None => return Err(SecurityContextError::SeccompLocalhostWithoutProfile),
        },
        _ => profile(ProfileType::Unconfined, String::new()),
    })
}

/// The profile of the deprecated per-container annotation; unknown values count as unset.
fn apparmor_annotation(pod: &Pod, container: &str) -> Option<AppArmorProfile> {
    let value = pod.metadata.annotations.as_ref()?.get(&format!("{APPARMOR_ANNOTATION_PREFIX}{container}"))?;
    let (type_, localhost_profile) = match value.as_str() {
        APPARMOR_RUNTIME_DEFAULT => ("RuntimeDefault", None),
        APPARMOR_UNCONFINED => ("Unconfined", None),
        v => ("Localhost", Some(v.strip_prefix(APPARMOR_LOCALHOST_PREFIX)?.to_string())),
    };
    Some(AppArmorProfile { type_: type_.into(), localhost_profile })
}

/// The container's AppArmor profile (upstream `apparmor.GetProfile` and `getAppArmorProfile`):
/// its own `appArmorProfile`, else the deprecated annotation, else the pod's; `None` leaves the
/// choice to the runtime. Also returns the deprecated string form (`runtime/default`,
/// `unconfined`, `localhost/<name>`) older runtimes read.
pub fn apparmor_profile(pod: &Pod, c: &Container) -> Result<(Option<api::SecurityProfile>, String), SecurityContextError> {
    let chosen = c
        .security_context
        .as_ref()
        .and_then(|s| s.app_armor_profile.clone())
        .or_else(|| apparmor_annotation(pod, &c.name))
        .or_else(|| pod_security_context(pod).and_then(|s| s.app_armor_profile.clone()));
    let Some(chosen) = chosen else { return Ok((None, String::new())) };
    match chosen.type_.as_str() {
        "RuntimeDefault" => Ok((Some(profile(ProfileType::RuntimeDefault, String::new())), APPARMOR_RUNTIME_DEFAULT.into())),
        "Unconfined" => Ok((Some(profile(ProfileType::Unconfined, String::new())), APPARMOR_UNCONFINED.into())),
        "Localhost" => {
            let name = chosen.localhost_profile.ok_or(SecurityContextError::AppArmorLocalhostWithoutProfile)?;
            Ok((Some(profile(ProfileType::Localhost, name.clone())), format!("{APPARMOR_LOCALHOST_PREFIX}{name}")))
        }
        other => Err(SecurityContextError::UnknownAppArmorType(other.into())),
    }
}

/// The pod's `fsGroup` followed by its `supplementalGroups`, as upstream gives every container.
pub fn pod_supplemental_groups(pod_sc: Option<&PodSecurityContext>) -> Vec<i64> {
    let fs_group = pod_sc.and_then(|sc| sc.fs_group);
    let groups = pod_sc.and_then(|sc| sc.supplemental_groups.as_ref());
    fs_group.into_iter().chain(groups.into_iter().flatten().copied()).collect()
}

/// The pod's `supplementalGroupsPolicy` as CRI's enum value (`Merge` when unset).
pub fn supplemental_groups_policy(pod_sc: Option<&PodSecurityContext>) -> Result<i32, SecurityContextError> {
    match pod_sc.and_then(|sc| sc.supplemental_groups_policy.as_deref()) {
        None => Ok(api::SupplementalGroupsPolicy::Merge as i32),
        Some(p) => api::SupplementalGroupsPolicy::from_str_name(p)
            .map(|v| v as i32)
            .ok_or_else(|| SecurityContextError::UnsupportedSupplementalGroupsPolicy(p.into())),
    }
}

/// SELinux options as CRI's.
pub fn selinux_option(o: &SELinuxOptions) -> api::SeLinuxOption {
    api::SeLinuxOption {
        user: o.user.clone().unwrap_or_default(),
        role: o.role.clone().unwrap_or_default(),
        r#type: o.type_.clone().unwrap_or_default(),
        level: o.level.clone().unwrap_or_default(),
    }
}

/// Upstream `AddNoNewPrivileges`: only an explicit `allowPrivilegeEscalation: false`.
pub fn no_new_privileges(sc: &SecurityContext) -> bool {
    sc.allow_privilege_escalation == Some(false)
}

fn unmasked(sc: &SecurityContext) -> bool {
    sc.proc_mount.as_deref() == Some("Unmasked")
}

/// Builds the container's CRI security context (upstream `determineEffectiveSecurityContext`).
/// Privileged containers get the same masked and read-only paths (upstream sends them; the
/// runtime drops them for privileged containers). Without a `runAsUser` the image's user is
/// passed on. `runAsNonRoot` is checked separately ([`verify_run_as_non_root`]).
// The deprecated `apparmor_profile` string is still sent, as upstream, for older runtimes.
#[allow(deprecated)]
pub fn container_security_context(
    pod: &Pod,
    c: &Container,
    node: &NodeSecurity,
    image: &ImageUser,
) -> Result<api::LinuxContainerSecurityContext, SecurityContextError> {
    let sc = effective_security_context(pod, c);
    let pod_sc = pod_security_context(pod);
    let seccomp = seccomp_profile(pod_sc, c.security_context.as_ref(), node)?;
    let (apparmor, apparmor_profile) = apparmor_profile(pod, c)?;
    let supplemental_groups_policy = supplemental_groups_policy(pod_sc)?;
    let (masked_paths, readonly_paths) = if unmasked(&sc) {
        (Vec::new(), Vec::new())
    } else {
        (node.masked_paths.clone(), DEFAULT_READONLY_PATHS.iter().map(|p| p.to_string()).collect())
    };
    Ok(api::LinuxContainerSecurityContext {
        capabilities: sc.capabilities.as_ref().map(|caps| api::Capability {
            add_capabilities: caps.add.clone().unwrap_or_default(),
            drop_capabilities: caps.drop.clone().unwrap_or_default(),
            ..Default::default()
        }),
        privileged: sc.privileged.unwrap_or(false),
        namespace_options: Some(namespace_options(pod)),
        selinux_options: sc.se_linux_options.as_ref().map(selinux_option),
        run_as_user: sc.run_as_user.or(image.uid).map(|value| api::Int64Value { value }),
        run_as_username: if sc.run_as_user.is_none() { image.username.clone() } else { String::new() },
        run_as_group: sc.run_as_group.map(|value| api::Int64Value { value }),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: pod_supplemental_groups(pod_sc),
        supplemental_groups_policy,
        no_new_privs: no_new_privileges(&sc),
        masked_paths,
        readonly_paths,
        seccomp: Some(seccomp),
        apparmor,
        apparmor_profile,
        ..Default::default()
    })
}

#[cfg(test)]
#[path = "security_context_tests.rs"]
mod tests;
