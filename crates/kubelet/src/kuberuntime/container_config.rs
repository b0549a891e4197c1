//! Container spec → CRI `ContainerConfig` (upstream `generateContainerConfig`).
//!
//! Pure (but for `fileKeyRef` env files, see [`super::file_key_ref`]): environment,
//! `$(VAR)`-expanded command and args, working directory, mounts (volumes, the
//! kubelet-managed `/etc/hosts`, the termination-message file), log path, resources, security
//! context ([`super::security_context`], including the `runAsNonRoot` check), labels and
//! annotations. Preparing the host paths and looking up the image's user is the runtime manager's
//! job.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod, VolumeMount};
use kubelet_cri::{ContainerConfigExtras, CriError, api};
use kubelet_deviceplugin::AllocationError;

use super::env::{EnvError, EnvObjects, EnvSourceError, PodFacts, container_env, expand};
use super::hash::container_hash;
use super::labels::{container_annotations, container_labels};
use super::resources::linux_resources;
use super::security_context::{ImageUser, NodeSecurity, SecurityContextError, container_security_context, verify_run_as_non_root};
use super::sub_path::{SubPathError, SubPaths, mount_sub_path};

/// Host-side facts a container config needs.
pub struct ContainerContext<'a> {
    /// Pod facts (IPs, host IP, node name, allocatable) that `fieldRef`s and `resourceFieldRef`s read.
    pub facts: &'a PodFacts,
    /// The API objects the environment reads ([`EnvObjects::fetch`]).
    pub env_objects: &'a EnvObjects,
    /// Volume name → prepared host path (for mounts and `fileKeyRef` env files).
    pub volume_paths: &'a HashMap<String, PathBuf>,
    /// Image volume name → (the image as the pod names it, the pulled image reference): the
    /// runtime mounts these read-only (CRI `Mount.image`).
    pub image_volumes: &'a HashMap<String, (String, String)>,
    /// The kubelet-managed hosts file to mount at `/etc/hosts`, if any.
    pub etc_hosts: Option<PathBuf>,
    /// Host file backing the container's termination-message path.
    pub termination_log: Option<PathBuf>,
    /// Node memory capacity in bytes, for the OOM score of burstable pods.
    pub memory_capacity: i64,
    /// Seccomp default and profile root, default masked paths.
    pub security: &'a NodeSecurity,
    /// The user the container's image runs as (from the runtime's image status).
    pub image_user: ImageUser,
    /// Prepares `subPath`/`subPathExpr` mounts on the host ([`HostSubPaths`](super::sub_path::HostSubPaths)).
    pub sub_paths: &'a dyn SubPaths,
    /// Whether the pod's runtime handler makes mounts recursively read-only (its CRI features).
    pub runtime_supports_rro: bool,
}

/// Why a container config could not be built (`CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
#[error("container {container:?}: {source}")]
pub struct ContainerConfigError {
    /// The container's name in the pod spec.
    pub container: String,
    /// What is wrong; its text is the container's `CreateContainerConfigError` status message.
    pub source: ContainerConfigCause,
}

impl ContainerConfigError {
    /// The config error of container `c`.
    pub fn new(c: &Container, source: impl Into<ContainerConfigCause>) -> Self {
        Self { container: c.name.clone(), source: source.into() }
    }
}

