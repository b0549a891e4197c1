//! The container spec hash stored in `io.kubernetes.container.hash`.
//!
//! A running container whose recorded hash differs from the spec's current hash is restarted, as
//! upstream does. The hash must be stable across kubelet restarts and builds, so it is FNV-1a (32 bit)
//! over the container's canonical JSON, printed in lower-case hex.

use k8s_openapi::api::core::v1::Container;

/// Hash of the parts of a container spec that require a new container when they change.
pub fn container_hash(container: &Container) -> String {
    // Upstream excludes fields that can change in place (resources under in-place resize); the
    // kubelet here treats every field as identity, which restarts on any change, as 1.2x did.
    let json = serde_json::to_vec(container).unwrap_or_default();
    format!("{:x}", fnv1a32(&json))
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_sensitive() {
        let mut c = Container { name: "web".into(), image: Some("busybox".into()), ..Default::default() };
        let h1 = container_hash(&c);
        assert_eq!(h1, container_hash(&c.clone()));
        c.args = Some(vec!["sleep".into()]);
        assert_ne!(h1, container_hash(&c));
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
    }
}
