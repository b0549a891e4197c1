//! Which credentials pulled each image (upstream's image pull manager, KEP-2535
//! `KubeletEnsureSecretPulledImages`, on by default since 1.35): a pod may use an image already
//! on the node without pulling it only if the image was pulled with credentials the pod has too,
//! or without credentials — so one tenant's private image is not handed to another who cannot
//! pull it, per `imagePullCredentialsVerificationPolicy`.
//!
//! State, as upstream keeps it under `<root-dir>/image_manager` (0700), in single-line JSON
//! files (0600, written through `<name>.tmp`) named `sha256-<hex(sha256(key))>`:
//! - `pulling/`: an `ImagePullIntent` per image being pulled (key: the image as written in the
//!   pod), so a pull interrupted by a restart still counts as the kubelet's;
//! - `pulled/`: an `ImagePulledRecord` per image (key: the image ID), mapping the image name
//!   (without tag or digest) to the secrets that pulled it (`uid`, `namespace`, `name`,
//!   `credentialHash` = hex SHA-256 of the credentials as Go's JSON writes them) or to
//!   `nodePodsAccessible` when it was pulled without a pod's credentials.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

const API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
const UNREADABLE: &str = "unreadable pull record";
/// A record lists at most this many secrets matched by hash only.
const MAX_MATCHED_SECRETS: usize = 100;

/// Why a pull record could not be read (it names the file).
#[derive(Debug, thiserror::Error)]
pub enum PullRecordError {
    /// The record's file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The record's file under `pulled/`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The record's file is not an `ImagePulledRecord`.
    #[error("{}: {source}", path.display())]
    Decode {
        /// The record's file under `pulled/`.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// `imagePullCredentialsVerificationPolicy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerificationPolicy {
    /// Images on the node are never verified: any pod may use them.
    NeverVerify,
    /// The default: images the kubelet did not pull (preloaded) are not verified.
    NeverVerifyPreloadedImages,
    /// Images matching the allowlist (`preloadedImagesVerificationAllowlist`) are not verified.
    NeverVerifyAllowlistedImages(Vec<String>),
    /// Every image on the node is verified, preloaded ones too.
    AlwaysVerify,
}

impl VerificationPolicy {
    /// From the (validated) configuration; an empty policy is the default.
    pub fn from_config(policy: &str, allowlist: &[String]) -> Self {
        match policy {
            "NeverVerify" => Self::NeverVerify,
            "NeverVerifyAllowlistedImages" => Self::NeverVerifyAllowlistedImages(allowlist.to_vec()),
            "AlwaysVerify" => Self::AlwaysVerify,
            _ => Self::NeverVerifyPreloadedImages,
        }
    }
}

/// A pull secret as the records name it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretCoordinates {
    /// The secret's UID.
    pub uid: String,
    /// The secret's namespace (the pod's).
    pub namespace: String,
    /// The secret's name.
    pub name: String,
    /// Hex SHA-256 of the credentials the secret gave for the image ([`credential_hash()`]): a pod
    /// with another secret holding the same credentials may use the image too.
    pub credential_hash: String,
}

/// A service account as the records name it: the one a credential provider plugin was given a
/// token of when it answered for a pull.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountCoordinates {
    /// The service account's UID.
    pub uid: String,
    /// The service account's namespace (the pod's).
    pub namespace: String,
    /// The service account's name.
    pub name: String,
}

/// Who may use an image pulled under one name (upstream `ImagePullCredentials`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImagePullCredentials {
    /// The pull secrets that pulled it, sorted by namespace, name and UID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_secrets: Vec<SecretCoordinates>,
    /// The service accounts whose credential provider answers pulled it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_service_accounts: Vec<ServiceAccountCoordinates>,
    /// Pulled without a pod's credentials: every pod on the node may use it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub node_pods_accessible: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImagePullIntent {
    kind: String,
    api_version: String,
    image: String,
}

/// The record of one image ID on the node (upstream `ImagePulledRecord`), stored in `pulled/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImagePulledRecord {
    kind: String,
    api_version: String,
    last_updated_time: String,
    /// The image ID (the runtime's image reference) the record is for.
    pub image_ref: String,
    /// Image name (without tag or digest) → the credentials that pulled it under that name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub credential_mapping: BTreeMap<String, ImagePullCredentials>,
}

/// How a pull succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PulledWith {
    /// Anonymously or with the node's own credentials: any pod may use the image.
    NodeAccessible,
    /// With one of the pod's pull secrets.
    Secret(SecretCoordinates),
    /// With a credential provider plugin's answer for a service account's token.
    ServiceAccount(ServiceAccountCoordinates),
}