/// What is wrong with a container's config: the text is its `CreateContainerConfigError` status
/// message, and the `Error: <text>` of its `Failed` event.
#[derive(Debug, thiserror::Error)]
pub enum ContainerConfigCause {
    /// A ConfigMap or Secret (or the Services) the environment needs could not be read.
    #[error(transparent)]
    EnvSource(#[from] EnvSourceError),
    /// The runtime could not give the status of the container's image (for its user); only the
    /// runtime's own message of a gRPC error is shown.
    #[error("{}", super::manager::cri_message(.0))]
    ImageStatus(#[from] CriError),
    /// The container's environment cannot be built.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The container's mounts cannot be made.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// The container's security context cannot be built or breaks the pod's policy.
    #[error(transparent)]
    SecurityContext(#[from] SecurityContextError),
    /// The device manager could not give the container's device settings.
    #[error(transparent)]
    Devices(#[from] AllocationError),
}

/// Why a mount's `recursiveReadOnly` cannot be honoured (upstream's messages).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecursiveReadOnlyError {
    /// The mount asks for recursive read-only but is not `readOnly` (the volume's name).
    #[error("volume {0:?} requested recursive read-only mode, but it is not read-only")]
    NotReadOnly(String),
    /// The mount asks for recursive read-only with a mount propagation other than `None`.
    #[error("volume {volume:?} requested recursive read-only mode, but it is not compatible with propagation {propagation:?}")]
    Propagation {
        /// The volume's name.
        volume: String,
        /// The mount's `mountPropagation`.
        propagation: String,
    },
    /// `Enabled` on a runtime handler without recursive read-only mounts (the volume's name).
    #[error("volume {0:?} requested recursive read-only mode, but it is not supported by the runtime")]
    Unsupported(String),
    /// A `recursiveReadOnly` that is none of `Disabled`, `IfPossible` and `Enabled`.
    #[error("unknown recursive read-only mode {0:?}")]
    UnknownMode(String),
}

/// Why a container's mounts could not be made; the text is its `CreateContainerConfigError` message.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The mount's `subPath` or `subPathExpr` is refused or could not be prepared.
    #[error(transparent)]
    SubPath(#[from] SubPathError),
    /// The mount names a volume that was not prepared on this node (the volume's name).
    #[error("volume {0:?} is not available on this node")]
    VolumeUnavailable(String),
    /// The mount's `recursiveReadOnly` cannot be honoured.
    #[error("failed to resolve recursive read-only mode: {0}")]
    RecursiveReadOnly(#[from] RecursiveReadOnlyError),
}

/// Upstream `resolveRecursiveReadOnly`: whether the mount is to be recursively read-only, or why
/// its `recursiveReadOnly` cannot be honoured.
pub(crate) fn resolve_recursive_read_only(m: &VolumeMount, runtime_supports_rro: bool) -> Result<bool, RecursiveReadOnlyError> {
    let mode = m.recursive_read_only.as_deref().unwrap_or("Disabled");
    if mode == "Disabled" {
        return Ok(false);
    }
    if !m.read_only.unwrap_or(false) {
        return Err(RecursiveReadOnlyError::NotReadOnly(m.name.clone()));
    }
    if let Some(p) = m.mount_propagation.as_deref().filter(|p| *p != "None") {
        return Err(RecursiveReadOnlyError::Propagation { volume: m.name.clone(), propagation: p.to_string() });
    }
    match mode {
        "IfPossible" => Ok(runtime_supports_rro),
        "Enabled" if runtime_supports_rro => Ok(true),
        "Enabled" => Err(RecursiveReadOnlyError::Unsupported(m.name.clone())),
        other => Err(RecursiveReadOnlyError::UnknownMode(other.to_string())),
    }
}

/// The container's mounts, and the sub-paths of its image volume mounts (by mount path):
/// the runtime mounts the path inside the image (CRI `Mount.image_sub_path`, refusing one the
/// image lacks), as upstream since 1.33.
fn mounts(
    c: &Container,
    ctx: &ContainerContext,
    vars: &BTreeMap<String, String>,
) -> Result<(Vec<api::Mount>, ContainerConfigExtras), MountError> {
    let mut out = Vec::new();
    let mut extras = ContainerConfigExtras::default();
    for (index, m) in c.volume_mounts.iter().flatten().enumerate() {
        if let Some((reference, image_ref)) = ctx.image_volumes.get(&m.name) {
            if let Some(sub) = mount_sub_path(m, vars)? {
                extras.image_sub_paths.insert(m.mount_path.clone(), sub);
            }
            out.push(api::Mount {
                container_path: m.mount_path.clone(),
                readonly: true,
                image: Some(api::ImageSpec { image: image_ref.clone(), user_specified_image: reference.clone(), ..Default::default() }),
                ..Default::default()
            });
            continue;
        }
        let base = ctx.volume_paths.get(&m.name).ok_or_else(|| MountError::VolumeUnavailable(m.name.clone()))?;
        let host = match mount_sub_path(m, vars)? {
            Some(sub) => ctx.sub_paths.prepare(&m.name, base, &sub, &c.name, index)?,
            None => base.clone(),
        };
        let recursive_read_only = resolve_recursive_read_only(m, ctx.runtime_supports_rro)?;
        out.push(api::Mount {
            container_path: m.mount_path.clone(),
            host_path: host.to_string_lossy().into_owned(),
            readonly: m.read_only.unwrap_or(false),
            recursive_read_only,
            propagation: match m.mount_propagation.as_deref() {
                Some("HostToContainer") => api::MountPropagation::PropagationHostToContainer as i32,
                Some("Bidirectional") => api::MountPropagation::PropagationBidirectional as i32,
                _ => api::MountPropagation::PropagationPrivate as i32,
            },
            ..Default::default()
        });
    }
    let mounted = |out: &[api::Mount], path: &str| out.iter().any(|m| m.container_path == path);
    if let Some(hosts) = &ctx.etc_hosts
        && !mounted(&out, "/etc/hosts")
    {
        out.push(api::Mount { container_path: "/etc/hosts".into(), host_path: hosts.to_string_lossy().into_owned(), ..Default::default() });
    }
    if let (Some(log), Some(path)) = (&ctx.termination_log, c.termination_message_path.as_deref())
        && !path.is_empty()
        && !mounted(&out, path)
    {
        out.push(api::Mount { container_path: path.into(), host_path: log.to_string_lossy().into_owned(), ..Default::default() });
    }
    Ok((out, extras))
}

/// Builds the CRI config of `c` for its `restart_count`-th instance, with the fields newer than
/// the generated CRI messages.
pub fn container_config(
    pod: &Pod,
    c: &Container,
    restart_count: i32,
    ctx: &ContainerContext,
) -> Result<(api::ContainerConfig, ContainerConfigExtras), ContainerConfigError> {
    let env = container_env(pod, c, ctx.facts, ctx.env_objects, ctx.volume_paths).map_err(|e| ContainerConfigError::new(c, e))?;
    let vars = env.iter().cloned().collect();
    let expand_all = |v: &Option<Vec<String>>| v.iter().flatten().map(|s| expand(s, &vars)).collect();
    let (mounts, extras) = mounts(c, ctx, &vars).map_err(|e| ContainerConfigError::new(c, e))?;
    let config_error = |e: SecurityContextError| ContainerConfigError::new(c, e);
    verify_run_as_non_root(pod, c, &ctx.image_user).map_err(config_error)?;
    let security_context = container_security_context(pod, c, ctx.security, &ctx.image_user).map_err(config_error)?;
    let config = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: c.name.clone(), attempt: restart_count as u32 }),
        image: Some(api::ImageSpec { image: c.image.clone().unwrap_or_default(), ..Default::default() }),
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: env.into_iter().map(|(key, value)| api::KeyValue { key, value }).collect(),
        mounts,
        labels: container_labels(pod, c),
        annotations: container_annotations(pod, c, &container_hash(c), restart_count),
        log_path: format!("{}/{}.log", c.name, restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(linux_resources(pod, c, ctx.memory_capacity)),
            security_context: Some(security_context),
        }),
        ..Default::default()
    };
    Ok((config, extras))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kuberuntime::env::EnvObjects;
    use k8s_openapi::api::core::v1::EnvVar;

