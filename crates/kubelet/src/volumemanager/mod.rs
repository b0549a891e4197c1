//! The volume manager (upstream `pkg/kubelet/volumemanager` with the in-tree plugins of
//! `pkg/volume/{emptydir,hostpath,secret,configmap,downwardapi,projected}`): makes every volume
//! of a pod exist on the host before its containers start, and keeps the API-backed ones current.
//!
//! Layout under the kubelet root, as upstream:
//! `pods/<uid>/volumes/kubernetes.io~{empty-dir,secret,configmap,downward-api,projected}/<name>`.
//! Secret, downwardAPI, projected and `medium: Memory` emptyDir volumes live on a tmpfs.
//!
//! [`VolumeManager::mount_pod_volumes`] runs on every pod sync (every `syncFrequency` and on pod
//! events), so ConfigMap/Secret changes and token rotation reach running pods within one sync
//! period: the objects are fetched again ([`VolumeApi`]), the files rebuilt by the pure
//! [`projection`] builders, and rewritten by the [`atomic_writer`] only when they changed.
//! Immutable Secrets and ConfigMaps are fetched once while pods use them ([`immutable`]);
//! `clusterTrustBundle` sources read ClusterTrustBundles through a short cache ([`trust_bundles`]);
//! `podCertificate` sources get keys and certificates through PodCertificateRequests
//! ([`pod_certificates`]).
//! [`VolumeManager::unmount_pod_volumes`] undoes the mounts before the pod directory goes.
//! Without an API server (standalone) secret, configMap, token, trust bundle and pod certificate
//! sources fail clearly.

pub mod atomic_writer;
pub mod downward_api;
pub mod immutable;
pub mod mount;
pub mod ownership;
pub mod pod_certificates;
pub mod projection;
pub mod token;
pub mod trust_bundles;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Volume};
use kubelet_types::volume_api::VolumeApi;

use crate::kuberuntime::pod_dirs::check_host_path;
use atomic_writer::{AtomicWriter, Payload};
use kubelet_types::clock::Clock;
use mount::Mounter;
use projection::Fetched;

use crate::kuberuntime::resources::{NodeAllocatable, with_default_limits};
use token::TokenManager;
use trust_bundles::TrustBundles;

/// Why secret, configMap and token sources fail on a standalone kubelet.
pub const NO_API_SERVER: &str = "no API server to fetch it from (the kubelet runs standalone)";

/// The plugin directory names upstream uses under `pods/<uid>/volumes/`.
pub mod plugin {
    /// `emptyDir` volumes.
    pub const EMPTY_DIR: &str = "kubernetes.io~empty-dir";
    /// `secret` volumes.
    pub const SECRET: &str = "kubernetes.io~secret";
    /// `configMap` volumes.
    pub const CONFIG_MAP: &str = "kubernetes.io~configmap";
    /// `downwardAPI` volumes.
    pub const DOWNWARD_API: &str = "kubernetes.io~downward-api";
    /// `projected` volumes.
    pub const PROJECTED: &str = "kubernetes.io~projected";
    /// Image volumes: never created on the host (the runtime mounts the image).
    pub const IMAGE: &str = "kubernetes.io~image";
}

/// A volume that could not be set up or torn down; the message follows upstream's events.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A volume of the pod could not be set up, so its containers cannot start.
    #[error("MountVolume.SetUp failed for volume {volume:?} : {reason}")]
    SetUp {
        /// The volume's name in the pod spec (`spec.volumes[].name`).
        volume: String,
        /// Why it failed.
        reason: SetUpError,
    },
    /// A volume or sub path mount could not be unmounted, or its directory removed.
    #[error("UnmountVolume.TearDown failed for {path}: {source}")]
    TearDown {
        /// The mount point or volume directory.
        path: PathBuf,
        /// The unmount or removal error.
        source: std::io::Error,
    },
}

