//! The feature gates this crate consults, with their upstream defaults, and
//! the gates upstream removed (named in old configs; warned about, ignored).
//!
//! Not a full feature-gate registry: gates not listed here are accepted and
//! passed through in `featureGates` for other components to interpret.

use std::collections::BTreeMap;

/// Defaults (Kubernetes 1.34) of the gates that defaulting and validation look at.
const DEFAULTS: &[(&str, bool)] = &[
    ("CustomCPUCFSQuotaPeriod", false),
    ("GracefulNodeShutdown", true),
    ("GracefulNodeShutdownBasedOnPodPriority", true),
    ("ImageMaximumGCAge", true),
    ("KubeletCrashLoopBackOffMax", false),
    // Beta and on by default since 1.35.
    ("KubeletEnsureSecretPulledImages", true),
    // Beta and on by default since 1.34.
    ("KubeletServiceAccountTokenForCredentialProviders", true),
    ("MemoryQoS", false),
    ("NodeLogQuery", false),
    ("NodeSwap", true),
    ("RotateKubeletServerCertificate", true),
];

/// Gates that existed once and were removed after graduating or being dropped.
pub const REMOVED: &[&str] = &[
    "Accelerators",
    "AttachVolumeLimit",
    "BlockVolume",
    "CPUManager",
    "CSIBlockVolume",
    "CSIDriverRegistry",
    "CSIMigration",
    "CSINodeInfo",
    "DevicePlugins",
    "DynamicKubeletConfig",
    "ExpandCSIVolumes",
    "ExpandInUsePersistentVolumes",
    "ExpandPersistentVolumes",
    "ExperimentalCriticalPodAnnotation",
    "ExperimentalHostUserNamespaceDefaulting",
    "KubeletConfigFile",
    "KubeletPodResources",
    "LocalStorageCapacityIsolation",
    "MountPropagation",
    "NodeLease",
    "PersistentLocalVolumes",
    "PodPriority",
    "PodShareProcessNamespace",
    "RotateKubeletClientCertificate",
    "RunAsGroup",
    "SeccompDefault",
    "ServiceNodeExclusion",
    "SupportNodePidsLimit",
    "SupportPodPidsLimit",
    "TaintBasedEvictions",
    "TaintNodesByCondition",
    "TopologyManager",
    "VolumeScheduling",
    "VolumeSnapshotDataSource",
    "VolumeSubpathEnvExpansion",
];

/// Gate states: the configured values over upstream defaults.
pub struct FeatureGates<'a> {
    configured: &'a BTreeMap<String, bool>,
}

impl<'a> FeatureGates<'a> {
    /// Gate states over `configured`, the `featureGates` map of the configuration.
    pub fn new(configured: &'a BTreeMap<String, bool>) -> Self {
        FeatureGates { configured }
    }

    /// Whether `gate` is on (configured value, else upstream default, else off).
    pub fn enabled(&self, gate: &str) -> bool {
        if let Some(v) = self.configured.get(gate) {
            return *v;
        }
        let all_alpha = self.configured.get("AllAlpha").copied().unwrap_or(false);
        DEFAULTS.iter().find(|(n, _)| *n == gate).map(|(_, v)| *v || all_alpha).unwrap_or(false)
    }
}

/// Whether upstream removed `gate`.
pub fn is_removed(gate: &str) -> bool {
    REMOVED.contains(&gate)
}
