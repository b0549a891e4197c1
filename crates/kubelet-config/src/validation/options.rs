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
    one_of(
        &c.topology_manager_scope,
        "topologyManagerScope (--topology-manager-scope)",
        &["container", "pod"],
    )?;
    one_of(
        &c.hairpin_mode,
        "hairpinMode (--hairpin-mode)",
        &["none", "hairpin-veth", "promiscuous-bridge"],
    )?;
    one_of(
        &c.cgroup_driver,
        "cgroupDriver (--cgroup-driver)",
        &["cgroupfs", "systemd"],
    )?;
    one_of(
        &c.authorization.mode,
        "authorization.mode (--authorization-mode)",
        &["AlwaysAllow", "Webhook"],
    )?;
    one_of(
        &c.memory_reservation_policy,
        "memoryReservationPolicy",
        &["None", "TieredReservation"],
    )?;
    one_of(
        &c.logging.format,
        "logging.format (--logging-format)",
        &["text", "json"],
    )?;
    one_of(
        &c.tls_min_version,
        "tlsMinVersion (--tls-min-version)",
        &[
            "",
            "VersionTLS10",
            "VersionTLS11",
            "VersionTLS12",
            "VersionTLS13",
        ],
    )?;
    req(
        c.memory_reservation_policy != "TieredReservation" || gates.enabled("MemoryQoS"),
        "memoryReservationPolicy",
        || "\"TieredReservation\" requires the MemoryQoS feature gate".into(),
    )?;
    if gates.enabled("NodeSwap") {
        one_of(
            &c.memory_swap.swap_behavior,
            "memorySwap.swapBehavior",
            &["", "NoSwap", "LimitedSwap"],
        )?;
    } else {
        req(
            c.memory_swap.swap_behavior.is_empty(),
            "memorySwap.swapBehavior",
            || "cannot be set when NodeSwap feature flag is disabled".into(),
        )?;
    }
    Ok(())
}

pub(super) fn image_pull_policy(
    c: &KubeletConfiguration,
    gates: &FeatureGates,
) -> Result<(), Problem> {
    const POLICIES: &[&str] = &[
        "NeverVerify",
        "NeverVerifyPreloadedImages",
        "NeverVerifyAllowlistedImages",
        "AlwaysVerify",
    ];
    let policy = &c.image_pull_credentials_verification_policy;
    if gates.enabled("KubeletEnsureSecretPulledImages") {
        req(
            POLICIES.contains(&policy.as_str()),
            "imagePullCredentialsVerificationPolicy",
            || format!("option {policy:?} is not valid; valid options are {POLICIES:?}"),
        )?;
        req(
            c.preloaded_images_verification_allowlist.is_empty()
                || policy == "NeverVerifyAllowlistedImages",
            "preloadedImagesVerificationAllowlist",
            || {
                "can't be set if imagePullCredentialsVerificationPolicy is not \"NeverVerifyAllowlistedImages\"".into()
            },
        )
    } else {
        req(
            policy.is_empty(),
            "imagePullCredentialsVerificationPolicy",
            || {
                "must not be set if KubeletEnsureSecretPulledImages feature gate is not enabled"
                    .into()
            },
        )?;
        req(
            c.preloaded_images_verification_allowlist.is_empty(),
            "preloadedImagesVerificationAllowlist",
            || {
                "must not be set if KubeletEnsureSecretPulledImages feature gate is not enabled"
                    .into()
            },
        )
    }
}
