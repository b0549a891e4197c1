//! Which files, with which bytes and modes, a `secret`, `configMap`, `downwardAPI` or
//! `projected` volume holds, given the objects already fetched (upstream `makePayload` of
//! `pkg/volume/{secret,configmap,downwardapi,projected}`).
//!
//! Pure: no API calls, no files. Errors are upstream's `MountVolume.SetUp` reasons
//! (`secret "y" not found`, `configmap references non-existent config key: k`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, ProjectedVolumeSource, Secret, VolumeProjection};

use super::atomic_writer::{FileProjection, Payload};
use super::downward_api::{self, DownwardApiError};

/// Upstream's default mode of files in secret, configMap, downwardAPI and projected volumes.
pub const DEFAULT_MODE: i32 = 0o644;

/// The objects a projected volume's sources refer to, fetched beforehand. A name absent from a
/// map, or mapped to `None`, means the object does not exist.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    /// Secrets of the pod's namespace by name, for the `secret` sources.
    pub secrets: BTreeMap<String, Option<Secret>>,
    /// ConfigMaps of the pod's namespace by name, for the `configMap` sources.
    pub config_maps: BTreeMap<String, Option<ConfigMap>>,
    /// Service-account tokens by the source's index in `sources`.
    pub tokens: BTreeMap<usize, String>,
    /// `clusterTrustBundle` file contents (PEM) by the source's index in `sources`.
    pub trust_anchors: BTreeMap<usize, Vec<u8>>,
    /// `podCertificate` private key and certificate chain (PEM each) by the source's index.
    pub pod_certificates: BTreeMap<usize, super::pod_certificates::KeyAndChain>,
}

/// Why a volume's files cannot be made from its sources and their objects (upstream's
/// `MountVolume.SetUp` reasons).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    /// The volume's (or projection's) `defaultMode` is not a file mode.
    #[error("defaultMode {0:#o} is not a valid file mode (0 to 0777)")]
    DefaultMode(i32),
    /// An item's `mode` is not a file mode.
    #[error("items[{item}].mode {mode:#o} is not a valid file mode (0 to 0777)")]
    ItemMode {
        /// The item's key (secret, configMap) or path (downwardAPI).
        item: String,
        /// The mode as given.
        mode: i32,
    },
    /// A non-optional secret volume or projection names a secret that does not exist (its name).
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    /// A non-optional configMap volume or projection names a ConfigMap that does not exist (its
    /// name).
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    /// A non-optional secret item names a key the secret lacks (the key).
    #[error("secret references non-existent secret key: {0}")]
    SecretKeyNotFound(String),
    /// A non-optional configMap item names a key the ConfigMap lacks (the key).
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKeyNotFound(String),
    /// A downwardAPI item without a value.
    #[error(transparent)]
    DownwardApi(#[from] DownwardApiError),
    /// A `serviceAccountToken` source whose token was not fetched (its path).
    #[error("no service account token for path {0:?}")]
    NoToken(String),
    /// A `clusterTrustBundle` source whose anchors were not fetched (its path).
    #[error("no trust anchors for path {0:?}")]
    NoTrustAnchors(String),
    /// A `podCertificate` source whose key and chain were not fetched (its signer's name).
    #[error("no pod certificate for signer {0:?}")]
    NoPodCertificate(String),
}

/// `mode`, or `default` when unset, checked to be a file mode; `item` names the item whose mode
/// it is (`None` for a `defaultMode`).
fn mode_of(item: Option<&str>, mode: Option<i32>, default: i32) -> Result<u32, ProjectionError> {
    let m = mode.unwrap_or(default);
    if !(0..=0o777).contains(&m) {
        return Err(match item {
            None => ProjectionError::DefaultMode(m),
            Some(item) => ProjectionError::ItemMode { item: item.to_string(), mode: m },
        });
    }
    Ok(m as u32)
}

/// Files from a key → bytes map, all keys or the listed `items` (upstream's shared logic of the
/// secret and configMap plugins). `kind` names the object in errors (`secret`, `configmap`).
fn keyed_payload(
    kind: &str,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, ProjectionError> {
    let default = mode_of(None, Some(default_mode), DEFAULT_MODE)?;
    let mut out = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data {
                out.insert(k.clone(), FileProjection { data: v.clone(), mode: default, uid: None });
            }
        }
        Some(items) => {
            for item in items {
                let Some(v) = data.get(&item.key) else {
                    if optional {
                        continue;
                    }
                    return Err(match kind {
                        "secret" => ProjectionError::SecretKeyNotFound(item.key.clone()),
                        _ => ProjectionError::ConfigMapKeyNotFound(item.key.clone()),
                    });
                };
                let mode = mode_of(Some(&item.key), item.mode, default as i32)?;
                out.insert(item.path.clone(), FileProjection { data: v.clone(), mode, uid: None });
            }
        }
    }
    Ok(out)
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = s.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
    for (k, v) in s.string_data.iter().flatten() {
        data.entry(k.clone()).or_insert_with(|| v.as_bytes().to_vec());
    }
    data
}

fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = cm.data.iter().flatten().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        data.entry(k.clone()).or_insert_with(|| v.0.clone());
    }
    data
}

/// A secret volume (or projection): `secret` is `None` when it does not exist.
pub fn secret_payload(
    name: &str,
    secret: Option<&Secret>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<Payload, ProjectionError> {
    match secret {
        Some(s) => keyed_payload("secret", &secret_data(s), items, default_mode.unwrap_or(DEFAULT_MODE), optional),
        None if optional => Ok(Payload::new()),
        None => Err(ProjectionError::SecretNotFound(name.to_string())),
    }
}

/// A configMap volume (or projection): `cm` is `None` when it does not exist.
pub fn config_map_payload(
    name: &str,
    cm: Option<&ConfigMap>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<Payload, ProjectionError> {
    match cm {
        Some(cm) => keyed_payload("configmap", &config_map_data(cm), items, default_mode.unwrap_or(DEFAULT_MODE), optional),
        None if optional => Ok(Payload::new()),
        None => Err(ProjectionError::ConfigMapNotFound(name.to_string())),
    }
}

/// A downwardAPI volume (or projection) of `pod`.
pub fn downward_api_payload(pod: &Pod, items: &[DownwardAPIVolumeFile], default_mode: Option<i32>) -> Result<Payload, ProjectionError> {
    let default = mode_of(None, default_mode, DEFAULT_MODE)?;
    let mut out = Payload::new();
    for item in items {
        let value = downward_api::file_value(pod, item)?;
        let mode = mode_of(Some(&item.path), item.mode, default as i32)?;
        out.insert(item.path.clone(), FileProjection { data: value.into_bytes(), mode, uid: None });
    }
    Ok(out)
}

/// A projected volume: the union of its sources' files, later sources winning on a path clash
/// (upstream logs a conflict and keeps the last).
pub fn projected_payload(pod: &Pod, src: &ProjectedVolumeSource, fetched: &Fetched) -> Result<Payload, ProjectionError> {
    let default = src.default_mode.unwrap_or(DEFAULT_MODE);
    mode_of(None, Some(default), DEFAULT_MODE)?;
    let owner = CredentialOwner::of(pod);
    let mut out = Payload::new();
    for (i, source) in src.sources.iter().flatten().enumerate() {
        let part = source_payload(pod, i, source, default, owner, fetched)?;
        out.extend(part);
    }
    Ok(out)
}

/// Who owns the credential files of a projected volume (service-account tokens, trust anchors),
/// as upstream: the containers' common `runAsUser` (`FsUserFrom`); and with it or an `fsGroup`,
/// mode 0600 whatever `defaultMode` says (the fsGroup walk then adds group read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CredentialOwner {
    /// The UID all of the pod's containers run as, if they share one; owns the credential files.
    pub fs_user: Option<u32>,
    /// The pod's `securityContext.fsGroup`, when set and a valid GID.
    pub fs_group: Option<u32>,
}

impl CredentialOwner {
    /// The credential owner of `pod`, from its containers' `runAsUser` and its `fsGroup`.
    pub fn of(pod: &Pod) -> Self {
        let fs_group =
            pod.spec.as_ref().and_then(|s| s.security_context.as_ref()).and_then(|sc| sc.fs_group).and_then(|g| u32::try_from(g).ok());
        Self { fs_user: super::ownership::fs_user(pod), fs_group }
    }

    fn file(self, data: Vec<u8>, default: i32) -> Result<FileProjection, ProjectionError> {
        let mode = match self.fs_user.is_some() || self.fs_group.is_some() {
            true => 0o600,
            false => mode_of(None, Some(default), DEFAULT_MODE)?,
        };
        Ok(FileProjection { data, mode, uid: self.fs_user })
    }
}

fn source_payload(
    pod: &Pod,
    index: usize,
    source: &VolumeProjection,
    default: i32,
    owner: CredentialOwner,
    fetched: &Fetched,
) -> Result<Payload, ProjectionError> {
    if let Some(s) = &source.secret {
        let optional = s.optional.unwrap_or(false);
        let obj = fetched.secrets.get(&s.name).and_then(Option::as_ref);
        return match obj {
            None if !optional => Err(ProjectionError::SecretNotFound(s.name.clone())),
            _ => secret_payload(&s.name, obj, s.items.as_deref(), Some(default), optional),
        };
    }
    if let Some(c) = &source.config_map {
        let optional = c.optional.unwrap_or(false);
        let obj = fetched.config_maps.get(&c.name).and_then(Option::as_ref);
        return config_map_payload(&c.name, obj, c.items.as_deref(), Some(default), optional);
    }
    if let Some(d) = &source.downward_api {
        return downward_api_payload(pod, d.items.as_deref().unwrap_or_default(), Some(default));
    }
    if let Some(t) = &source.service_account_token {
        let token = fetched.tokens.get(&index).ok_or_else(|| ProjectionError::NoToken(t.path.clone()))?;
        return Ok(Payload::from([(t.path.clone(), owner.file(token.clone().into_bytes(), default)?)]));
    }
    if let Some(c) = &source.cluster_trust_bundle {
        let anchors = fetched.trust_anchors.get(&index).ok_or_else(|| ProjectionError::NoTrustAnchors(c.path.clone()))?;
        return Ok(Payload::from([(c.path.clone(), owner.file(anchors.clone(), default)?)]));
    }
    if let Some(c) = &source.pod_certificate {
        let (key, chain) = fetched.pod_certificates.get(&index).ok_or_else(|| ProjectionError::NoPodCertificate(c.signer_name.clone()))?;
        let mut out = Payload::new();
        let paths = [
            (&c.credential_bundle_path, [key.as_slice(), chain].concat()),
            (&c.key_path, key.clone()),
            (&c.certificate_chain_path, chain.clone()),
        ];
        for (path, data) in paths {
            if let Some(path) = path.as_ref().filter(|p| !p.is_empty()) {
                out.insert(path.clone(), owner.file(data, default)?);
            }
        }
        return Ok(out);
    }
    Ok(Payload::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ConfigMapProjection, DownwardAPIProjection, ObjectFieldSelector, SecretProjection, ServiceAccountTokenProjection,
    };

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret { data: Some(pairs.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect()), ..Default::default() }
    }

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath { key: key.into(), path: path.into(), mode, ..Default::default() }
    }

    fn text(p: &Payload, path: &str) -> (String, u32) {
        let f = &p[path];
        (String::from_utf8(f.data.clone()).unwrap(), f.mode)
    }

    #[test]
    fn secret_keys_items_and_modes() {
        let s = secret(&[("user", "admin"), ("pass", "pw")]);
        let all = secret_payload("creds", Some(&s), None, None, false).unwrap();
        assert_eq!(text(&all, "user"), ("admin".into(), 0o644));
        assert_eq!(all.len(), 2);
        let items = [item("pass", "dir/p.txt", Some(0o400)), item("user", "u", None)];
        let some = secret_payload("creds", Some(&s), Some(&items), Some(0o440), false).unwrap();
        assert_eq!(text(&some, "dir/p.txt"), ("pw".into(), 0o400));
        assert_eq!(text(&some, "u"), ("admin".into(), 0o440));

        assert_eq!(secret_payload("creds", None, None, None, false).unwrap_err().to_string(), "secret \"creds\" not found");
        assert_eq!(secret_payload("creds", None, None, None, false).unwrap_err(), ProjectionError::SecretNotFound("creds".into()));
        assert!(secret_payload("creds", None, None, None, true).unwrap().is_empty());
        let missing = [item("nope", "x", None)];
        assert_eq!(
            secret_payload("creds", Some(&s), Some(&missing), None, false).unwrap_err().to_string(),
            "secret references non-existent secret key: nope"
        );
        assert!(secret_payload("creds", Some(&s), Some(&missing), None, true).unwrap().is_empty());
        let err = secret_payload("creds", Some(&s), None, Some(0o1777), false).unwrap_err().to_string();
        assert!(err.contains("defaultMode") && err.contains("0o1777"), "{err}");
        assert_eq!(err, "defaultMode 0o1777 is not a valid file mode (0 to 0777)");
        let err = secret_payload("creds", Some(&s), Some(&[item("user", "u", Some(-1))]), None, false).unwrap_err();
        assert_eq!(err, ProjectionError::ItemMode { item: "user".into(), mode: -1 });
        let err = err.to_string();
        assert!(err.contains("items[user].mode"), "{err}");
        assert_eq!(err, "items[user].mode 0o37777777777 is not a valid file mode (0 to 0777)");
    }

    #[test]
    fn config_map_data_and_binary_data() {
        let cm = ConfigMap {
            data: Some(BTreeMap::from([("a.conf".to_string(), "x=1".to_string())])),
            binary_data: Some(BTreeMap::from([("blob".to_string(), ByteString(vec![0, 1, 2]))])),
            ..Default::default()
        };
        let p = config_map_payload("cfg", Some(&cm), None, Some(0o600), false).unwrap();
        assert_eq!(text(&p, "a.conf"), ("x=1".into(), 0o600));
        assert_eq!(p["blob"].data, vec![0, 1, 2]);
        assert_eq!(config_map_payload("cfg", None, None, None, false).unwrap_err().to_string(), "configmap \"cfg\" not found");
        let err = config_map_payload("cfg", Some(&cm), Some(&[item("zz", "z", None)]), None, false).unwrap_err();
        assert_eq!(err, ProjectionError::ConfigMapKeyNotFound("zz".into()));
        assert_eq!(err.to_string(), "configmap references non-existent config key: zz");
    }

    #[test]
    fn projected_service_account_volume() {
        let mut pod = Pod::default();
        pod.metadata.namespace = Some("prod".into());
        let src = ProjectedVolumeSource {
            default_mode: Some(0o420),
            default_user: None,
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        path: "token".into(),
                        expiration_seconds: Some(3607),
                        audience: None,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".into(),
                        items: Some(vec![item("ca.crt", "ca.crt", None)]),
                        optional: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".into(),
                            field_ref: Some(ObjectFieldSelector {
                                field_path: "metadata.namespace".into(),
                                api_version: Some("v1".into()),
                            }),
                            ..Default::default()
                        }]),
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    secret: Some(SecretProjection { name: "extra".into(), optional: Some(true), items: None }),
                    ..Default::default()
                },
            ]),
        };
        let mut fetched = Fetched::default();
        fetched.tokens.insert(0, "jwt".into());
        let ca = ConfigMap { data: Some(BTreeMap::from([("ca.crt".to_string(), "PEM".to_string())])), ..Default::default() };
        fetched.config_maps.insert("kube-root-ca.crt".into(), Some(ca));
        let p = projected_payload(&pod, &src, &fetched).unwrap();
        assert_eq!(text(&p, "token"), ("jwt".into(), 0o420));
        assert_eq!(text(&p, "ca.crt"), ("PEM".into(), 0o420));
        assert_eq!(text(&p, "namespace"), ("prod".into(), 0o420));
        assert_eq!(p.len(), 3);

        fetched.config_maps.clear();
        assert_eq!(projected_payload(&pod, &src, &fetched).unwrap_err().to_string(), "configmap \"kube-root-ca.crt\" not found");
        fetched.tokens.clear();
        assert_eq!(projected_payload(&pod, &src, &fetched).unwrap_err(), ProjectionError::NoToken("token".into()));
    }

    #[test]
    fn credential_files_belong_to_the_pods_user_with_mode_0600() {
        use k8s_openapi::api::core::v1::{ClusterTrustBundleProjection, Container, PodSecurityContext, PodSpec};
        let src = ProjectedVolumeSource {
            default_mode: Some(0o644),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection { path: "token".into(), ..Default::default() }),
                    ..Default::default()
                },
                VolumeProjection {
                    cluster_trust_bundle: Some(ClusterTrustBundleProjection { path: "ca.pem".into(), ..Default::default() }),
                    ..Default::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection { name: "cm".into(), items: None, optional: Some(true) }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let mut fetched = Fetched::default();
        fetched.tokens.insert(0, "jwt".into());
        fetched.trust_anchors.insert(1, b"PEM".to_vec());
        fetched.config_maps.insert(
            "cm".into(),
            Some(ConfigMap { data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])), ..Default::default() }),
        );
        let pod = |sc: PodSecurityContext| Pod {
            spec: Some(PodSpec { security_context: Some(sc), containers: vec![Container::default()], ..Default::default() }),
            ..Default::default()
        };
        let p = projected_payload(&pod(PodSecurityContext::default()), &src, &fetched).unwrap();
        assert_eq!((p["token"].mode, p["token"].uid, p["ca.pem"].mode), (0o644, None, 0o644));
        let p = projected_payload(&pod(PodSecurityContext { fs_group: Some(2000), ..Default::default() }), &src, &fetched).unwrap();
        assert_eq!((p["token"].mode, p["token"].uid, p["ca.pem"].mode, p["k"].mode), (0o600, None, 0o600, 0o644));
        let p = projected_payload(&pod(PodSecurityContext { run_as_user: Some(1000), ..Default::default() }), &src, &fetched).unwrap();
        assert_eq!((p["token"].mode, p["token"].uid, p["ca.pem"].uid, p["k"].uid), (0o600, Some(1000), Some(1000), None));
        assert_eq!(p["ca.pem"].data, b"PEM");
    }
}
