//! Image pulling by `imagePullPolicy` with per-image backoff (upstream `pkg/kubelet/images`).
//!
//! Reasons follow upstream: `ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`,
//! `InvalidImageName`, `ErrImageInspect`, `RegistryUnavailable` and
//! `SignatureValidationFailed` when the runtime says so. Credentials come from the pod's
//! `imagePullSecrets` ([`super::credentials`]), each matching one tried in turn. Pulls are
//! one at a time node-wide (`serializeImagePulls`) or at most `maxParallelImagePulls` at once,
//! and refused beyond `registryPullQPS`/`registryBurst` ("pull QPS exceeded"), as upstream.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};
use kubelet_cri::{CriError, ImageService, api};
use kubelet_types::rate_limit::RateLimiter;
use tokio::sync::Semaphore;

use super::credential_plugins::PullingPod;
use super::credentials::{Credential, CredentialSource, DockerKeyring};
use super::env::EnvSources;
use super::pull_records::{Access, PodCredentials, PullRecords, PulledWith};
use crate::backoff::Backoff;
use kubelet_types::events::{EventRecorder, EventType};

/// Why an image is not available, as a container waiting reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageError {
    /// The container's waiting reason (`ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`, ...).
    pub reason: &'static str,
    /// The message of the container's waiting state.
    pub message: String,
}

/// Why a pull failed; the text is the `Failed` event's and, unless the runtime names a reason
/// ([`pull_failure`]), the `ErrImagePull` message.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The node-wide pull slots are gone (the image manager is shutting down).
    #[error(transparent)]
    Slots(#[from] tokio::sync::AcquireError),
    /// More pulls would start than `registryPullQPS`/`registryBurst` allow.
    #[error("pull QPS exceeded")]
    QpsExceeded,
    /// The runtime's pull without credentials failed.
    #[error(transparent)]
    Runtime(#[from] CriError),
    /// The runtime's pull failed with each credential in turn (one error per credential, as
    /// upstream's aggregate writes them).
    #[error("{}", aggregate(.0))]
    EveryCredential(Vec<CriError>),
}

/// How many pulls may run at once and how often they may start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PullLimits {
    /// `None`: no limit (`serializeImagePulls: false` without `maxParallelImagePulls`).
    pub parallel: Option<usize>,
    /// `registryPullQPS` (0: no limit) and `registryBurst`.
    pub qps: f64,
    /// `registryBurst`: the most pulls that may start at once (the token bucket's size).
    pub burst: i32,
}

impl Default for PullLimits {
    /// Upstream's defaults: serialized, 5 pulls per second with bursts of 10.
    fn default() -> Self {
        Self { parallel: Some(1), qps: 5.0, burst: 10 }
    }
}

impl PullLimits {
    /// From the configuration.
    pub fn from_config(cfg: &kubelet_config::KubeletConfiguration) -> Self {
        let parallel = if cfg.serialize_image_pulls {
            Some(1)
        } else {
            cfg.max_parallel_image_pulls.and_then(|n| usize::try_from(n).ok()).filter(|n| *n > 0)
        };
        Self { parallel, qps: f64::from(cfg.registry_pull_qps), burst: cfg.registry_burst }
    }
}

/// Pulls images for containers, honouring the pull policy and backing off after failures.
pub struct ImageManager {
    backoff: Mutex<Backoff>,
    /// The last pull error per backoff key, for the `ImagePullBackOff` message.
    last_error: Mutex<HashMap<String, String>>,
    slots: Option<Semaphore>,
    qps: RateLimiter,
    /// Image credential provider plugins, asked after the pull secrets.
    plugins: Option<std::sync::Arc<super::credential_plugins::CredentialPlugins>>,
    /// Which credentials pulled each image (`KubeletEnsureSecretPulledImages`); `None` with
    /// the gate off.
    records: Option<std::sync::Arc<PullRecords>>,
    /// Told of each pull's start and end (the pod startup latency SLI).
    startup: Option<std::sync::Arc<crate::pod_startup_latency::PodStartupLatencyTracker>>,
}

impl Default for ImageManager {
    fn default() -> Self {
        Self::new(PullLimits::default())
    }
}

