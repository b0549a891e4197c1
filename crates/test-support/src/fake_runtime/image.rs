//! [`ImageService`] for [`FakeRuntime`]: images named as containerd names them, pull failures on
//! demand.

use async_trait::async_trait;
use kubelet_cri::{ImageService, Result, api};

use super::{FakeRuntime, State, hex_id};

/// Size reported for every fake image.
const IMAGE_SIZE: u64 = 1024 * 1024;

/// Normalizes an image reference like containerd does: `busybox` → `docker.io/library/busybox:latest`.
/// Image IDs (`sha256:…`) are returned unchanged.
pub(super) fn normalize(name: &str) -> String {
    if name.starts_with("sha256:") {
        return name.to_owned();
    }
    let (repo, digest) = match name.split_once('@') {
        Some((repo, digest)) => (repo, Some(digest)),
        None => (name, None),
    };
    let path = match repo.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => repo.to_owned(),
        Some(_) => format!("docker.io/{repo}"),
        None => format!("docker.io/library/{repo}"),
    };
    let tagged = path.rsplit('/').next().is_some_and(|last| last.contains(':'));
    match digest {
        Some(digest) => format!("{path}@{digest}"),
        None if tagged => path,
        None => format!("{path}:latest"),
    }
}

/// The image `name` (a reference or an ID) refers to.
pub(super) fn find<'a>(state: &'a State, name: &str) -> Option<&'a api::Image> {
    if name.is_empty() {
        return None;
    }
    let normalized = normalize(name);
    state
        .images
        .values()
        .find(|image| image.id == normalized || image.repo_tags.contains(&normalized) || image.repo_digests.contains(&normalized))
}

/// Adds image `name` unless present; returns its ID (what containerd returns as the image ref).
pub(super) fn add_image(state: &mut State, name: &str) -> String {
    if let Some(image) = find(state, name) {
        return image.id.clone();
    }
    let normalized = normalize(name);
    // FNV-1a of the name seeds the ID, so an image has the same ID in every fake.
    let seed =
        normalized.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    let id = format!("sha256:{}", hex_id(seed));
    let by_digest = normalized.contains('@');
    let image = api::Image {
        id: id.clone(),
        repo_tags: if by_digest { Vec::new() } else { vec![normalized.clone()] },
        repo_digests: if by_digest { vec![normalized] } else { Vec::new() },
        size: IMAGE_SIZE,
        ..Default::default()
    };
    state.images.insert(id.clone(), image);
    id
}

#[async_trait]
impl ImageService for FakeRuntime {
    async fn list_images(&self, filter: Option<api::ImageFilter>) -> Result<Vec<api::Image>> {
        let mut state = self.lock();
        state.calls.push("ListImages".to_owned());
        let wanted = filter.and_then(|f| f.image).map(|spec| spec.image).unwrap_or_default();
        if wanted.is_empty() {
            return Ok(state.images.values().cloned().collect());
        }
        Ok(find(&state, &wanted).into_iter().cloned().collect())
    }

    async fn image_status(&self, image: &api::ImageSpec) -> Result<Option<api::Image>> {
        let mut state = self.lock();
        state.calls.push(format!("ImageStatus {}", normalize(&image.image)));
        Ok(find(&state, &image.image).cloned())
    }

    async fn pull_image(
        &self,
        image: api::ImageSpec,
        _auth: Option<api::AuthConfig>,
        _sandbox_config: Option<api::PodSandboxConfig>,
    ) -> Result<String> {
        let normalized = normalize(&image.image);
        let delay = {
            let mut state = self.lock();
            state.calls.push(format!("PullImage {normalized}"));
            state.pull_delays.get(&normalized).copied()
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.lock();
        if let Some(err) = state.pull_errors.get(&normalized) {
            return Err(err.clone());
        }
        Ok(add_image(&mut state, &image.image))
    }

    async fn remove_image(&self, image: &api::ImageSpec) -> Result<()> {
        let mut state = self.lock();
        state.calls.push(format!("RemoveImage {}", normalize(&image.image)));
        if let Some(id) = find(&state, &image.image).map(|found| found.id.clone()) {
            state.images.remove(&id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_like_containerd() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(normalize("kube/pause"), "docker.io/kube/pause:latest");
        assert_eq!(normalize("localhost/knode/busybox:1.35"), "localhost/knode/busybox:1.35");
        assert_eq!(normalize("registry:5000/app"), "registry:5000/app:latest");
        assert_eq!(normalize("busybox@sha256:abc"), "docker.io/library/busybox@sha256:abc");
        assert_eq!(normalize("sha256:abc"), "sha256:abc");
    }
}