    #[test]
    fn recursive_read_only_as_upstream() {
        let mount = |rro: Option<&str>, ro: bool, propagation: Option<&str>| VolumeMount {
            name: "mnt".into(),
            mount_path: "/mnt".into(),
            read_only: Some(ro),
            recursive_read_only: rro.map(Into::into),
            mount_propagation: propagation.map(Into::into),
            ..Default::default()
        };
        assert_eq!(resolve_recursive_read_only(&mount(None, true, None), false), Ok(false));
        assert_eq!(resolve_recursive_read_only(&mount(Some("IfPossible"), true, None), false), Ok(false));
        assert_eq!(resolve_recursive_read_only(&mount(Some("IfPossible"), true, None), true), Ok(true));
        assert_eq!(resolve_recursive_read_only(&mount(Some("Enabled"), true, None), true), Ok(true));
        assert_eq!(
            resolve_recursive_read_only(&mount(Some("Enabled"), true, None), false).unwrap_err().to_string(),
            "volume \"mnt\" requested recursive read-only mode, but it is not supported by the runtime"
        );
        assert_eq!(
            resolve_recursive_read_only(&mount(Some("Enabled"), false, None), true),
            Err(RecursiveReadOnlyError::NotReadOnly("mnt".into()))
        );
        assert!(
            resolve_recursive_read_only(&mount(Some("Enabled"), false, None), true)
                .unwrap_err()
                .to_string()
                .contains("it is not read-only")
        );
        assert!(
            resolve_recursive_read_only(&mount(Some("IfPossible"), true, Some("HostToContainer")), true)
                .unwrap_err()
                .to_string()
                .contains("propagation \"HostToContainer\"")
        );
        assert_eq!(
            resolve_recursive_read_only(&mount(Some("Sometimes"), true, None), true).unwrap_err().to_string(),
            "unknown recursive read-only mode \"Sometimes\""
        );
    }

