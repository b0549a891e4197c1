//! The kubelet's pod sources and the merger that turns them into one desired state.
//!
//! Upstream this is `pkg/kubelet/config`. Three kinds of source feed pods to the kubelet:
//!
//! * [`StaticPodSource`] — `staticPodPath`, a directory of manifests or a single file,
//!   watched with inotify and re-read every `fileCheckFrequency`;
//! * [`UrlPodSource`] — `--manifest-url`, polled every `httpCheckFrequency`;
//! * the API server (a later crate), which sends [`PodUpdate`]s with [`PodSource::Api`].
//!
//! Every source sends the *complete* set of its pods on each change (upstream `SET`
//! semantics). [`PodConfig`] keeps one set per source, merges them and publishes a
//! [`DesiredPods`] on a `tokio::sync::watch` channel: one writer, many cheap readers.
//!
//! Static pods (file and URL) are decoded by [`decode_manifest`], defaulted by
//! [`apply_static_pod_defaults`] (API defaults, a content-derived UID, the node-name suffix)
//! and checked by [`validate_pod`] before they are sent. This crate owns no runtime state
//! and never talks to the container runtime.

mod config;
mod defaults;
mod file;
mod http;
mod manifest;
mod validation;

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

pub use config::{DesiredPods, PodConfig, annotate_from_source};
pub use defaults::{apply_api_defaults, apply_static_pod_defaults, static_pod_uid};
pub use file::StaticPodSource;
pub use http::{UrlPodSource, UrlSourceError};
pub use manifest::{ManifestError, decode_manifest};
pub use validation::{FieldError, FieldErrorKind, ValidationErrors, validate_pod};

/// Annotation holding the content hash (the generated UID) of a static pod.
pub const CONFIG_HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
/// Annotation holding the time (RFC 3339, nanoseconds) the kubelet first saw a pod.
pub const CONFIG_SEEN_ANNOTATION: &str = "kubernetes.io/config.seen";
pub use kubelet_types::pod::CONFIG_SOURCE_ANNOTATION;

/// Where a pod came from (upstream `kubetypes.FileSource`, `HTTPSource`, `ApiserverSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PodSource {
    /// `staticPodPath`.
    File,
    /// `--manifest-url`.
    Http,
    /// The API server.
    Api,
}

impl PodSource {
    /// The name used in the `kubernetes.io/config.source` annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            PodSource::File => "file",
            PodSource::Http => "http",
            PodSource::Api => "api",
        }
    }
}

impl fmt::Display for PodSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The exact origin of a static pod, which is part of its generated UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// A manifest file: the UID hashes `host:<node>` and `file:<path>`.
    File(std::path::PathBuf),
    /// A manifest URL: the UID hashes `url:<url>`.
    Url(String),
}

impl SourceRef {
    /// The [`PodSource`] this origin belongs to.
    pub fn kind(&self) -> PodSource {
        match self {
            SourceRef::File(_) => PodSource::File,
            SourceRef::Url(_) => PodSource::Http,
        }
    }
}

/// A manifest (or a whole source) that could not be used; the rest of the source still is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SourceError {
    /// The file path or URL the error is about.
    pub path: String,
    /// Why it was rejected.
    pub message: String,
}

/// The complete set of pods of one source (upstream `PodUpdate` with `Op: SET`).
#[derive(Debug, Clone, PartialEq)]
pub struct PodUpdate {
    /// Which source sends this set.
    pub source: PodSource,
    /// Every pod the source currently wants; pods missing here are removed. Shared: a source
    /// that keeps its pods (the API watch cache) sends them without copying.
    pub pods: Vec<Arc<Pod>>,
    /// Manifests the source could not use in this round.
    pub errors: Vec<SourceError>,
}

/// `name_namespace`, the key the kubelet uses for a pod (upstream `GetPodFullName`).
pub fn pod_full_name(pod: &Pod) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    format!("{name}_{namespace}")
}

/// The UID of a pod, or "" when it has none.
pub(crate) fn pod_uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}
