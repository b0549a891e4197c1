//! Cluster mode: everything the kubelet does with an API server (upstream: the parts of
//! `pkg/kubelet` that use the kube client).
//!
//! - [`client`]: the client built from `--kubeconfig`, rate-limited by kubeAPIQPS/kubeAPIBurst;
//! - [`api`]: the boundary, one trait per resource, implemented by [`api::KubeApi`];
//! - [`conditions`], [`node_status`]: pure node status builders (from `kubelet_types::machine`
//!   and `kubelet_types::resources`);
//! - [`node_controller`]: registration and the status loop; [`lease`]: the node lease;
//! - [`pod_source`]: the node's API pods for `PodConfig`; [`status_sync`]: pod status to the
//!   API and final deletion; [`mirror`]: mirror pods for static pods;
//! - [`events`]: pod events to the API; [`env`](mod@env): ConfigMaps, Secrets and service variables for
//!   container environments; [`admission`]: node-side admission of API pods;
//! - [`volume_api`]: Secrets, ConfigMaps and service-account tokens for pod volumes;
//! - [`auth_review`]: TokenReview and SubjectAccessReview for the kubelet server's auth;
//! - [`cluster`]: starts all of the above for the kubelet.
//!
//! This crate depends on the pod sources (`kubelet-podconfig`), the CRI and the boundary
//! (`kubelet-types`), never on the `kubelet` crate: its types implement the boundary's traits
//! (`VolumeApi` for [`KubeApi`], `EnvSources` for [`env::ApiEnvSource`], `EventRecorder` for
//! [`events::ClusterEventRecorder`], the reviewers for [`auth_review::ApiReviewer`]) and read the
//! kubelet through others (`PodStatusProvider`, `KubeletHealthSource`, `DeviceResources`,
//! `PodStartupObserver`, `RequestObserver`);
//! `kubelet-app` wires the two.

pub mod admission;
pub mod api;
pub mod auth_review;
pub mod certificate;
pub mod client;
pub mod cluster;
pub mod conditions;
pub mod env;
pub mod error;
pub mod events;
pub mod lease;
pub mod mirror;
pub mod node_controller;
pub mod node_status;
pub mod object_watch;
pub mod pod_source;
pub mod rest_metrics;
pub mod status_sync;
pub mod volume_api;

pub use api::KubeApi;
pub use client::{ClientError, ClientOptions, connect};
pub use cluster::Cluster;
pub use error::ApiError;