/// What a pod could pull an image with: its pull secrets that match it (with the credentials'
/// hashes), and the service account a credential provider plugin answered for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodCredentials {
    /// The pod's pull secrets that match the image, with their credentials' hashes.
    pub secrets: Vec<SecretCoordinates>,
    /// The pod's service account, when a credential provider plugin answered for its token.
    pub service_account: Option<ServiceAccountCoordinates>,
}

impl PodCredentials {
    /// Only pull secrets, no service account.
    pub fn secrets(secrets: &[SecretCoordinates]) -> Self {
        Self { secrets: secrets.to_vec(), service_account: None }
    }
}

/// Whether a pod may use a present image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// The policy does not ask (`credentialPolicyAllowed`).
    NotVerified,
    /// The pod has credentials the image was pulled with, or it was pulled without any.
    Granted,
    /// The pod must pull it with its own credentials; why, for the log.
    MustPull(&'static str),
    /// Only the pod's credentials can tell: ask again with them.
    NeedsPodCredentials,
}

/// The image name a record maps: the image without `@digest`, then without `:tag`.
pub fn image_name(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

/// Whether `image` matches an allowlist entry: exactly (without tag or digest) or below a
/// `prefix/*`.
pub fn allowlisted(image: &str, allowlist: &[String]) -> bool {
    let name = image_name(image);
    allowlist.iter().any(|p| match p.strip_suffix("/*") {
        Some(prefix) => name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')),
        None => name == p,
    })
}

/// A JSON string as Go's `encoding/json` writes it (HTML characters and U+2028/9 escaped).
fn go_json_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Upstream's credential hash: hex SHA-256 of `json.Marshal(AuthConfig{Username, Password,
/// Email})` (fields omitted when empty).
pub fn credential_hash(username: &str, password: &str, email: &str) -> String {
    let fields: Vec<String> = [("username", username), ("password", password), ("email", email)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("\"{k}\":{}", go_json_string(v)))
        .collect();
    sha256_hex(format!("{{{}}}", fields.join(",")).as_bytes())
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn file_name(key: &str) -> String {
    format!("sha256-{}", sha256_hex(key.as_bytes()))
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The pull intents and pulled records of one kubelet.
pub struct PullRecords {
    dir: PathBuf,
    policy: VerificationPolicy,
    /// Pulls in flight per image; the intent file goes when the count reaches zero.
    intents: Mutex<HashMap<String, u32>>,
    /// Serializes read-modify-write of the record files.
    write: Mutex<()>,
    metrics: Option<std::sync::Arc<crate::metrics::KubeletMetrics>>,
}

impl PullRecords {
    /// Records under `<root_dir>/image_manager`.
    pub fn new(root_dir: &Path, policy: VerificationPolicy) -> Self {
        Self { dir: root_dir.join("image_manager"), policy, intents: Mutex::default(), write: Mutex::default(), metrics: None }
    }

    /// Counts the checks in `kubelet_imagemanager_image_mustpull_checks_total` and has the
    /// files counted on `/metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::KubeletMetrics>) -> Self {
        let _ = metrics.image_manager_dir.set(self.dir.clone());
        self.metrics = Some(metrics);
        self
    }

    fn pulling(&self) -> PathBuf {
        self.dir.join("pulling")
    }
    fn pulled(&self) -> PathBuf {
        self.dir.join("pulled")
    }

    fn write_file(dir: &Path, name: &str, json: &str) -> std::io::Result<()> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let tmp = dir.join(format!("{name}.tmp"));
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(json.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    }

    /// Notes that `image` is about to be pulled. A failure must stop the pull.
    pub fn record_intent(&self, image: &str) -> std::io::Result<()> {
        let mut intents = self.intents.lock().expect("intents lock");
        let count = intents.entry(image.to_owned()).or_default();
        if *count == 0 {
            let intent = ImagePullIntent { kind: "ImagePullIntent".into(), api_version: API_VERSION.into(), image: image.into() };
            Self::write_file(&self.pulling(), &file_name(image), &serde_json::to_string(&intent).expect("serializable"))?;
        }
        *count += 1;
        Ok(())
    }

    /// The pull of `image` is over (either way).
    pub fn finish_intent(&self, image: &str) {
        let mut intents = self.intents.lock().expect("intents lock");
        let Some(count) = intents.get_mut(image) else { return };
        *count = count.saturating_sub(1);
        if *count == 0 {
            intents.remove(image);
            let _ = std::fs::remove_file(self.pulling().join(file_name(image)));
        }
    }

    fn intent_exists(&self, image: &str) -> bool {
        self.intents.lock().expect("intents lock").contains_key(image) || self.pulling().join(file_name(image)).is_file()
    }

    /// The record of image ID `image_ref`: `Ok(None)` when there is none.
    pub fn record(&self, image_ref: &str) -> Result<Option<ImagePulledRecord>, PullRecordError> {
        let path = self.pulled().join(file_name(image_ref));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PullRecordError::Read { path, source }),
        };
        let record: ImagePulledRecord = match serde_json::from_str(&text) {
            Ok(r) => r,
            Err(source) => return Err(PullRecordError::Decode { path, source }),
        };
        Ok((record.image_ref == image_ref).then_some(record))
    }

    fn store(&self, record: &ImagePulledRecord) -> std::io::Result<()> {
        Self::write_file(&self.pulled(), &file_name(&record.image_ref), &serde_json::to_string(record).expect("serializable"))
    }

    /// Records that `image` (image ID `image_ref`) was pulled `with` these credentials.
    pub fn record_pulled(&self, image: &str, image_ref: &str, with: PulledWith) -> std::io::Result<()> {
        let _guard = self.write.lock().expect("records lock");
        let mut record = self.record(image_ref).ok().flatten().unwrap_or_else(|| ImagePulledRecord {
            kind: "ImagePulledRecord".into(),
            api_version: API_VERSION.into(),
            last_updated_time: String::new(),
            image_ref: image_ref.into(),
            credential_mapping: BTreeMap::new(),
        });
        let before = record.credential_mapping.clone();
        let entry = record.credential_mapping.entry(image_name(image).to_owned()).or_default();
        match with {
            PulledWith::NodeAccessible => *entry = ImagePullCredentials { node_pods_accessible: true, ..Default::default() },
            PulledWith::Secret(secret) if !entry.node_pods_accessible => merge_secret(&mut entry.kubernetes_secrets, secret),
            PulledWith::ServiceAccount(account) if !entry.node_pods_accessible => {
                if !entry.kubernetes_service_accounts.contains(&account) {
                    entry.kubernetes_service_accounts.push(account);
                    entry.kubernetes_service_accounts.sort_by(|a, b| (&a.namespace, &a.name, &a.uid).cmp(&(&b.namespace, &b.name, &b.uid)));
                }
            }
            PulledWith::Secret(_) | PulledWith::ServiceAccount(_) => {}
        }
        if record.credential_mapping == before && !record.last_updated_time.is_empty() {
            return Ok(());
        }
        record.last_updated_time = now_rfc3339();
        self.store(&record)
    }

    /// Whether a pod may use `image`, present on the node as image ID `image_ref`, without
    /// pulling it. `pod` is what the pod could pull it with; `None` asks without that first (it
    /// costs API reads and plugin runs), and the answer is [`Access::NeedsPodCredentials`] when
    /// only it can decide.
    pub fn access(&self, image: &str, image_ref: &str, pod: Option<&PodCredentials>) -> Access {
        let access = self.decide(image, image_ref, pod);
        if let Some(m) = &self.metrics {
            let result = match access {
                Access::NotVerified => Some("credentialPolicyAllowed"),
                Access::Granted => Some("credentialRecordFound"),
                Access::MustPull(UNREADABLE) => Some("error"),
                Access::MustPull(_) => Some("mustAuthenticate"),
                Access::NeedsPodCredentials => None,
            };
            if let Some(result) = result {
                m.image_mustpull_checks.inc(&[result]);
            }
        }
        access
    }

    fn decide(&self, image: &str, image_ref: &str, pod: Option<&PodCredentials>) -> Access {
        let record = match self.record(image_ref) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(image, "Unable to access cache records about image pulls: {e}");
                return Access::MustPull(UNREADABLE);
            }
        };
        let verify = match &self.policy {
            VerificationPolicy::NeverVerify => false,
            VerificationPolicy::NeverVerifyPreloadedImages => record.is_some() || self.intent_exists(image),
            VerificationPolicy::NeverVerifyAllowlistedImages(list) => !allowlisted(image, list),
            VerificationPolicy::AlwaysVerify => true,
        };
        if !verify {
            return Access::NotVerified;
        }
        let Some(record) = record else { return Access::MustPull("no record of how the image was pulled") };
        let Some(entry) = record.credential_mapping.get(image_name(image)) else {
            return Access::MustPull("the image was pulled under another name");
        };
        if entry.node_pods_accessible {
            return Access::Granted;
        }
        if entry.kubernetes_secrets.is_empty() && entry.kubernetes_service_accounts.is_empty() {
            return Access::MustPull("the image was pulled with credentials the kubelet did not record");
        }
        let Some(pod_credentials) = pod else { return Access::NeedsPodCredentials };
        for pod in &pod_credentials.secrets {
            let same_object = |c: &SecretCoordinates| c.uid == pod.uid && c.namespace == pod.namespace && c.name == pod.name;
            if let Some(cached) =
                entry.kubernetes_secrets.iter().find(|c| !c.credential_hash.is_empty() && c.credential_hash == pod.credential_hash)
            {
                if !same_object(cached) && entry.kubernetes_secrets.len() < MAX_MATCHED_SECRETS {
                    self.add_secret(image, image_ref, pod);
                }
                return Access::Granted;
            }
            if entry.kubernetes_secrets.iter().any(same_object) {
                // The same secret with new contents: it still may use what it pulled.
                self.add_secret(image, image_ref, pod);
                return Access::Granted;
            }
        }
        // Then, as upstream, the service account: the very one (UID too) the image was pulled for.
        if pod_credentials.service_account.as_ref().is_some_and(|a| entry.kubernetes_service_accounts.contains(a)) {
            return Access::Granted;
        }
        Access::MustPull("the pod has none of the credentials the image was pulled with")
    }

    /// Adds (or updates the hash of) a secret in the record, re-read under the lock so a
    /// concurrent write is not lost.
    fn add_secret(&self, image: &str, image_ref: &str, secret: &SecretCoordinates) {
        let _guard = self.write.lock().expect("records lock");
        let Ok(Some(mut record)) = self.record(image_ref) else { return };
        let Some(entry) = record.credential_mapping.get_mut(image_name(image)) else { return };
        if entry.node_pods_accessible {
            return;
        }
        merge_secret(&mut entry.kubernetes_secrets, secret.clone());
        record.last_updated_time = now_rfc3339();
        if let Err(e) = self.store(&record) {
            tracing::warn!(image = %record.image_ref, "updating the image's pull record: {e}");
        }
    }

    /// At start: intents left by pulls a restart interrupted. An intent whose image is now
    /// present becomes a record without credentials (verified from then on); the others stay.
    pub fn reconcile_intents(&self, images: &[kubelet_cri::api::Image]) {
        let Ok(entries) = std::fs::read_dir(self.pulling()) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("sha256-") || name.ends_with(".tmp") {
                continue;
            }
            let Some(intent) = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<ImagePullIntent>(&t).ok()) else {
                tracing::warn!(file = %path.display(), "unreadable image pull intent");
                continue;
            };
            let Some(img) = images.iter().find(|i| i.repo_tags.contains(&intent.image) || i.repo_digests.contains(&intent.image)) else {
                continue;
            };
            let _guard = self.write.lock().expect("records lock");
            if self.record(&img.id).ok().flatten().is_none() {
                let record = ImagePulledRecord {
                    kind: "ImagePulledRecord".into(),
                    api_version: API_VERSION.into(),
                    last_updated_time: now_rfc3339(),
                    image_ref: img.id.clone(),
                    credential_mapping: BTreeMap::new(),
                };
                if let Err(e) = self.store(&record) {
                    tracing::warn!(image = %intent.image, "recording an interrupted pull: {e}");
                    continue;
                }
            }
            let _ = std::fs::remove_file(&path);
        }
    }

    /// After image GC: drops the records of images no longer present that were last updated
    /// before `gc_started`.
    pub fn prune(&self, present: &HashSet<String>, gc_started: SystemTime) {
        let Ok(entries) = std::fs::read_dir(self.pulled()) else { return };
        let started = k8s_openapi::jiff::Timestamp::try_from(gc_started).ok();
        let _guard = self.write.lock().expect("records lock");
        for entry in entries.flatten() {
            let Some(record) = std::fs::read_to_string(entry.path()).ok().and_then(|t| serde_json::from_str::<ImagePulledRecord>(&t).ok())
            else {
                continue;
            };
            let updated = record.last_updated_time.parse::<k8s_openapi::jiff::Timestamp>().ok();
            let old = matches!((updated, started), (Some(u), Some(s)) if u < s);
            if old && !present.contains(&record.image_ref) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Adds `secret` to the list (unique by uid, namespace and name; a known one takes the new
/// hash), sorted by namespace, name, uid.
fn merge_secret(list: &mut Vec<SecretCoordinates>, secret: SecretCoordinates) {
    match list.iter_mut().find(|c| c.uid == secret.uid && c.namespace == secret.namespace && c.name == secret.name) {
        Some(known) => known.credential_hash = secret.credential_hash,
        None => list.push(secret),
    }
    list.sort_by(|a, b| (&a.namespace, &a.name, &a.uid).cmp(&(&b.namespace, &b.name, &b.uid)));
}

#[cfg(test)]
#[path = "pull_records_tests.rs"]
mod tests;
