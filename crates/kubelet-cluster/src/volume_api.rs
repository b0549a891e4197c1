//! What volumes need from the API server (upstream `pkg/volume/{secret,configmap,projected}`'s
//! `GetSecretFunc`/`GetConfigMapFunc` and the token manager's `TokenRequest` call): Secrets,
//! ConfigMaps, and bound service-account tokens; and the RuntimeClass a pod names (its CRI
//! handler), its ServiceAccount (for credential provider plugins), the ClusterTrustBundles a
//! projected volume names, and the PodCertificateRequests the kubelet files for `podCertificate`
//! projections (with the Node's UID they carry): the other cluster objects a pod's setup touches.
//!
//! [`VolumeApi`] (`kubelet_types::volume_api`) is the boundary; [`KubeApi`] implements it over the rate-limited client, an
//! in-memory fake lives in `test-support`. This module decides nothing: a missing object is
//! `Ok(None)`, every other failure an [`ApiError`] naming the request.

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::certificates::v1::{ClusterTrustBundle, PodCertificateRequest};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret, ServiceAccount};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::Api;
use kube::api::{ListParams, PostParams};

use crate::api::{ConfigApi, KubeApi};
use crate::error::ApiError;
use kubelet_types::volume_api::VolumeApi;

#[async_trait]
impl VolumeApi for KubeApi {
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ApiError> {
        ConfigApi::get_secret(self, namespace, name).await
    }

    async fn get_config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, ApiError> {
        ConfigApi::get_config_map(self, namespace, name).await
    }

    async fn get_runtime_class(&self, name: &str) -> Result<Option<RuntimeClass>, ApiError> {
        self.limiter.acquire().await;
        Api::<RuntimeClass>::all(self.client())
            .get_opt(name)
            .await
            .map_err(|e| crate::error::from_kube(format!("runtimeclasses/{name}"), e))
    }

    async fn get_service_account(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccount>, ApiError> {
        self.limiter.acquire().await;
        Api::<ServiceAccount>::namespaced(self.client(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| crate::error::from_kube(format!("serviceaccounts/{namespace}/{name}"), e))
    }

    async fn get_cluster_trust_bundle(&self, name: &str) -> Result<Option<ClusterTrustBundle>, ApiError> {
        self.limiter.acquire().await;
        Api::<ClusterTrustBundle>::all(self.client())
            .get_opt(name)
            .await
            .map_err(|e| crate::error::from_kube(format!("clustertrustbundles/{name}"), e))
    }

    async fn list_cluster_trust_bundles(&self, signer_name: &str, label_selector: &str) -> Result<Vec<ClusterTrustBundle>, ApiError> {
        self.limiter.acquire().await;
        let lp = ListParams {
            field_selector: Some(format!("spec.signerName={signer_name}")),
            label_selector: Some(label_selector.to_string()).filter(|s| !s.is_empty()),
            ..ListParams::default()
        };
        let list = Api::<ClusterTrustBundle>::all(self.client())
            .list(&lp)
            .await
            .map_err(|e| crate::error::from_kube(format!("clustertrustbundles?fieldSelector=spec.signerName={signer_name}"), e))?;
        Ok(list.items)
    }

    async fn create_pod_certificate_request(&self, request: &PodCertificateRequest) -> Result<PodCertificateRequest, ApiError> {
        self.limiter.acquire().await;
        let ns = request.metadata.namespace.clone().unwrap_or_default();
        Api::<PodCertificateRequest>::namespaced(self.client(), &ns)
            .create(&PostParams::default(), request)
            .await
            .map_err(|e| crate::error::from_kube(format!("podcertificaterequests/{ns}"), e))
    }

    async fn get_pod_certificate_request(&self, namespace: &str, name: &str) -> Result<Option<PodCertificateRequest>, ApiError> {
        self.limiter.acquire().await;
        Api::<PodCertificateRequest>::namespaced(self.client(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| crate::error::from_kube(format!("podcertificaterequests/{namespace}/{name}"), e))
    }

    async fn get_node(&self, name: &str) -> Result<Option<Node>, ApiError> {
        self.limiter.acquire().await;
        Api::<Node>::all(self.client()).get_opt(name).await.map_err(|e| crate::error::from_kube(format!("nodes/{name}"), e))
    }

    async fn create_token(&self, namespace: &str, service_account: &str, request: &TokenRequest) -> Result<TokenRequest, ApiError> {
        self.limiter.acquire().await;
        Api::<ServiceAccount>::namespaced(self.client(), namespace)
            .create_token_request(service_account, &PostParams::default(), request)
            .await
            .map_err(|e| crate::error::from_kube(format!("serviceaccounts/{namespace}/{service_account}/token"), e))
    }
}