/// Whether `image` parses as a Docker reference (`[domain/]path[:tag][@digest]`): path
/// components lowercase letters and digits joined by `.`, `_`, `__` or dashes; a tag of word
/// characters, `.` and `-` (at most 128); a digest `algorithm:hex`.
fn valid_reference(image: &str) -> bool {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let Some((algo, hex)) = d.split_once(':') else { return false };
        if algo.is_empty() || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    let (path, tag) = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    };
    if let Some(t) = tag
        && (t.is_empty()
            || t.len() > 128
            || t.starts_with(['.', '-'])
            || !t.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)))
    {
        return false;
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let domain = parts.remove(0);
        let (host, port) = domain.split_once(':').unwrap_or((domain, ""));
        if host.is_empty()
            || !host.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
            || !port.chars().all(|c| c.is_ascii_digit())
        {
            return false;
        }
    }
    let component = |c: &str| {
        !c.is_empty()
            && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
            && !c.contains("..")
            && !c.contains("___")
    };
    !parts.is_empty() && parts.iter().all(|c| component(c))
}

/// `Always` when the tag is `latest` or missing, else `IfNotPresent` (the API default).
pub fn effective_pull_policy(c: &Container) -> String {
    if let Some(p) = &c.image_pull_policy {
        return p.clone();
    }
    let image = c.image.as_deref().unwrap_or_default();
    let name = image.split('@').next().unwrap_or_default();
    let tag = name.rsplit('/').next().and_then(|last| last.split_once(':')).map(|(_, t)| t);
    if image.contains('@') || tag.is_some_and(|t| t != "latest") { "IfNotPresent".into() } else { "Always".into() }
}

/// The waiting reason and message of a failed pull (upstream's `evalCRIPullErr`): the
/// runtime's `RegistryUnavailable` and `SignatureValidationFailed` keep their names.
pub fn pull_failure(image: &str, error: &str) -> ImageError {
    let runtime_says = |name: &str| {
        let at = error.find(name)?;
        Some(error[at + name.len()..].to_string())
    };
    if let Some(rest) = runtime_says("RegistryUnavailable") {
        return ImageError {
            reason: "RegistryUnavailable",
            message: format!("image pull failed for {image} because the registry is unavailable{rest}"),
        };
    }
    if let Some(rest) = runtime_says("SignatureValidationFailed") {
        return ImageError {
            reason: "SignatureValidationFailed",
            message: format!("image pull failed for {image} because the signature validation failed{rest}"),
        };
    }
    ImageError { reason: "ErrImagePull", message: error.to_string() }
}

/// Ends a pull's intent when the pull is over, however it ends (also when the pod worker
/// gives up waiting and drops the pull), unless `keep` says the intent must stay.
struct IntentGuard<'a> {
    records: &'a PullRecords,
    image: &'a str,
    keep: bool,
}

impl Drop for IntentGuard<'_> {
    fn drop(&mut self) {
        if !self.keep {
            self.records.finish_intent(self.image);
        }
    }
}

