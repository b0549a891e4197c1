//! What volumes need from the API server (upstream `pkg/volume/{secret,configmap,projected}`'s
//! `GetSecretFunc`/`GetConfigMapFunc` and the token manager's `TokenRequest` call): Secrets,
//! ConfigMaps, and bound service-account tokens; and the RuntimeClass a pod names (its CRI
//! handler), its ServiceAccount (for credential provider plugins), the ClusterTrustBundles a
//! projected volume names, and the PodCertificateRequests the kubelet files for `podCertificate`
//! projections (with the Node's UID they carry): the other cluster objects a pod's setup touches.
//!
//! [`VolumeApi`] is the boundary: the cluster-mode crate implements it over the rate-limited
//! client, an in-memory fake lives in `test-support`. A missing object is `Ok(None)`, every
//! other failure an [`ApiError`] naming the request.

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::certificates::v1::{ClusterTrustBundle, PodCertificateRequest};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret, ServiceAccount};
use k8s_openapi::api::node::v1::RuntimeClass;

use crate::api_error::ApiError;

/// Secrets, ConfigMaps and service-account tokens for pod volumes.
#[async_trait]
pub trait VolumeApi: Send + Sync + 'static {
    /// Secret `namespace/name`, `None` when it does not exist.
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ApiError>;
    /// ConfigMap `namespace/name`, `None` when it does not exist.
    async fn get_config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, ApiError>;
    /// `POST /api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token`: the answer
    /// carries the token and its expiration in `status`.
    async fn create_token(&self, namespace: &str, service_account: &str, request: &TokenRequest) -> Result<TokenRequest, ApiError>;
    /// RuntimeClass `name` (cluster-scoped), `None` when it does not exist.
    async fn get_runtime_class(&self, name: &str) -> Result<Option<RuntimeClass>, ApiError>;
    /// ServiceAccount `namespace/name` (credential provider plugins given its tokens read its
    /// UID and annotations), `None` when it does not exist.
    async fn get_service_account(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccount>, ApiError>;
    /// ClusterTrustBundle `name` (`certificates.k8s.io/v1`, cluster-scoped), `None` when it does
    /// not exist.
    async fn get_cluster_trust_bundle(&self, name: &str) -> Result<Option<ClusterTrustBundle>, ApiError>;
    /// The ClusterTrustBundles of signer `signer_name` whose labels match `label_selector` (the
    /// API's selector syntax; empty matches every bundle of the signer).
    async fn list_cluster_trust_bundles(&self, signer_name: &str, label_selector: &str) -> Result<Vec<ClusterTrustBundle>, ApiError>;
    /// Creates `request` (namespaced; `generateName` allowed); returns it as stored.
    async fn create_pod_certificate_request(&self, request: &PodCertificateRequest) -> Result<PodCertificateRequest, ApiError>;
    /// PodCertificateRequest `namespace/name`, `None` when it does not exist.
    async fn get_pod_certificate_request(&self, namespace: &str, name: &str) -> Result<Option<PodCertificateRequest>, ApiError>;
    /// Node `name`, `None` when it does not exist.
    async fn get_node(&self, name: &str) -> Result<Option<Node>, ApiError>;
}
