//! Image pulling by `imagePullPolicy` with per-image backoff (upstream `pkg/kubelet/images`).
//!
//! Reasons follow upstream: `ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`,
//! `InvalidImageName`, `ErrImageInspect`.

use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};
use kubelet_cri::{ImageService, api};

use crate::backoff::Backoff;
use crate::events::{EventRecorder, EventType};

/// Why an image is not available, as a container waiting reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageError {
    pub reason: &'static str,
    pub message: String,
}

/// Pulls images for containers, honouring the pull policy and backing off after failures.
pub struct ImageManager {
    backoff: Mutex<Backoff>,
}

impl Default for ImageManager {
    fn default() -> Self {
        Self { backoff: Mutex::new(Backoff::default()) }
    }
}

fn valid_reference(image: &str) -> bool {
    !image.is_empty()
        && !image.contains(char::is_whitespace)
        && image.chars().all(|c| c.is_ascii_alphanumeric() || "./:_-@+".contains(c))
        && !image.starts_with(['.', '/', ':', '-'])
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

impl ImageManager {
    /// Makes sure the container's image is present; returns the image reference to run.
    pub async fn ensure_image(
        &self,
        images: &dyn ImageService,
        events: &dyn EventRecorder,
        pod: &Pod,
        c: &Container,
        sandbox: &api::PodSandboxConfig,
        now: SystemTime,
    ) -> Result<String, ImageError> {
        let image = c.image.clone().unwrap_or_default();
        if !valid_reference(&image) {
            let message = format!("Failed to apply default image tag {image:?}: couldn't parse image name {image:?}: invalid reference format");
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
        if let Some(img) = present.as_ref().filter(|_| policy != "Always") {
            events.event(pod, EventType::Normal, "Pulled", &format!("Container image {image:?} already present on machine"));
            return Ok(img.id.clone());
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
            backoff.remaining_since_update(&key, now).is_some()
        };
        if in_backoff {
            let message = format!("Back-off pulling image {image:?}");
            events.event(pod, EventType::Normal, "BackOff", &message);
            return Err(ImageError { reason: "ImagePullBackOff", message });
        }
        events.event(pod, EventType::Normal, "Pulling", &format!("Pulling image {image:?}"));
        let started = Instant::now();
        match images.pull_image(spec, None, Some(sandbox.clone())).await {
            Ok(reference) => {
                self.backoff.lock().expect("backoff lock").reset(&key);
                let took = started.elapsed();
                events.event(pod, EventType::Normal, "Pulled", &format!("Successfully pulled image {image:?} in {took:.3?}"));
                Ok(reference)
            }
            Err(e) => {
                self.backoff.lock().expect("backoff lock").next(&key, now);
                let message = format!("Failed to pull image {image:?}: {e}");
                events.event(pod, EventType::Warning, "Failed", &message);
                Err(ImageError { reason: "ErrImagePull", message })
            }
        }
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
    }
}