    #[test]
    fn config_expands_args_and_sets_log_path_and_mounts() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("p".into());
        pod.metadata.uid = Some("u".into());
        let c = Container {
            name: "web".into(),
            image: Some("localhost/knode/busybox:1.35".into()),
            command: Some(vec!["sh".into(), "-c".into()]),
            args: Some(vec!["echo $(GREETING)".into()]),
            env: Some(vec![EnvVar { name: "GREETING".into(), value: Some("hi".into()), ..Default::default() }]),
            termination_message_path: Some("/dev/termination-log".into()),
            volume_mounts: Some(vec![VolumeMount {
                name: "data".into(),
                mount_path: "/data".into(),
                sub_path: Some("x".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let volumes = HashMap::from([("data".to_string(), PathBuf::from("/vol/data"))]);
        let ctx = ContainerContext {
            facts: &PodFacts::default(),
            env_objects: &EnvObjects::default(),
            volume_paths: &volumes,
            image_volumes: &HashMap::new(),
            etc_hosts: Some("/k/pods/u/etc-hosts".into()),
            termination_log: Some("/k/pods/u/containers/web/0".into()),
            memory_capacity: 1 << 30,
            security: &NodeSecurity::new("/k".as_ref(), false),
            image_user: ImageUser::default(),
            sub_paths: &crate::kuberuntime::sub_path::JoinedSubPaths,
            runtime_supports_rro: false,
        };
        let cfg = container_config(&pod, &c, 3, &ctx).unwrap().0;
        assert_eq!(cfg.args, vec!["echo hi"]);
        assert_eq!(cfg.log_path, "web/3.log");
        assert_eq!(cfg.metadata.unwrap().attempt, 3);
        assert_eq!(cfg.annotations["io.kubernetes.container.restartCount"], "3");
        let paths: Vec<_> = cfg.mounts.iter().map(|m| (m.container_path.as_str(), m.host_path.as_str())).collect();
        assert_eq!(
            paths,
            vec![("/data", "/vol/data/x"), ("/etc/hosts", "/k/pods/u/etc-hosts"), ("/dev/termination-log", "/k/pods/u/containers/web/0")]
        );

        let mut bad = c.clone();
        bad.volume_mounts.as_mut().unwrap()[0].name = "missing".into();
        let err = container_config(&pod, &bad, 0, &ctx).unwrap_err();
        assert_eq!(err.to_string(), "container \"web\": volume \"missing\" is not available on this node");
        assert!(matches!(&err.source, ContainerConfigCause::Mount(MountError::VolumeUnavailable(v)) if v == "missing"), "{err}");
        assert_eq!(err.source.to_string(), "volume \"missing\" is not available on this node");

        // A recursive read-only mount reaches the runtime when the handler supports it.
        let mut rro = c.clone();
        let m = &mut rro.volume_mounts.as_mut().unwrap()[0];
        (m.read_only, m.recursive_read_only) = (Some(true), Some("IfPossible".into()));
        assert!(!container_config(&pod, &rro, 0, &ctx).unwrap().0.mounts[0].recursive_read_only);
        let supported = ContainerContext { runtime_supports_rro: true, ..ctx };
        let mounts = container_config(&pod, &rro, 0, &supported).unwrap().0.mounts;
        assert!(mounts[0].readonly && mounts[0].recursive_read_only);

        // An image volume: the runtime mounts the pulled image, read-only, no host path.
        let images = HashMap::from([("tools".to_string(), ("localhost/tools:1".to_string(), "sha256:abc".to_string()))]);
        let mut with_image = c.clone();
        with_image.volume_mounts = Some(vec![VolumeMount { name: "tools".into(), mount_path: "/tools".into(), ..Default::default() }]);
        let imaged = ContainerContext { image_volumes: &images, ..supported };
        let (mut cfg, extras) = container_config(&pod, &with_image, 0, &imaged).unwrap();
        assert!(extras.is_empty());
        let m = cfg.mounts.remove(0);
        assert_eq!((m.container_path.as_str(), m.host_path.as_str(), m.readonly), ("/tools", "", true));
        let spec = m.image.unwrap();
        assert_eq!((spec.image.as_str(), spec.user_specified_image.as_str()), ("sha256:abc", "localhost/tools:1"));
        // Its subPath (or subPathExpr) goes to the runtime with the mount.
        with_image.volume_mounts.as_mut().unwrap()[0].sub_path = Some("bin".into());
        let (cfg, extras) = container_config(&pod, &with_image, 0, &imaged).unwrap();
        assert!(cfg.mounts.iter().any(|m| m.container_path == "/tools" && m.image.is_some()));
        assert_eq!(extras.image_sub_paths, [("/tools".to_string(), "bin".to_string())].into());
        with_image.volume_mounts.as_mut().unwrap()[0].sub_path = Some("../up".into());
        assert!(container_config(&pod, &with_image, 0, &imaged).is_err(), "a sub-path leaving the volume is refused");
    }

    #[test]
    fn security_context_comes_with_the_image_user_and_run_as_non_root_is_a_config_error() {
        use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec};
        let mut pod = Pod::default();
        pod.metadata.name = Some("p".into());
        pod.metadata.uid = Some("u".into());
        pod.spec = Some(PodSpec {
            security_context: Some(PodSecurityContext { run_as_non_root: Some(true), ..Default::default() }),
            ..Default::default()
        });
        let c = Container { name: "web".into(), image: Some("busybox".into()), ..Default::default() };
        let (node, facts, volumes) = (NodeSecurity::new("/k".as_ref(), true), PodFacts::default(), HashMap::new());
        let (objects, no_images) = (EnvObjects::default(), HashMap::new());
        let ctx = |image_user| ContainerContext {
            facts: &facts,
            env_objects: &objects,
            volume_paths: &volumes,
            image_volumes: &no_images,
            etc_hosts: None,
            termination_log: None,
            memory_capacity: 1 << 30,
            security: &node,
            image_user,
            sub_paths: &crate::kuberuntime::sub_path::JoinedSubPaths,
            runtime_supports_rro: false,
        };
        let cfg = container_config(&pod, &c, 0, &ctx(ImageUser { uid: Some(1000), username: String::new() })).unwrap().0;
        let sc = cfg.linux.unwrap().security_context.unwrap();
        assert_eq!(sc.run_as_user, Some(api::Int64Value { value: 1000 }));
        assert_eq!(sc.seccomp.unwrap().profile_type, api::security_profile::ProfileType::RuntimeDefault as i32);
        let err = container_config(&pod, &c, 0, &ctx(ImageUser { uid: Some(0), username: String::new() })).unwrap_err();
        assert_eq!(err.source.to_string(), "container has runAsNonRoot and image will run as root (pod: \"p_default(u)\", container: web)");
        assert!(matches!(err.source, ContainerConfigCause::SecurityContext(_)), "{err}");
    }
}
