//! The container spec hash stored in `io.kubernetes.container.hash`.
//!
//! A running container whose recorded hash differs from its spec's is restarted. As upstream
//! (since 1.31), only the fields a pod update may change and that need a new container count:
//! `name` and `image`. Resources change in place (in-place resize) and every other field is
//! immutable in the API. The value is upstream's to the bit: FNV-1a (32 bit) over the
//! apimachinery hash dump of `{"image":…,"name":…}`'s JSON bytes, printed in lower-case hex, so
//! containers an upstream kubelet started are recognised as unchanged after a switch.
//!
//! Earlier builds of this kubelet hashed the whole container's JSON; [`hash_matches`] accepts
//! that form too, so an upgrade restarts nothing.

use k8s_openapi::api::core::v1::Container;

/// Hash of the parts of a container spec that require a new container when they change.
pub fn container_hash(container: &Container) -> String {
    let json = go_json_string_map(&[("image", container.image.as_deref().unwrap_or_default()), ("name", &container.name)]);
    format!("{:x}", fnv1a32(hash_dump_of_bytes(json.as_bytes()).as_bytes()))
}

/// Whether a container recorded with `recorded` still runs `container`'s definition: upstream's
/// hash, or the whole-spec hash earlier builds recorded.
pub fn hash_matches(recorded: &str, container: &Container) -> bool {
    recorded == container_hash(container) || recorded == legacy_container_hash(container)
}

/// The whole-spec hash of earlier builds (FNV-1a over the container's JSON).
fn legacy_container_hash(container: &Container) -> String {
    let json = serde_json::to_vec(container).unwrap_or_default();
    format!("{:x}", fnv1a32(&json))
}

/// Go's `json.Marshal` of a `map[string]string` whose keys are given sorted: HTML-sensitive
/// characters and the JavaScript line separators escaped as Go does.
fn go_json_string_map(entries: &[(&str, &str)]) -> String {
    let quote = |s: &str| {
        let json = serde_json::to_string(s).unwrap_or_default();
        json.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    };
    let body: Vec<String> = entries.iter().map(|(k, v)| format!("{}:{}", quote(k), quote(v))).collect();
    format!("{{{}}}", body.join(","))
}

/// apimachinery's `dump.ForHash` of a byte slice: its type, then the bytes in decimal.
fn hash_dump_of_bytes(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("([]uint8)[{}]", items.join(" "))
}

/// FNV-1a (32 bit), as Go's `hash/fnv` `New32a`, which upstream's hashes and checksums use.
pub(crate) fn fnv1a32<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> u32 {
    bytes.into_iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_upstreams_and_only_name_and_image_count() {
        // Computed with upstream v1.37.2's `HashContainer` for the same container.
        let mut c =
            Container { name: "c1".into(), image: Some("registry.k8s.io/e2e-test-images/busybox:1.37.0-1".into()), ..Default::default() };
        assert_eq!(container_hash(&c), "d5267408");
        assert_eq!(
            hash_dump_of_bytes(br#"{"image":"x","name":"y"}"#),
            "([]uint8)[123 34 105 109 97 103 101 34 58 34 120 34 44 34 110 97 109 101 34 58 34 121 34 125]"
        );
        c.args = Some(vec!["sleep".into()]);
        assert_eq!(container_hash(&c), "d5267408");
        c.image = Some("busybox:2".into());
        assert_ne!(container_hash(&c), "d5267408");
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
    }

    #[test]
    fn the_earlier_whole_spec_hash_still_matches() {
        let c = Container { name: "web".into(), image: Some("busybox".into()), args: Some(vec!["sleep".into()]), ..Default::default() };
        let legacy = legacy_container_hash(&c);
        assert!(hash_matches(&legacy, &c));
        assert!(hash_matches(&container_hash(&c), &c));
        assert!(!hash_matches("deadbeef", &c));
        assert_eq!(go_json_string_map(&[("image", "a<b>&"), ("name", "n")]), r#"{"image":"a\u003cb\u003e\u0026","name":"n"}"#);
    }
}
