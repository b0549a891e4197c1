//! Fields that take one of a fixed set of values (policies, modes, formats,
//! TLS version, swap behaviour) and the image pull credential verification
//! policy, with the feature gates they depend on.

use super::{Problem, one_of, req};
use crate::features::FeatureGates;
use crate::types::KubeletConfiguration;

/// String fields that take one of a fixed set of values, and the feature
/// gates some of those values need.
pub(super) fn enumerated(c: &KubeletConfiguration, gates: &FeatureGates) -> Result<(), Problem> {
    one_of(
        &c.topology_manager_policy,
        "topologyManagerPolicy (--topology-manager-policy)",
        &["none", "best-effort", "restricted", "single-numa-node"],
    )?;
    one_of(&c.topology_manager_scope, "topologyManagerScope (--topology-manager-scope)", &["container", "pod"])?;
    one_of(&c.hairpin_mode, "hairpinMode (--hairpin-mode)", &["none", "hairpin-veth", "promiscuous-bridge"])?;
    one_of(&c.cgroup_driver, "cgroupDriver (--cgroup-driver)", &["cgroupfs", "systemd"])?;
    one_of(&c.authorization.mode, "authorization.mode (--authorization-mode)", &["AlwaysAllow", "Webhook"])?;
    one_of(&c.memory_reservation_policy, "memoryReservationPolicy", &["None", "TieredReservation"])?;
    one_of(&c.config_map_and_secret_change_detection_strategy, "configMapAndSecretChangeDetectionStrategy", &["Get", "Cache", "Watch"])?;
    one_of(&c.logging.format, "logging.format (--logging-format)", &["text", "json"])?;
    one_of(&c.tls_min_version, "tlsMinVersion (--tls-min-version)", &["", "VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"])?;
    req(c.memory_reservation_policy != "TieredReservation" || gates.enabled("MemoryQoS"), "memoryReservationPolicy", || {
        "\"TieredReservation\" requires the MemoryQoS feature gate".into()
    })?;
    if gates.enabled("NodeSwap") {
        one_of(&c.memory_swap.swap_behavior, "memorySwap.swapBehavior", &["", "NoSwap", "LimitedSwap"])?;
    } else {
        req(c.memory_swap.swap_behavior.is_empty(), "memorySwap.swapBehavior", || {
            "cannot be set when NodeSwap feature flag is disabled".into()
        })?;
    }
    Ok(())
}

pub(super) fn image_pull_policy(c: &KubeletConfiguration, gates: &FeatureGates) -> Result<(), Problem> {
    const POLICIES: &[&str] = &["NeverVerify", "NeverVerifyPreloadedImages", "NeverVerifyAllowlistedImages", "AlwaysVerify"];
    let policy = &c.image_pull_credentials_verification_policy;
    if gates.enabled("KubeletEnsureSecretPulledImages") {
        req(POLICIES.contains(&policy.as_str()), "imagePullCredentialsVerificationPolicy", || {
            format!("option {policy:?} is not valid; valid options are {POLICIES:?}")
        })?;
        req(
            c.preloaded_images_verification_allowlist.is_empty() || policy == "NeverVerifyAllowlistedImages",
            "preloadedImagesVerificationAllowlist",
            || "can't be set if imagePullCredentialsVerificationPolicy is not \"NeverVerifyAllowlistedImages\"".into(),
        )?;
        for (i, pattern) in c.preloaded_images_verification_allowlist.iter().enumerate() {
            req(allowlist_pattern_problem(pattern).is_none(), &format!("preloadedImagesVerificationAllowlist[{i}]"), || {
                format!("{pattern:?}: {}", allowlist_pattern_problem(pattern).unwrap_or_default())
            })?;
        }
        Ok(())
    } else {
        req(policy.is_empty(), "imagePullCredentialsVerificationPolicy", || {
            "must not be set if KubeletEnsureSecretPulledImages feature gate is not enabled".into()
        })?;
        req(c.preloaded_images_verification_allowlist.is_empty(), "preloadedImagesVerificationAllowlist", || {
            "must not be set if KubeletEnsureSecretPulledImages feature gate is not enabled".into()
        })
    }
}

/// Why an entry of `preloadedImagesVerificationAllowlist` is not valid (upstream's
/// `ValidateAllowlistImagesPatterns`): an image repository without tag or digest, or a prefix
/// ending in `/*`, with at least a registry host.
fn allowlist_pattern_problem(pattern: &str) -> Option<String> {
    if pattern.trim() != pattern {
        return Some("must not begin or end with spaces".into());
    }
    let repo = match pattern.strip_suffix("/*") {
        Some("") => return Some("at least registry hostname is required".into()),
        Some(prefix) => prefix,
        None => pattern,
    };
    if repo.contains('*') {
        return Some("not a valid wildcard pattern, only patterns ending with '/*' are allowed".into());
    }
    if repo.contains('@') || repo.rsplit('/').next().is_some_and(|last| last.contains(':')) {
        return Some("must not contain a tag or digest".into());
    }
    let component_ok = |c: &str| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "._-:".contains(ch));
    if pattern.ends_with("/*") && !repo.contains('/') {
        // A registry host alone (`registry.example.com/*`).
        return (!component_ok(repo)).then(|| "not a valid registry hostname".into());
    }
    (!repo.split('/').all(component_ok)).then(|| "not a valid image repository".into())
}

#[cfg(test)]
mod allowlist_tests {
    use super::allowlist_pattern_problem;

    #[test]
    fn allowlist_patterns_as_upstream() {
        for ok in ["registry.k8s.io/pause", "registry.example.com/*", "registry.example.com/team/*", "localhost:5000/app"] {
            assert_eq!(allowlist_pattern_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("/*", "at least registry hostname"),
            ("registry.k8s.io/*/pause", "only patterns ending with '/*'"),
            ("registry.k8s.io/pause:3.9", "tag or digest"),
            (" registry.k8s.io/pause", "spaces"),
            ("registry.k8s.io/pa use", "not a valid image repository"),
        ] {
            assert!(allowlist_pattern_problem(bad).is_some_and(|p| p.contains(why)), "{bad}: {:?}", allowlist_pattern_problem(bad));
        }
    }
}