/// Several errors as upstream's `NewAggregate` writes them.
fn aggregate(errors: &[CriError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => format!("[{}]", many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// Credentials from the pod's pull secrets; the names of those that could not be read.
async fn pull_keyring(secrets: &dyn EnvSources, pod: &Pod) -> (DockerKeyring, Vec<String>) {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut keyring = DockerKeyring::default();
    let mut missing = Vec::new();
    for name in pod.spec.iter().flat_map(|s| s.image_pull_secrets.iter().flatten()).map(|r| r.name.as_str()) {
        match secrets.pull_secret(namespace, name).await {
            Ok(Some(secret)) => {
                if let Err(e) = keyring.add_pull_secret(&secret.type_, &secret.data, Some((&secret.uid, namespace, name))) {
                    tracing::warn!(pod = %crate::sync_loop::pod_key(pod), secret = name, "pull secret {namespace}/{name} is unusable: {e}");
                    missing.push(name.to_string());
                }
            }
            Ok(None) => missing.push(name.to_string()),
            Err(e) => {
                tracing::info!(pod = %crate::sync_loop::pod_key(pod), secret = name, "unable to retrieve pull secret, the image pull may not succeed: {e}");
                missing.push(name.to_string());
            }
        }
    }
    (keyring, missing)
}

impl ImageManager {
    /// An image manager with no pulls yet, honouring `limits`, without credential plugins,
    /// pull records or startup tracking.
    pub fn new(limits: PullLimits) -> Self {
        let qps = if limits.qps > 0.0 { RateLimiter::new(limits.qps, limits.burst) } else { RateLimiter::unlimited() };
        Self {
            backoff: Mutex::new(Backoff::default()),
            last_error: Mutex::default(),
            slots: limits.parallel.map(Semaphore::new),
            qps,
            plugins: None,
            records: None,
            startup: None,
        }
    }

    /// Verifies that pods may use the images present on the node (`KubeletEnsureSecretPulledImages`).
    pub fn with_pull_records(mut self, records: std::sync::Arc<PullRecords>) -> Self {
        self.records = Some(records);
        self
    }

    /// Tells `tracker` when pulls for a pod start and end.
    pub fn with_startup_tracker(mut self, tracker: std::sync::Arc<crate::pod_startup_latency::PodStartupLatencyTracker>) -> Self {
        self.startup = Some(tracker);
        self
    }

    /// The oldest pull under way for `pod` ends (also when the image turned out present, as
    /// upstream: another pod's pull may have brought it).
    fn pull_finished(&self, pod: &Pod) {
        if let Some(t) = &self.startup {
            t.image_pull_finished(super::labels::pod_uid(pod));
        }
    }

    /// Asks these credential provider plugins too.
    pub fn with_plugins(mut self, plugins: std::sync::Arc<super::credential_plugins::CredentialPlugins>) -> Self {
        self.plugins = Some(plugins);
        self
    }

    /// Makes sure the container's image is present; returns the image reference to run.
    #[allow(clippy::too_many_arguments)]
    pub async fn ensure_image(
        &self,
        images: &dyn ImageService,
        events: &dyn EventRecorder,
        secrets: &dyn EnvSources,
        pod: &Pod,
        c: &Container,
        sandbox: &api::PodSandboxConfig,
        now: SystemTime,
    ) -> Result<String, ImageError> {
        let image = c.image.clone().unwrap_or_default();
        if !valid_reference(&image) {
            let message =
                format!("Failed to apply default image tag {image:?}: couldn't parse image name {image:?}: invalid reference format");
            events.event(pod, EventType::Warning, "InspectFailed", &message);
            return Err(ImageError { reason: "InvalidImageName", message });
        }
        let spec = api::ImageSpec { image: image.clone(), ..Default::default() };
        let present = images.image_status(&spec).await.map_err(|e| {
            let message = format!("Failed to inspect image {image:?}: {e}");
            events.event(pod, EventType::Warning, "InspectFailed", &message);
            ImageError { reason: "ErrImageInspect", message }
        })?;
        let policy = effective_pull_policy(c);
        let mut fetched: Option<(Vec<Credential>, Vec<String>)> = None;
        if let Some(img) = present.as_ref().filter(|_| policy != "Always") {
            let Some(records) = &self.records else {
                events.event(pod, EventType::Normal, "Pulled", &format!("Container image {image:?} already present on machine"));
                self.pull_finished(pod);
                return Ok(img.id.clone());
            };
            let mut access = records.access(&image, &img.id, None);
            if access == Access::NeedsPodCredentials {
                let (credentials, _) = fetched.insert(self.credentials(secrets, pod, &image).await);
                let mut pod_credentials = PodCredentials::default();
                for source in credentials.iter().filter_map(|c| c.source.as_ref()) {
                    match source {
                        CredentialSource::Secret(s) => pod_credentials.secrets.push(s.clone()),
                        // As upstream: the first service account a plugin answered for.
                        CredentialSource::ServiceAccount(a) => {
                            pod_credentials.service_account.get_or_insert_with(|| a.clone());
                        }
                    }
                }
                access = records.access(&image, &img.id, Some(&pod_credentials));
            }
            match access {
                Access::NotVerified | Access::Granted => {
                    events.event(
                        pod,
                        EventType::Normal,
                        "Pulled",
                        &format!("Container image {image:?} already present on machine and can be accessed by the pod"),
                    );
                    self.pull_finished(pod);
                    return Ok(img.id.clone());
                }
                // `Never` answers as for an absent image: the pod learns nothing of what the
                // node holds. `IfNotPresent` pulls with the pod's own credentials.
                Access::MustPull(why) => {
                    tracing::info!(pod = %crate::sync_loop::pod_key(pod), image, "the image is present but the pod must pull it: {why}")
                }
                Access::NeedsPodCredentials => unreachable!("asked with the pod's credentials"),
            }
        }
        if policy == "Never" {
            let message = format!("Container image {image:?} is not present with pull policy of Never");
            events.event(pod, EventType::Warning, "ErrImageNeverPull", &message);
            return Err(ImageError { reason: "ErrImageNeverPull", message });
        }
        let key = format!("{}_{image}", pod.metadata.uid.as_deref().unwrap_or_default());
        let in_backoff = {
            let mut backoff = self.backoff.lock().expect("backoff lock");
            backoff.gc(now);
            // Errors of pulls whose back-off expired (their pods may be gone) go with it.
            self.last_error.lock().expect("pull errors lock").retain(|k, _| backoff.current(k).is_some());
            backoff.remaining_since_update(&key, now).is_some()
        };
        if in_backoff {
            let mut message = format!("Back-off pulling image {image:?}");
            events.event(pod, EventType::Normal, "BackOff", &message);
            if let Some(previous) = self.last_error.lock().expect("pull errors lock").get(&key) {
                message = format!("{message}: {previous}");
            }
            return Err(ImageError { reason: "ImagePullBackOff", message });
        }
        self.last_error.lock().expect("pull errors lock").remove(&key);
        // The pod's credentials, unless the access check above has gathered them already.
        let (credentials, missing_secrets) = match fetched {
            Some(read) => read,
            None => self.credentials(secrets, pod, &image).await,
        };
        if let Some(t) = &self.startup {
            t.image_pull_started(super::labels::pod_uid(pod));
        }
        events.event(pod, EventType::Normal, "Pulling", &format!("Pulling image {image:?}"));
        let started = Instant::now();
        let mut intent = match &self.records {
            Some(records) => match records.record_intent(&image) {
                Ok(()) => Some(IntentGuard { records, image: &image, keep: false }),
                Err(e) => {
                    let message = format!("Failed to record image pull intent for container image {image:?}: {e}");
                    events.event(pod, EventType::Warning, "Failed", &message);
                    return Err(ImageError { reason: "ErrImagePull", message });
                }
            },
            None => None,
        };
        let pulled = self.pull(images, spec, credentials, sandbox).await;
        if let (Some(guard), Ok((reference, _, source))) = (intent.as_mut(), &pulled) {
            let with = match source.clone() {
                None => PulledWith::NodeAccessible,
                Some(CredentialSource::Secret(s)) => PulledWith::Secret(s),
                Some(CredentialSource::ServiceAccount(a)) => PulledWith::ServiceAccount(a),
            };
            if let Err(e) = guard.records.record_pulled(&image, reference, with) {
                // The intent stays: the image counts as pulled by the kubelet and is verified.
                tracing::warn!(image, "recording the image's pull: {e}");
                guard.keep = true;
            }
        }
        drop(intent);
        match pulled.map(|(r, d, _)| (r, d)) {
            Ok((reference, pulling)) => {
                self.pull_finished(pod);
                self.backoff.lock().expect("backoff lock").reset(&key);
                let size = images
                    .image_status(&api::ImageSpec { image: reference.clone(), ..Default::default() })
                    .await
                    .ok()
                    .flatten()
                    .map_or(0, |i| i.size);
                let ms =
                    |d: std::time::Duration| kubelet_config::go_duration::format(std::time::Duration::from_millis(d.as_millis() as u64));
                let message = format!(
                    "Successfully pulled image {image:?} in {} ({} including waiting). Image size: {size} bytes.",
                    ms(pulling),
                    ms(started.elapsed())
                );
                events.event(pod, EventType::Normal, "Pulled", &message);
                Ok(reference)
            }
            Err(e) => {
                events.event(pod, EventType::Warning, "Failed", &format!("Failed to pull image {image:?}: {e}"));
                self.backoff.lock().expect("backoff lock").next(&key, now);
                let failure = pull_failure(&image, &e.to_string());
                self.last_error.lock().expect("pull errors lock").insert(key, format!("{}: {}", failure.reason, failure.message));
                if !missing_secrets.is_empty() {
                    let message = format!(
                        "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                        missing_secrets.join(", ")
                    );
                    events.event(pod, EventType::Warning, "FailedToRetrieveImagePullSecret", &message);
                }
                Err(failure)
            }
        }
    }

    /// The credentials to try for `image` in order (the pod's pull secrets, then the plugins'
    /// answers), and the pull secrets that could not be read.
    async fn credentials(&self, secrets: &dyn EnvSources, pod: &Pod, image: &str) -> (Vec<Credential>, Vec<String>) {
        let (keyring, missing) = pull_keyring(secrets, pod).await;
        let mut credentials = keyring.lookup_credentials(image);
        if let Some(plugins) = &self.plugins {
            let pulling = PullingPod {
                namespace: pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
                name: pod.metadata.name.clone().unwrap_or_default(),
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                service_account: pod.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
            };
            credentials.extend(plugins.keyring(image, Some(&pulling)).await.lookup_credentials(image));
        }
        (credentials, missing)
    }

    /// One pull in its slot: anonymously, or with each credential in turn until one works.
    /// Returns the image reference, how long the pull itself took (without waiting) and where
    /// the credentials that worked came from (`None`: anonymous or the node's).
    async fn pull(
        &self,
        images: &dyn ImageService,
        spec: api::ImageSpec,
        credentials: Vec<Credential>,
        sandbox: &api::PodSandboxConfig,
    ) -> Result<(String, std::time::Duration, Option<CredentialSource>), PullError> {
        let _slot = match &self.slots {
            Some(s) => Some(s.acquire().await?),
            None => None,
        };
        if !self.qps.try_acquire().await {
            return Err(PullError::QpsExceeded);
        }
        let started = Instant::now();
        if credentials.is_empty() {
            let reference = images.pull_image(spec, None, Some(sandbox.clone())).await?;
            return Ok((reference, started.elapsed(), None));
        }
        let mut errors = Vec::new();
        for credential in credentials {
            match images.pull_image(spec.clone(), Some(credential.auth), Some(sandbox.clone())).await {
                Ok(r) => return Ok((r, started.elapsed(), credential.source)),
                Err(e) => errors.push(e),
            }
        }
        Err(PullError::EveryCredential(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults_follow_the_tag() {
        let c = |image: &str| Container { image: Some(image.into()), ..Default::default() };
        assert_eq!(effective_pull_policy(&c("busybox")), "Always");
        assert_eq!(effective_pull_policy(&c("busybox:latest")), "Always");
        assert_eq!(effective_pull_policy(&c("localhost:5000/busybox")), "Always");
        assert_eq!(effective_pull_policy(&c("localhost:5000/busybox:1.35")), "IfNotPresent");
        assert_eq!(effective_pull_policy(&c("busybox@sha256:abc")), "IfNotPresent");
        assert!(valid_reference("localhost/knode/busybox:1.35"));
        assert!(!valid_reference("Bad Image"));
        assert!(!valid_reference(""));
        assert!(!valid_reference("Bad_Image:UPPER"), "repository names are lowercase");
        assert!(valid_reference("Registry.Example.com:5000/team/app_x-1:V1.2"), "a domain and a tag may have capitals");
        assert!(valid_reference("busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
        assert!(!valid_reference("busybox@sha256:xyz"));
        assert!(!valid_reference("app:"));
        assert!(!valid_reference("-app"));
    }

    #[test]
    fn runtime_reasons_are_kept() {
        let e =
            pull_failure("r.io/a:1", "PullImage \"r.io/a:1\": rpc error: code = Unknown desc = RegistryUnavailable: connection refused");
        assert_eq!(
            (e.reason, e.message.as_str()),
            ("RegistryUnavailable", "image pull failed for r.io/a:1 because the registry is unavailable: connection refused")
        );
        assert_eq!(pull_failure("a", "SignatureValidationFailed").reason, "SignatureValidationFailed");
        assert_eq!(pull_failure("a", "not found"), ImageError { reason: "ErrImagePull", message: "not found".into() });
    }
}