/// Why one volume could not be set up (the `reason` of [`VolumeError::SetUp`]).
#[derive(Debug, thiserror::Error)]
pub enum SetUpError {
    /// The volume's directory could not be made or read.
    #[error("{path}: {source}")]
    Dir {
        /// The volume directory under `pods/<uid>/volumes/`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The tmpfs of a secret, downwardAPI, projected or `medium: Memory` emptyDir volume could not
    /// be mounted.
    #[error("mounting tmpfs on {path}: {source}")]
    Tmpfs {
        /// The volume directory the tmpfs goes on.
        path: PathBuf,
        /// The mount error.
        source: std::io::Error,
    },
    /// The volume's files could not be written.
    #[error(transparent)]
    Write(#[from] atomic_writer::WriterError),
    /// An emptyDir `medium` other than `""` (node disk) or `Memory`, e.g. `HugePages`; holds it.
    #[error("emptyDir medium {0:?} is not supported (\"\" and \"Memory\" are)")]
    Medium(String),
    /// An emptyDir `sizeLimit` that is not a valid quantity.
    #[error("emptyDir sizeLimit {value:?}: {reason}")]
    SizeLimit {
        /// The quantity as written in the pod spec.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A hostPath that is not of its declared `type`, or could not be made.
    #[error(transparent)]
    HostPath(#[from] crate::kuberuntime::pod_dirs::HostPathError),
    /// A Secret or ConfigMap the API server could not give.
    #[error("couldn't get {kind} {namespace}/{name}: {source}")]
    Fetch {
        /// `secret` or `configmap`.
        kind: &'static str,
        /// The pod's namespace, where the object is looked up.
        namespace: String,
        /// The object's name.
        name: String,
        /// The API server's error.
        source: Box<kubelet_types::api_error::ApiError>,
    },
    /// A Secret, ConfigMap or token asked of a standalone kubelet.
    #[error("{what}: {}", NO_API_SERVER)]
    Standalone {
        /// What was asked for, e.g. `secret "db-password"` or `failed to fetch token`.
        what: String,
    },
    /// Items, keys or modes the volume's sources name that its objects cannot give.
    #[error(transparent)]
    Projection(#[from] projection::ProjectionError),
    /// A `serviceAccountToken` source's token could not be requested (TokenRequest).
    #[error(transparent)]
    Token(#[from] token::TokenError),
    /// A `clusterTrustBundle` source that could not be resolved: a bad label selector, a
    /// ClusterTrustBundle the API server could not give, or (without `optional`) none matching.
    #[error(transparent)]
    TrustBundle(#[from] trust_bundles::TrustBundleError),
    /// Every failing `podCertificate` source's error (without repeats), shown joined by `; `.
    #[error("{}", join_errors(.0))]
    PodCertificate(Vec<pod_certificates::PodCertificateError>),
    /// A volume source other than emptyDir, hostPath, secret, configMap, downwardAPI, projected
    /// and image (e.g. a CSI or persistentVolumeClaim volume).
    #[error("volume type not supported by this kubelet (emptyDir, hostPath, secret, configMap, downwardAPI, projected and image are)")]
    Unsupported,
}

/// `errors`' messages joined by `; `.
fn join_errors(errors: &[impl std::fmt::Display]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Sets up, refreshes and tears down pod volumes.
pub struct VolumeManager {
    root_dir: PathBuf,
    api: Option<Arc<dyn VolumeApi>>,
    mounter: Arc<dyn Mounter>,
    clock: Arc<dyn Clock>,
    tokens: TokenManager,
    trust_bundles: TrustBundles,
    pod_certificates: pod_certificates::PodCertificates,
    /// What unset limits read as in downwardAPI `resourceFieldRef`s.
    allocatable: NodeAllocatable,
    /// Immutable Secrets and ConfigMaps, not fetched again while pods use them.
    immutable_secrets: immutable::ImmutableObjects<Secret>,
    immutable_config_maps: immutable::ImmutableObjects<ConfigMap>,
}

fn pod_ns(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

fn pod_uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

impl VolumeManager {
    /// The API the volumes read from; `None` for a standalone kubelet.
    pub fn api(&self) -> Option<&Arc<dyn VolumeApi>> {
        self.api.as_ref()
    }

    /// `api` is `None` for a standalone kubelet.
    pub fn new(root_dir: impl Into<PathBuf>, api: Option<Arc<dyn VolumeApi>>, mounter: Arc<dyn Mounter>, clock: Arc<dyn Clock>) -> Self {
        Self {
            root_dir: root_dir.into(),
            api,
            mounter,
            clock,
            tokens: TokenManager::default(),
            trust_bundles: Default::default(),
            pod_certificates: Default::default(),
            allocatable: NodeAllocatable::new(),
            immutable_secrets: Default::default(),
            immutable_config_maps: Default::default(),
        }
    }

    /// The node's allocatable resources, for downwardAPI `resourceFieldRef`s of unset limits.
    pub fn with_node_allocatable(mut self, allocatable: NodeAllocatable) -> Self {
        self.allocatable = allocatable;
        self
    }

    /// `pods/<uid>/volumes/<plugin>/<name>`.
    pub fn volume_dir(&self, uid: &str, plugin: &str, name: &str) -> PathBuf {
        self.root_dir.join("pods").join(uid).join("volumes").join(plugin).join(name)
    }

    /// Sets up (or refreshes) every volume of `pod`; returns volume name → host path.
    pub async fn mount_pod_volumes(&self, pod: &Pod) -> Result<HashMap<String, PathBuf>, VolumeError> {
        let mut out = HashMap::new();
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let path = self.set_up(pod, v).await.map_err(|reason| VolumeError::SetUp { volume: v.name.clone(), reason })?;
            out.insert(v.name.clone(), path);
        }
        Ok(out)
    }

    async fn set_up(&self, pod: &Pod, v: &Volume) -> Result<PathBuf, SetUpError> {
        let uid = pod_uid(pod);
        let now = self.clock.now();
        let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
        let fs_group = pod_sc.and_then(|sc| sc.fs_group).and_then(|g| u32::try_from(g).ok());
        // These volume kinds always get the whole walk: upstream gives them no change policy
        // (`fsGroupChangePolicy` is for persistent volumes). A failure is logged, not fatal, as
        // upstream's `changeFilePermission`.
        let own = |dir: &Path, read_only: bool| {
            if let Some(gid) = fs_group
                && let Err(e) = ownership::set_volume_ownership(dir, gid, read_only, None)
            {
                tracing::warn!(pod = %pod_uid(pod), volume = %v.name, "setting volume ownership for {}: {e}", dir.display());
            }
        };
        let write = |plugin: &str, tmpfs: bool, payload: Payload| -> Result<PathBuf, SetUpError> {
            let dir = self.volume_dir(uid, plugin, &v.name);
            self.ensure_dir(&dir, tmpfs.then_some(None))?;
            let changed = AtomicWriter::new(&dir).write(&payload, now)?;
            if changed {
                // These volumes are read-only to the pod: group read, as upstream.
                own(&dir, true);
            }
            Ok(dir)
        };
        if let Some(e) = &v.empty_dir {
            let dir = self.volume_dir(uid, plugin::EMPTY_DIR, &v.name);
            let tmpfs = match e.medium.as_deref().unwrap_or_default() {
                "" => None,
                "Memory" => {
                    let allocatable = self.allocatable.get("memory").and_then(|q| size_limit(Some(q)).ok().flatten());
                    let pod_limit =
                        crate::cm::pod_cgroups::pod_cgroup_resources(pod, None).memory_limit.and_then(|b| u64::try_from(b).ok());
                    Some(memory_size(allocatable, pod_limit, size_limit(e.size_limit.as_ref())?))
                }
                other => return Err(SetUpError::Medium(other.into())),
            };
            if self.ensure_dir(&dir, tmpfs)? {
                own(&dir, false);
            }
            return Ok(dir);
        }
        if v.image.is_some() {
            // The runtime mounts the image itself (CRI `Mount.image`); the runtime manager pulls
            // it with the container. Nothing on the host.
            return Ok(self.volume_dir(uid, plugin::IMAGE, &v.name));
        }
        if let Some(h) = &v.host_path {
            let p = PathBuf::from(&h.path);
            check_host_path(&p, h.type_.as_deref().unwrap_or("")).map_err(SetUpError::HostPath)?;
            return Ok(p);
        }
        if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let optional = s.optional.unwrap_or(false);
            let obj = self.fetch_secret(pod_ns(pod), &name, optional, uid).await?;
            let payload = projection::secret_payload(&name, obj.as_ref(), s.items.as_deref(), s.default_mode, optional)
                .map_err(SetUpError::Projection)?;
            return write(plugin::SECRET, true, payload);
        }
        if let Some(c) = &v.config_map {
            let optional = c.optional.unwrap_or(false);
            let obj = self.fetch_config_map(pod_ns(pod), &c.name, optional, uid).await?;
            let payload = projection::config_map_payload(&c.name, obj.as_ref(), c.items.as_deref(), c.default_mode, optional)
                .map_err(SetUpError::Projection)?;
            return write(plugin::CONFIG_MAP, false, payload);
        }
        if let Some(d) = &v.downward_api {
            let pod = with_default_limits(pod, &self.allocatable);
            let payload = projection::downward_api_payload(&pod, d.items.as_deref().unwrap_or_default(), d.default_mode)
                .map_err(SetUpError::Projection)?;
            return write(plugin::DOWNWARD_API, true, payload);
        }
        if let Some(p) = &v.projected {
            let fetched = self.fetch_projected(pod, &v.name, p).await?;
            let pod = with_default_limits(pod, &self.allocatable);
            let payload = projection::projected_payload(&pod, p, &fetched).map_err(SetUpError::Projection)?;
            return write(plugin::PROJECTED, true, payload);
        }
        Err(SetUpError::Unsupported)
    }

    /// Fetches what a projected volume's sources refer to.
    async fn fetch_projected(
        &self,
        pod: &Pod,
        volume: &str,
        p: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    ) -> Result<Fetched, SetUpError> {
        let ns = pod_ns(pod);
        let mut fetched = Fetched::default();
        let mut certificate_errors = Vec::new();
        for (i, source) in p.sources.iter().flatten().enumerate() {
            if let Some(s) = &source.secret {
                let obj = self.fetch_secret(ns, &s.name, s.optional.unwrap_or(false), pod_uid(pod)).await?;
                fetched.secrets.insert(s.name.clone(), obj);
            } else if let Some(c) = &source.config_map {
                let obj = self.fetch_config_map(ns, &c.name, c.optional.unwrap_or(false), pod_uid(pod)).await?;
                fetched.config_maps.insert(c.name.clone(), obj);
            } else if let Some(t) = &source.service_account_token {
                let api = self.api.as_deref().ok_or_else(|| SetUpError::Standalone { what: "failed to fetch token".into() })?;
                let sa = pod.spec.as_ref().and_then(|s| s.service_account_name.as_deref()).filter(|s| !s.is_empty()).unwrap_or("default");
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                let want = token::TokenFor {
                    namespace: ns,
                    service_account: sa,
                    service_account_uid: None,
                    audience: t.audience.as_deref(),
                    expiration_seconds: t.expiration_seconds,
                    pod_name: name,
                    pod_uid: pod_uid(pod),
                };
                let token = self.tokens.get(api, want, self.clock.now()).await.map_err(SetUpError::Token)?;
                fetched.tokens.insert(i, token);
            } else if let Some(c) = &source.cluster_trust_bundle {
                let anchors = self.trust_bundles.anchors(self.api.as_deref(), c, self.clock.now()).await?;
                fetched.trust_anchors.insert(i, anchors);
            } else if let Some(c) = &source.pod_certificate {
                // Every podCertificate source advances (files its request) before the volume
                // fails, as upstream's per-source queue: not one signer round trip after another.
                match self.pod_certificates.bundle(self.api.as_deref(), pod, volume, i, c, self.clock.now()).await {
                    Ok(bundle) => {
                        fetched.pod_certificates.insert(i, bundle);
                    }
                    Err(e) => certificate_errors.push(e),
                }
            }
        }
        if !certificate_errors.is_empty() {
            certificate_errors.dedup();
            return Err(SetUpError::PodCertificate(certificate_errors));
        }
        Ok(fetched)
    }

    /// Secret `ns/name` for pod `uid`: from the API server, or kept if it is immutable.
    async fn fetch_secret(&self, ns: &str, name: &str, optional: bool, uid: &str) -> Result<Option<Secret>, SetUpError> {
        match &self.api {
            Some(api) => {
                self.immutable_secrets.get_or_fetch(ns, name, uid, |s| s.immutable == Some(true), api.get_secret(ns, name)).await.map_err(
                    |source| SetUpError::Fetch { kind: "secret", namespace: ns.into(), name: name.into(), source: Box::new(source) },
                )
            }
            None if optional => Ok(None),
            None => Err(SetUpError::Standalone { what: format!("secret {name:?}") }),
        }
    }

    /// ConfigMap `ns/name` for pod `uid`: from the API server, or kept if it is immutable.
    async fn fetch_config_map(&self, ns: &str, name: &str, optional: bool, uid: &str) -> Result<Option<ConfigMap>, SetUpError> {
        match &self.api {
            Some(api) => self
                .immutable_config_maps
                .get_or_fetch(ns, name, uid, |c| c.immutable == Some(true), api.get_config_map(ns, name))
                .await
                .map_err(|source| SetUpError::Fetch {
                    kind: "configmap",
                    namespace: ns.into(),
                    name: name.into(),
                    source: Box::new(source),
                }),
            None if optional => Ok(None),
            None => Err(SetUpError::Standalone { what: format!("configmap {name:?}") }),
        }
    }

    /// Creates the volume directory (0777, as upstream's emptyDir, which secret, configMap,
    /// downwardAPI and projected volumes wrap: a container running as any user may use it) and,
    /// for `Some(size)`, a tmpfs on it unless one is there already (the kubelet may have
    /// restarted); the tmpfs root is 1777, tmpfs's default, as upstream leaves it. Returns
    /// whether it was set up now (an existing one keeps its mode, which may carry the fsGroup
    /// set-group-ID bit).
    fn ensure_dir(&self, dir: &Path, tmpfs: Option<Option<u64>>) -> Result<bool, SetUpError> {
        let mut fresh = !dir.exists();
        let dir_error = |source| SetUpError::Dir { path: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(dir_error)?;
        if fresh {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).map_err(dir_error)?;
        }
        if let Some(size) = tmpfs {
            let mounted = self.mounter.is_mount_point(dir).map_err(dir_error)?;
            if !mounted {
                self.mounter.mount_tmpfs(dir, size).map_err(|source| SetUpError::Tmpfs { path: dir.to_path_buf(), source })?;
                fresh = true;
            }
        }
        Ok(fresh)
    }

    /// Unmounts every mounted volume and sub path of pod `uid` and forgets its tokens, so its
    /// directory can be removed. Fails, naming the path, if a mount stays.
    pub fn unmount_pod_volumes(&self, uid: &str) -> Result<(), VolumeError> {
        self.tokens.forget_pod(uid);
        self.pod_certificates.forget_pod(uid);
        self.immutable_secrets.forget_pod(uid);
        self.immutable_config_maps.forget_pod(uid);
        let pod_dir = self.root_dir.join("pods").join(uid);
        // The sub path bind mounts first: they pin objects inside the volumes.
        for path in crate::kuberuntime::sub_path::subpath_mounts(&pod_dir) {
            crate::kuberuntime::sub_path::unmount_all(&path, rustix::mount::UnmountFlags::empty())
                .map_err(|source| VolumeError::TearDown { path, source })?;
        }
        for dir in volume_dirs(&pod_dir) {
            if self.mounter.is_mount_point(&dir).unwrap_or(false) {
                self.mounter.unmount(&dir).map_err(|source| VolumeError::TearDown { path: dir.clone(), source })?;
            }
        }
        Ok(())
    }
}

impl VolumeManager {
    /// Tears down a finished pod's volumes (upstream unmounts the volumes of terminated pods):
    /// unmounts them and removes their directories, so an emptyDir's data (a `Memory` one's
    /// RAM) goes while the pod object and its stopped containers stay.
    pub fn tear_down_pod_volumes(&self, uid: &str) -> Result<(), VolumeError> {
        self.unmount_pod_volumes(uid)?;
        for dir in volume_dirs(&self.root_dir.join("pods").join(uid)) {
            std::fs::remove_dir_all(&dir).map_err(|source| VolumeError::TearDown { path: dir.clone(), source })?;
        }
        Ok(())
    }
}

/// Every `volumes/<plugin>/<name>` directory of a pod directory.
pub fn volume_dirs(pod_dir: &Path) -> Vec<PathBuf> {
    let list = |d: &Path| -> Vec<PathBuf> { std::fs::read_dir(d).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default() };
    list(&pod_dir.join("volumes")).iter().filter(|p| p.is_dir()).flat_map(|p| list(p)).collect()
}

/// A `sizeLimit` quantity in bytes; `None` when unset or not positive (upstream ignores those).
fn size_limit(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Result<Option<u64>, SetUpError> {
    let Some(q) = q else { return Ok(None) };
    let parsed =
        kubelet_config::quantity::parse(q.0.trim()).map_err(|e| SetUpError::SizeLimit { value: q.0.clone(), reason: e.to_string() })?;
    Ok(u64::try_from(parsed.value()).ok().filter(|b| *b > 0))
}

/// The size of a `medium: Memory` emptyDir's tmpfs (upstream `calculateEmptyDirMemorySize`):
/// the node's allocatable memory, or the pod's memory limit if smaller, or the volume's
/// `sizeLimit` if smaller still; `None` (the kernel's default, half the RAM) only when none is
/// known.
fn memory_size(allocatable: Option<u64>, pod_limit: Option<u64>, size_limit: Option<u64>) -> Option<u64> {
    let narrower = |current: Option<u64>, candidate: Option<u64>| match (current, candidate.filter(|c| *c > 0)) {
        (Some(cur), Some(c)) if c <= cur => Some(c),
        (None, Some(c)) => Some(c),
        (cur, _) => cur,
    };
    narrower(narrower(allocatable, pod_limit), size_limit)
}

#[cfg(test)]
mod tests;
